"""`python study.py`: check the arms, probe them, fit the grid to the budget, run, report.

The study folder holds plan.json (what runs, what was cut to fit, each cell's status: the
report reads it), probe/ and runs/ (train.py run folders), runs.log (their output) and
report.md. A killed study continues with `python study.py resume=<folder>`: plan.json
says what was planned, completed runs are skipped, the clock goes on from where it was.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from transferlab import heads, input_size, modes
from transferlab.atomic import atomic_write_text as write_text
from transferlab.checks.commands import validate_train
from transferlab.errors import UserError
from transferlab.study import plan as planning
from transferlab.study.batches import TRAIN_PY, Batch, command, completed, summary_of
from transferlab.study.plan import RANDOM_INIT, Arm, Cell, Counts, Settings
from transferlab.study.probe import Group, probe_cut, run_probe

log = logging.getLogger("transferlab")

LABELS = {
    "scratch": "from scratch (CNN)",
    "features_linear": "frozen features + linear head",
    "features_svm": "frozen multi-layer features + SVM",
    "partial": "partial (last 2 groups)",
    "finetune": "fine-tune",
    "gradual": "gradual unfreezing",
}
# Over the budget by more than 15% is a bug: runs still going then are stopped, leaving
# this much for the report.
HARD_STOP, REPORT_S = 1.12, 15.0
QUIET = ["extras.print_config=false", "task_name=study"]


def main(cfg: DictConfig) -> None:
    # A kill (SIGTERM) unwinds like Ctrl-C, so the running sweep is stopped with the study.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    study = Path(HydraConfig.get().runtime.output_dir)
    given = [o for o in HydraConfig.get().overrides.task if not o.startswith(("study.", "resume="))]
    backbone, passed = _backbone(cfg, given)
    spec = cfg.study
    state_file = study / "plan.json"
    state = json.loads(state_file.read_text()) if state_file.is_file() else None
    clock = Clock(float(spec.budget_minutes) * 60, (state or {}).get("elapsed_so_far") or 0.0)
    arms = [arm_of(name, passed, backbone) for name in spec.arms]
    counts = _counts(cfg)
    overrides = {kind: _kind_overrides(kind, passed, backbone) for kind in (RANDOM_INIT, "trained")}
    if state is None:
        settings, estimate_s = _planned(cfg, study, arms, counts, overrides, clock)
        state = _new_state(cfg, backbone, arms, settings, counts, estimate_s)
    else:
        log.info("Resuming the study in %s: completed runs are kept.", study)
    settings = _settings(state)
    cells = planning.cells(arms, list(spec.optimizers), settings.sizes)
    batches = _batches(cells, settings, spec, overrides, first=True)
    _record(state, state_file, cells, settings, overrides, clock, batches, spec)
    for phase in (True, False):
        if not phase:
            _pick_lrs(state, cells, study, spec)
            batches = _batches(cells, settings, spec, overrides, first=False, state=state)
        for batch in batches:
            _run(batch, study, clock, state, cells)
            _record(state, state_file, cells, settings, overrides, clock, batches, spec)
    _record(state, state_file, cells, settings, overrides, clock, [], spec, final=True)
    from transferlab.study.report import write_report

    report = write_report(study)
    log.info(
        "Study report: %s (%.1f of %g minutes)", report, clock.elapsed_s() / 60, spec.budget_minutes
    )


class Clock:
    """Study time so far: what earlier sessions of a resumed study used, plus this one."""

    def __init__(self, budget_s: float, before_minutes: float) -> None:
        self.budget_s, self.before_s, self.start = budget_s, before_minutes * 60, time.monotonic()

    def elapsed_s(self) -> float:
        return self.before_s + time.monotonic() - self.start

    def left_s(self) -> float:
        return self.budget_s - self.elapsed_s()


def arm_of(name: str, overrides: list[str], backbone: str) -> Arm:
    """An arm's kind from its composed config, checked as train.py would check it."""
    try:
        cfg = compose("train", overrides=[*overrides, f"arm={name}", f"model={backbone}"])
    except Exception as err:  # hydra's MissingConfigException and friends
        options = sorted(p.stem for p in (TRAIN_PY.parent / "conf" / "arm").glob("*.yaml"))
        raise UserError(
            f"study.arms has {name!r}, which is not an arm ({type(err).__name__}: {err}). "
            f"Arms are the files in conf/arm: {', '.join(options)}; add a file there for "
            "another recipe."
        ) from None
    if modes.of(cfg).ignores_weights:
        kind, cfg = RANDOM_INIT, compose("train", overrides=[*overrides, f"arm={name}"])
    elif heads.of(cfg.get("head")).fitted_by_sklearn:
        kind = "classical"
    else:
        kind = "trained"
    validate_train(cfg)
    return Arm(name, LABELS.get(name, name), kind, input_size.resolve(cfg).pixels)


