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
import logging
import re
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import OmegaConf

from transferlab.errors import UserError
from transferlab.study import budget
from transferlab.study import plan as planning
from transferlab.study.batches import TRAIN_COMMAND, summary_of
from transferlab.study.plan import EVAL_SHARE, Arm, Cost, Counts, Settings

log = logging.getLogger("transferlab")
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


def probe_groups(arms: list[Arm], overrides: dict, ends: dict) -> list[Group]:
    """One probe process per set of overrides and image size: arms of a kind share it,
    unless an arm's own probe overrides (gradual unfreezing at its end) set it apart."""
    by: dict[tuple, list[Arm]] = {}
    for arm in arms:
        for px in dict.fromkeys(ends[arm.name]):
            by.setdefault(((*overrides[arm.kind], *arm.probe), px), []).append(arm)
    return [Group(group, list(base), px) for (base, px), group in by.items()]


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


def fitted(
    cfg, study: Path, arms, counts, overrides, clock, report_s: float, folds: int | None = None
) -> tuple[Settings, float]:
    """Probe every arm, then the settings whose estimate fits what is left of the budget."""
    spec = cfg.study
    pixels = [int(s) for s in spec.image_sizes] or [None]
    # Each arm at both ends of the candidate sizes (capped at its own): Cost.at interpolates.
    ends = {arm.name: [arm.size_at(pixels[0]), arm.size_at(pixels[-1])] for arm in arms}
    groups = probe_groups(arms, overrides, ends)
    log.info("Probing %d arms with %d batches each...", len(arms), spec.probe_batches)
    # Enough images for the probe's batches: a frozen-feature arm would otherwise pass the
    # whole set through its backbone (70,000 MNIST images) to time a few batches.
    images = max(2 * int(spec.probe_batches) * counts.batch_size, 4 * counts.classes)
    cut = probe_cut(images, counts)
    found, process_s = run_probe(groups, int(spec.probe_batches), study, study / "runs.log", cut)
    costs = {}
    for arm in arms:
        large, small = (found.get((arm.name, px)) for px in ends[arm.name])
        if large and small:
            costs[arm.name] = replace(large, small=small if small is not large else None)
    missing = [a.name for a in arms if a.name not in costs]
    if missing:
        raise UserError(
            f"The probe of arm(s) {', '.join(missing)} failed, so the study cannot plan. The "
            f"error is in {study / 'probe'}/<arm>/summary.json and {study / 'runs.log'}; "
            "fix it (or leave those arms out with study.arms=[...]) and run again."
        )
    sizes = tuple(spec.sizes) if spec.sizes else (None,)
    lr_batches = int(spec.lr_find_batches) if spec.lr == "find" else 0
    grid = max(len(spec.lr_grid[o]) for o in spec.optimizers) if spec.lr == "grid" else 1
    budget_left = clock.left_s() - report_s

    def seconds(s: Settings) -> float:
        cells = planning.planned(arms, list(spec.optimizers), s)
        kinds = {c.arm.kind for c in cells}
        # The first seeds: a process per kind (and optimizer, with a grid), every size in
        # it unless min_steps gives sizes their own epochs. Later seeds: as many again, or,
        # with a grid, about 2 picked lrs per size.
        optimizers = len(spec.optimizers) - len(s.optimizers_dropped)
        lrs = 1 if s.one_lr else grid
        first = sum(optimizers if k.needs_optimizer and lrs > 1 else 1 for k in kinds)
        spread = len(s.sizes) if s.min_steps else 1
        processes = first * (spread + (2 * len(s.sizes) if lrs > 1 else spread))
        return planning.estimate(cells, costs, s, counts, process_s, processes, lr_batches, lrs)

    families = {arm.name: arm.family for arm in arms}
    candidates = OmegaConf.to_container(spec)
    settings = budget.fit(candidates, budget_left, seconds, counts, sizes, families, folds)
    return settings, seconds(settings) + clock.elapsed_s()
