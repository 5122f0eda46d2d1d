from transferlab.cli import rank
from transferlab.runs.startup import exit_fast

if __name__ == "__main__":
    rank()  # errors leave through sys.exit with their own code
    exit_fast()