def _backbone(cfg: DictConfig, given: list[str]) -> tuple[str, list[str]]:
    """`model=<name>` on the command line is the pretrained arms' backbone."""
    models = [o.split("=", 1)[1] for o in given if o.startswith("model=")]
    backbone = models[-1] if models else str(cfg.study.backbone)
    return backbone, [o for o in given if not o.startswith("model=")]


def _kind_overrides(kind: str, passed: list[str], backbone: str) -> list[str]:
    extra = [] if kind == RANDOM_INIT else [f"model={backbone}"]
    return [*passed, *extra, *QUIET]


def _counts(cfg: DictConfig) -> Counts:
    from hydra.utils import instantiate

    source = instantiate(cfg.data.source)
    train, val, test = (len(s) for s in source.splits(int(cfg.seed)))
    return Counts(train, val, test, int(cfg.batch_size), len(source.classes))


def _planned(cfg, study: Path, arms, counts, overrides, clock) -> tuple[Settings, float]:
    """Probe every arm, then the settings whose estimate fits what is left of the budget."""
    spec = cfg.study
    pixels = [int(s) for s in spec.image_sizes] or [None]
    # Each arm at both ends of the candidate sizes (capped at its own): Cost.at interpolates.
    ends = {arm.name: [arm.size_at(pixels[0]), arm.size_at(pixels[-1])] for arm in arms}
    by: dict[tuple, list[Arm]] = {}
    for arm in arms:
        for px in dict.fromkeys(ends[arm.name]):
            by.setdefault((_side(arm), px), []).append(arm)
    groups = [Group(group, overrides[side], px) for (side, px), group in by.items()]
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
    budget_left = clock.left_s() - REPORT_S

    def seconds(s: Settings) -> float:
        cells = planning.cells(arms, list(spec.optimizers), s.sizes)
        kinds = {a.kind for a in arms}
        # The first seeds: a process per kind (and optimizer, with a grid), every size in
        # it. Later seeds: as many again, or, with a grid, about 2 picked lrs per size.
        first = sum(len(spec.optimizers) if k != "classical" and grid > 1 else 1 for k in kinds)
        processes = first * (1 + (2 * len(s.sizes) if grid > 1 else 1))
        return planning.estimate(cells, costs, s, counts, process_s, processes, lr_batches, grid)

    settings = planning.fit(OmegaConf.to_container(spec), budget_left, seconds, counts, sizes)
    return settings, seconds(settings) + clock.elapsed_s()


