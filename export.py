from transferlab.cli import export
from transferlab.runs.startup import exit_fast

if __name__ == "__main__":
    export()  # errors leave through sys.exit with their own code
    exit_fast()
