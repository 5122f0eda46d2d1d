"""Continue a killed run in its own folder: `python train.py resume=<run folder>`.

The run's own overrides are replayed into the same folder with ckpt_path=last.ckpt, its
metrics.csv is continued rather than rewritten. (Checkpoints are written through a temp
file and a rename, see checkpoints.AtomicCheckpointIO, so a kill never truncates last.ckpt.)
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import yaml

from transferlab.errors import UserError
from transferlab.masking import is_masked_override


def replayed(argv: list[str], kind: str, needs: tuple[str, ...], example: str):
    """The folder that `resume=<folder>` names and the overrides that made it, merged with
    those given beside resume= (which win); (None, argv) without resume=.

    train.py and study.py both resume through here: overrides saved masked (secrets) are
    dropped, never replayed as `***`; the command line or the environment gives them again.
    """
    given = [a for a in argv if a.startswith("resume=")]
    if not given:
        return None, argv
    folder = Path(given[-1].split("=", 1)[1]).expanduser().resolve()
    if not all((folder / need).is_file() for need in (".hydra/overrides.yaml", *needs)):
        raise UserError(
            f"resume={given[-1].split('=', 1)[1]} is not a {kind} folder that can be resumed: "
            f"it needs {' and '.join(('.hydra/overrides.yaml', *needs))} (looked in {folder}). "
            f"Give a folder such as {example}."
        )
    saved = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())
    merged: dict[str, str] = {}
    for item in [*saved, *(a for a in argv if a not in given)]:
        merged[item.split("=", 1)[0]] = item
    if masked := [k for k, item in merged.items() if is_masked_override(item)]:
        print(f"Not replayed (saved masked): {', '.join(masked)}; pass them again if needed.")
        merged = {k: v for k, v in merged.items() if k not in masked}
    return folder, list(merged.values())


def resume_argv(argv: list[str]) -> list[str]:
    """Rewrite `resume=<run>` into that run's overrides + its folder + its last.ckpt.

    Overrides given beside resume= win over the run's own (e.g. epochs=20 to go further).
    """
    example = "resume=logs/train/runs/<run>, one that finished at least one epoch"
    run, overrides = replayed(argv, "run", ("checkpoints/last.ckpt",), example)
    if run is None:
        return argv
    return [
        *overrides,
        f"ckpt_path={run / 'checkpoints' / 'last.ckpt'}",
        f'hydra.run.dir="{run}"',
        "hydra.output_subdir=null",  # keep the run's original .hydra/ as it was
    ]


def apply_to_sys_argv() -> None:
    """Used by train.py before Hydra parses the command line."""
    try:
        sys.argv[1:] = resume_argv(sys.argv[1:])
    except UserError as err:
        print(f"\nError: {err}\n", file=sys.stderr)
        sys.exit(err.exit_code)


def continue_metrics_csv(csv_file: Path, epoch: int, global_step: int) -> tuple[list, list]:
    """Rows of an interrupted run's metrics.csv up to its checkpoint, and their columns.

    Rows of the epoch the kill interrupted (after `epoch`, or un-epoched rows logged at or
    after `global_step`) are dropped: the resumed run logs them again, once.
    """
    if not csv_file.is_file():
        return [], []
    with open(csv_file, newline="") as f:
        reader = csv.DictReader(f)
        rows, keys = list(reader), list(reader.fieldnames or [])

    def kept(row: dict) -> bool:
        if row.get("epoch"):
            return int(float(row["epoch"])) <= epoch
        return int(float(row.get("step") or 0)) < global_step

    return [r for r in rows if kept(r)], keys


def reload_csv_rows(logger, ckpt_path: str) -> None:
    """Seed the CSV logger with the rows the interrupted run had written before its checkpoint."""
    import torch

    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    csv_file = Path(logger.log_dir) / "metrics.csv"
    rows, keys = continue_metrics_csv(csv_file, ckpt["epoch"], ckpt["global_step"])
    if not rows:
        return
    writer = logger.experiment  # creating it deletes the old file: the rows are in memory
    writer.metrics_keys, writer.metrics = sorted(keys), rows
    writer.save()