def _new_state(cfg, backbone, arms, settings: Settings, counts, estimate_s: float) -> dict:
    estimate = estimate_s / 60
    s = settings
    log.info(
        "Plan: %d arms x %s, %d seeds, %d epochs, %s px, sizes %s%s: about %.1f of %g min.",
        len(arms), list(cfg.study.optimizers), s.seeds, s.epochs, s.image_size,
        [n or "all" for n in s.sizes], f", cut: {'; '.join(s.cuts)}" if s.cuts else "",
        estimate, cfg.study.budget_minutes,
    )  # fmt: skip
    data = HydraConfig.get().runtime.choices.get("data")
    return {
        "command": " ".join(["python study.py", *HydraConfig.get().overrides.task]),
        "data": data,
        "backbone": backbone,
        "budget_minutes": float(cfg.study.budget_minutes),
        "estimate_minutes": round(estimate, 2),
        "started": datetime.now().isoformat(timespec="seconds"),
        "elapsed_minutes": None,
        "cuts": list(s.cuts),
        "settings": {
            "epochs": s.epochs,
            "image_size": s.image_size,
            "train_cut": s.train_cut,
            "seeds": list(range(s.seeds)),
            "few_seed_sizes": list(s.few_seed_sizes),
            "sizes": list(s.sizes),
            "lr": str(cfg.study.lr),
        },
        "counts": {"train": counts.train, "val": counts.val, "test": counts.test},
        "cells": [],
    }


def _settings(state: dict) -> Settings:
    s = state["settings"]
    return Settings(
        epochs=s["epochs"],
        image_size=s["image_size"],
        train_cut=s["train_cut"],
        seeds=len(s["seeds"]),
        sizes=tuple(s["sizes"]),
        few_seed_sizes=tuple(s["few_seed_sizes"]),
    )


def _common(settings: Settings, spec, arm: Arm) -> list[str]:
    out = [f"epochs={settings.epochs}"]
    if size := arm.size_at(settings.image_size):
        out.append(f"data.image_size={size}")
    if settings.train_cut is not None:
        out.append(f"data.source.limit={settings.train_cut}")
    if spec.lr == "find" and arm.kind != "classical":
        out += ["tune=lr_find", "tune.apply=true", f"tune.num_training={spec.lr_find_batches}"]
    return out


def _side(arm: Arm) -> str:
    """Which base overrides an arm runs with: the scratch CNN's or the backbone's."""
    return RANDOM_INIT if arm.kind == RANDOM_INIT else "trained"


def _batches(cells, settings, spec, overrides, first: bool, state=None) -> list[Batch]:
    """Seed 0 of every cell (the lr grid with it), then the other seeds; the cheap kinds
    first, so a budget that runs out costs the fewest cells their seeds. Cells that share
    their seeds, image size and lrs share a process, across training-set sizes too."""
    grid = spec.lr == "grid"
    out = []
    for kind in ("classical", RANDOM_INIT, "trained"):
        by: dict[tuple, list[Cell]] = {}
        for cell in (c for c in cells if c.arm.kind == kind):
            seeds = (0,) if first else tuple(range(1, settings.seeds_at(cell.size)))
            lr = None
            if grid and kind != "classical":
                # The first seed tries the optimizer's grid; later, each cell's picked lr.
                lr = "grid" if first else _cell_state(state, cell).get("lr")
                if not lr:
                    continue  # no completed first-seed run to pick an lr from
            if seeds:
                px = cell.arm.size_at(settings.image_size)
                by.setdefault((px, seeds, cell.optimizer if lr else None, lr), []).append(cell)
        for (_, seeds, opt, lr), at in by.items():
            common = [*overrides[_side(at[0].arm)], *_common(settings, spec, at[0].arm)]
            lrs = None if lr is None else [_lr(v) for v in spec.lr_grid[opt]] if first else [lr]
            for part in _products(at):
                sizes = ",".join(str(n) for n in dict.fromkeys(c.size for c in part))
                name = f"{kind}{f'-{opt}' if opt else ''}-n{sizes}"
                name += f"-lr{','.join(lrs)}" if lrs else ""
                out.append(Batch(f"{name}-seeds{list(seeds)}", part, list(seeds), common, lrs))
    return out


def _products(cells: list[Cell]) -> list[list[Cell]]:
    """The cells as sweeps: one if they are every arm x optimizer x size combination of
    their own (a sweep runs the whole product), else one per size."""
    arms, opts = {c.arm.name for c in cells}, {c.optimizer for c in cells}
    sizes = list(dict.fromkeys(c.size for c in cells))
    if len(cells) == len(arms) * len(opts) * len(sizes):
        return [cells]
    return [[c for c in cells if c.size == size] for size in sizes]


