"""The study's runs as `train.py -m` sweeps: one process per kind of arm and phase.

A process starts once for many runs (imports cost seconds each on 2 cores), and its jobs
land in `runs/<cell id>/seed<k>[-lr<lr>]`, so a cell's runs sit in one folder. Seeds come
first on the command line, so Hydra runs every cell's seed 0 before any seed 1: a study
stopped by its budget loses the last seeds, not the last arms. Completed jobs are skipped
on a rerun (`+resume=<folder>`, runs/sweeps.py).
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

from transferlab.runs.summary import RunSummary
from transferlab.study.plan import Cell
from transferlab.study.state import job_name

# Through the package, never a clone's path: an installed transferlab has no train.py.
TRAIN_COMMAND = (sys.executable, "-m", "transferlab", "train")


@dataclass
class Batch:
    """One `train.py -m` process: these cells at these seeds (and lrs)."""

    name: str
    cells: list[Cell]
    seeds: list[int]
    overrides: list[str]  # everything but seeds, arms, optimizers, sizes and lrs
    lrs: list[str] | None = None  # the lr grid (None: the config's lr, or the finder's)

    def job_folders(self, study: Path) -> list[Path]:
        return [study / "runs" / cell.id / name for cell in self.cells for name in self._names()]

    def _names(self) -> list[str]:
        lrs = self.lrs or [None]
        return [job_name(s, lr) for s in self.seeds for lr in lrs]

    def pending(self, study: Path) -> bool:
        return any(not completed(folder) for folder in self.job_folders(study))

    def argv(self, study: Path, resume: bool) -> list[str]:
        cell = self.cells[0]
        arms = sorted({c.arm.name for c in self.cells}, key=[c.arm.name for c in self.cells].index)
        opts = sorted({c.optimizer for c in self.cells if c.optimizer})
        sizes = sorted({c.size for c in self.cells if c.size is not None})
        folder = "${hydra:runtime.choices.arm}"
        if cell.optimizer:
            folder += "-${hydra:runtime.choices.optimizer}"
        if cell.size is not None:
            folder += "-n${data.source.limit}"
        folder += "/" + job_name("${seed}", "${lr}" if self.lrs else None)
        argv = [f"seed={','.join(map(str, self.seeds))}"]  # first: varies slowest
        argv.append(f"arm={','.join(arms)}")
        if opts:
            argv.append(f"optimizer={','.join(opts)}")
        if sizes:
            argv.append(f"data.source.limit={','.join(map(str, sizes))}")
        if self.lrs:
            argv.append(f"lr={','.join(self.lrs)}")
        argv += self.overrides
        argv += [
            f"hydra.sweep.dir={study / 'runs'}",
            f"hydra.sweep.subdir='{folder}'",
        ]
        if resume:
            argv.append(f"+resume={study / 'runs'}")
        return argv


def completed(folder: Path) -> bool:
    summary = RunSummary.read_or_none(folder)
    return summary is not None and summary.completed


summary_of = RunSummary.read_or_none


def command(cell: Cell, overrides: list[str], seeds: list[int], lr: str | None) -> str:
    """The train.py line that reproduces a cell's runs."""
    parts = ["python train.py", "-m" if len(seeds) > 1 else "", f"arm={cell.arm.name}"]
    if cell.optimizer:
        parts.append(f"optimizer={cell.optimizer}")
    if cell.size is not None:
        parts.append(f"data.source.limit={cell.size}")
    if lr:
        parts.append(f"lr={lr}")
    parts += [o for o in overrides if not o.startswith(("task_name=", "extras."))]
    parts.append(f"seed={','.join(map(str, seeds))}")
    # quoted so that a shell leaves Hydra's interpolations (data.fold=${seed}) alone
    parts = [shlex.quote(p) if "$" in p else p for p in parts]
    return " ".join(p for p in parts if p)
