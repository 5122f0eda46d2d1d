"""`transferlab <command> [overrides]` and `python -m transferlab <command> [overrides]`.

The same entry points as the clone's train.py, eval.py, ... shims, from any folder: run
folders go to ./logs there, configs come from the package (plus ./conf, config_dirs).
"""

from __future__ import annotations

import sys

# command -> (cli function, its one-line description); imported only once chosen
COMMANDS = {
    "train": "fit and test a model (the embedded default with no overrides)",
    "eval": "test a checkpoint: ckpt_path=<run>/checkpoints/best.ckpt [data=...]",
    "predict": "classify new images: ckpt_path=<ckpt> input=<folder|file|glob>",
    "export": "write the network for use without transferlab: ckpt_path=<ckpt> format=onnx",
    "compare": "one table and plots for many runs: [<multirun or runs folder>]",
    "study": "the decision grid in a budget -> report.md: data=<any>",
    "rank": "backbones ranked from cached features: data=<any> backbones=[...]",
}
_FUNCTIONS = {"eval": "evaluate"}  # `eval` is a Python builtin's name
_EXITS_FAST = {"train", "eval", "rank", "predict", "export"}


def usage() -> str:
    lines = ["usage: transferlab <command> [overrides]", "", "commands:"]
    lines += [f"  {name:<8} {what}" for name, what in COMMANDS.items()]
    lines += ["", "`transferlab <command> --help` lists that command's config groups."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run one command; Hydra reads its overrides from sys.argv as the shims do."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        sys.exit(0 if args else 2)
    command = args[0]
    if command not in COMMANDS:
        print(
            f"\nError: transferlab has no command {command!r}. Fix: use one of "
            f"{', '.join(COMMANDS)}, e.g. `transferlab train epochs=1`.\n",
            file=sys.stderr,
        )
        sys.exit(2)
    # argv[0] "transferlab train" tells DDP (runs/distributed.py) how to start the other
    # ranks: `python -m transferlab train ...`; configs name the job and its folders.
    sys.argv = [f"transferlab {command}", *args[1:]]
    from transferlab import cli

    if command == "train":
        from transferlab.runs.resume import apply_to_sys_argv

        apply_to_sys_argv()  # resume=<run folder> continues that run in place
    getattr(cli, _FUNCTIONS.get(command, command))()
    if command in _EXITS_FAST:
        from transferlab.runs.startup import exit_fast

        exit_fast()


if __name__ == "__main__":
    main()