def _lr(value) -> str:
    return repr(float(value))


def _cell_state(state: dict, cell: Cell) -> dict:
    return next((c for c in state["cells"] if c["id"] == cell.id), {})


def _pick_lrs(state: dict, cells: list[Cell], study: Path, spec) -> None:
    """With study.lr=grid: each cell keeps the lr whose first-seed run scored best on val."""
    if spec.lr != "grid":
        return
    for cell in cells:
        if cell.arm.kind == "classical":
            continue
        scores = {}
        for lr in (_lr(v) for v in spec.lr_grid[cell.optimizer]):
            summary = summary_of(study / "runs" / cell.id / f"seed0-lr{lr}") or {}
            if summary.get("status") == "completed":
                scores[lr] = summary["metrics"].get("val/acc_best", 0.0)
        entry = _cell_state(state, cell)
        if scores and entry:
            entry["lr"] = max(scores, key=scores.get)


def _run(batch: Batch, study: Path, clock: Clock, state: dict, cells: list[Cell]) -> None:
    """One sweep process, stopped where the budget ends; its cells' status is recorded."""
    if not batch.pending(study):
        return
    deadline = HARD_STOP * clock.budget_s - REPORT_S - clock.elapsed_s()
    if deadline <= 0:
        for cell in batch.cells:
            _cell_state(state, cell)["stopped"] = "skipped: over budget"
        return
    resume = any((study / "runs" / c.id).exists() for c in batch.cells)
    argv = [sys.executable, str(TRAIN_PY), "-m", *batch.argv(study, resume)]
    log.info("Running %s (%d runs)...", batch.name, len(batch.job_folders(study)))
    with open(study / "runs.log", "a") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            _stop(proc)
            log.warning("The budget ran out in %s: its unfinished runs were stopped.", batch.name)
            for cell in batch.cells:
                _cell_state(state, cell)["stopped"] = "skipped: over budget"
        except BaseException:  # the study itself is stopped: so is its sweep
            _stop(proc)
            raise


def _stop(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _record(state, state_file, cells, settings, overrides, clock, batches, spec, final=False):
    """Each cell's runs, lr, command and status into plan.json (written atomically)."""
    study = state_file.parent
    for cell in cells:
        entry = _cell_state(state, cell)
        if not entry:
            entry = {"id": cell.id}
            state["cells"].append(entry)
        seeds = list(range(settings.seeds_at(cell.size)))
        common = [*overrides[_side(cell.arm)], *_common(settings, spec, cell.arm)]
        lr = entry.get("lr") if spec.lr == "grid" and cell.arm.kind != "classical" else None
        folder = study / "runs" / cell.id
        runs = [folder / (f"seed{s}" + (f"-lr{lr}" if lr else "")) for s in seeds]
        done = [r for r in runs if completed(r)]
        failed = [r for r in runs if (summary_of(r) or {}).get("status") == "failed"]
        if len(done) == len(runs):
            status = "done"
        elif failed and len(done) + len(failed) == len(runs):
            status = "failed"
        elif entry.get("stopped") or (final and len(done) < len(runs)):
            status = entry.get("stopped") or "skipped: over budget"
        else:
            status = "pending"
        entry.update(
            arm=cell.arm.name,
            arm_label=cell.arm.label,
            optimizer=cell.optimizer,
            size=cell.size,
            train_images=planning.train_images(cell, settings, _counts_of(state)),
            folder=f"runs/{cell.id}",
            lr=entry.get("lr") or ("find" if spec.lr == "find" and cell.optimizer else None),
            command=command(cell, common, seeds, lr),
            status=status,
        )
    state["elapsed_so_far"] = round(clock.elapsed_s() / 60, 3)
    state["elapsed_minutes"] = state["elapsed_so_far"] if final else None
    write_text(state_file, json.dumps(state, indent=2) + "\n")


def _counts_of(state: dict) -> Counts:
    c = state["counts"]
    return Counts(c["train"], c["val"], c["test"], 1)
