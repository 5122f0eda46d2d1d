from transferlab.cli import train
from transferlab.runs.resume import apply_to_sys_argv
from transferlab.runs.startup import exit_fast

if __name__ == "__main__":
    apply_to_sys_argv()  # resume=<run folder> continues that run in place
    train()  # errors leave through sys.exit with their own code
    exit_fast()
