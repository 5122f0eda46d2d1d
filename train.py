from transferlab.cli import exit_fast, train
from transferlab.resume import apply_to_sys_argv

if __name__ == "__main__":
    apply_to_sys_argv()  # resume=<run folder> continues that run in place
    train()  # errors leave through sys.exit with their own code
    exit_fast()
