from transferlab.cli import evaluate
from transferlab.runs.startup import exit_fast

if __name__ == "__main__":
    evaluate()  # errors leave through sys.exit with their own code
    exit_fast()
