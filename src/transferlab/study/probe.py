"""The timed probe: every arm runs a few batches here, through train.py itself.

What the budget plan needs per arm is measured, not guessed: seconds per training batch
(`time/epoch_s` of the second of two short epochs: the first pays warm-up, which every
run pays once and so counts as overhead), the per-run overhead (build, warm-up,
checkpoints, plots) and, for frozen features, the feature pass (its log lines; the first
pass also warms up, so the rate comes from the later ones). Pretrained arms are probed at
the largest and the smallest candidate image size; plan.py interpolates between them.
"""

from __future__ import annotations

import csv
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from transferlab.study.batches import TRAIN_COMMAND, summary_of
from transferlab.study.plan import EVAL_SHARE, Arm, Cost, Counts

FEATURE_PASS = re.compile(r"Feature pass: computed \w+ features \((\d+) x \d+\) in ([\d.]+) s")


@dataclass(frozen=True)
class Group:
    """Arms probed in one train.py process, at one image size (None: the data's own)."""

    arms: list[Arm]
    overrides: list[str]
    image_size: int | None = None

    def folder(self, study: Path, arm: Arm) -> Path:
        return study / "probe" / (arm.name + self.suffix)

    @property
    def suffix(self) -> str:
        return f"-{self.image_size}px" if self.image_size else ""


def probe_cut(images: int, counts: Counts) -> list[str]:
    """The data cut a probe runs on: `images` per split where a split holds more."""
    out = [f"data.source.limit={images}"] if counts.train > images else []
    return out + (
        [f"data.source.eval_limit={images}"] if max(counts.val, counts.test) > images else []
    )


def probe_argv(group: Group, batches: int, study: Path, cut: list[str] = ()) -> list[str]:
    size = [f"data.image_size={group.image_size}"] if group.image_size else []
    return [
        f"arm={','.join(a.name for a in group.arms)}",
        *group.overrides,
        *size,
        *cut,
        # In memory: features cached on disk by an earlier study would time no feature pass.
        "features.cache=memory",
        "seed=0",
        "epochs=2",
        f"+trainer.limit_train_batches={batches}",
        f"+trainer.limit_val_batches={batches}",
        f"+trainer.limit_test_batches={batches}",
        f"hydra.sweep.dir={study / 'probe'}",
        "hydra.sweep.subdir=${hydra:runtime.choices.arm}" + group.suffix,
    ]


def run_probe(
    groups: list[Group], batches: int, study: Path, log_file: Path, cut: list[str] = ()
) -> tuple[dict[tuple[str, int | None], Cost], float]:
    """Costs per (arm, image size), and the seconds a train.py process takes beyond its jobs."""
    costs: dict[tuple[str, int | None], Cost] = {}
    extra = []
    for group in groups:
        start = time.perf_counter()
        with open(log_file, "a") as out:
            argv = [*TRAIN_COMMAND, "-m", *probe_argv(group, batches, study, cut)]
            subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
        walls = 0.0
        for arm in group.arms:
            folder = group.folder(study, arm)
            summary = summary_of(folder) or {}
            if summary.get("status") != "completed":
                continue  # a failing arm fails in the study too, and is reported there
            times, log_text = epoch_times(folder), _train_log(folder)
            cost = cost_of(summary, times, log_text, batches, group.image_size)
            costs[arm.name, group.image_size] = cost
            walls += float(summary.get("wall_time_s") or 0.0)
        extra.append(max(time.perf_counter() - start - walls, 0.0))
    return costs, max(extra) if extra else 0.0


def cost_of(
    summary: dict, epochs_s: list[float], log_text: str, batches: int, image_size: int | None
) -> Cost:
    """An arm's cost from its probe run: summary.json, per-epoch times, train.log."""
    epoch_s = epochs_s[-1] if epochs_s else 0.0
    batch_s = epoch_s / (batches * (1 + EVAL_SHARE))
    passes = [(int(n), float(s)) for n, s in FEATURE_PASS.findall(log_text)]
    later = passes[1:] or passes
    per_image = sum(s for _, s in later) / max(sum(n for n, _ in later), 1)
    images = sum(n for n, _ in passes)
    # The first epoch and the first feature pass of an arm in a process pay one-off costs
    # (kernel selection, allocations); later runs of that arm in the process do not.
    warmup = sum(epochs_s) - len(epochs_s) * epoch_s
    if passes:
        warmup += passes[0][1] - per_image * passes[0][0]
    wall = float(summary.get("wall_time_s") or 0.0)
    steady = len(epochs_s) * epoch_s + EVAL_SHARE * batches * batch_s + per_image * images
    return Cost(
        batch_s=batch_s,
        job_s=max(wall - steady - warmup, 0.0),
        image_size=image_size,
        feature_s=per_image * images,
        probed_images=images or 1,
        warmup_s=max(warmup, 0.0),
    )


def epoch_times(folder: Path) -> list[float]:
    """`time/epoch_s` of each epoch, from the run's metrics.csv."""
    try:
        with open(folder / "csv" / "metrics.csv", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError:
        return []
    return [float(r["time/epoch_s"]) for r in rows if r.get("time/epoch_s")]


def _train_log(folder: Path) -> str:
    try:
        return (folder / "train.log").read_text()
    except OSError:
        return ""
