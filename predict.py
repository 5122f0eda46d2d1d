from transferlab.cli import predict
from transferlab.runs.startup import exit_fast

if __name__ == "__main__":
    predict()  # errors leave through sys.exit with their own code
    exit_fast()
