"""`python study.py`: check the arms, probe them, fit the grid to the budget, run, report.

The study folder holds plan.json (what runs, what was cut to fit, each cell's status: the
report reads it; state.py types it), probe/ and runs/ (train.py run folders), runs.log
(their output) and report.md. A killed study continues with `python study.py
resume=<folder>`: plan.json says what was planned, completed runs are skipped, the clock
goes on from where it was.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from transferlab import arm_kinds
from transferlab.study import grid
from transferlab.study import plan as planning
from transferlab.study.arms import (
    arm_of,
    backbone_of,
    base_overrides,
    cv_counts,
    cv_overrides,
    split_counts,
)
from transferlab.study.batches import TRAIN_COMMAND, Batch, command, completed, summary_of
from transferlab.study.plan import Cell, Settings
from transferlab.study.probe import fitted
from transferlab.study.state import StudyPlan, job_name

log = logging.getLogger("transferlab")

# Over the budget by more than 15% is a bug: runs still going then are stopped, leaving
# this much for the report.
HARD_STOP, REPORT_S = 1.12, 15.0


def main(cfg: DictConfig) -> None:
    # A kill (SIGTERM) unwinds like Ctrl-C, so the running sweep is stopped with the study.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    study = Path(HydraConfig.get().runtime.output_dir)
    given = [o for o in HydraConfig.get().overrides.task if not o.startswith(("study.", "resume="))]
    backbone, passed = backbone_of(cfg, given)
    spec = cfg.study
    plan_file = study / "plan.json"
    plan = StudyPlan.load(plan_file)
    clock = Clock(float(spec.budget_minutes) * 60, (plan.elapsed_so_far if plan else 0) or 0.0)
    arms = [arm_of(name, passed, backbone) for name in spec.arms]
    overrides = {k: base_overrides(k, passed, backbone) for k in arm_kinds.KINDS.values()}
    if plan is None:
        counts = split_counts(cfg)
        # A small validation split: lr and winner by k-fold cross-validation instead.
        if folds := planning.cv_folds(spec, counts):
            val_split, counts = counts.val, cv_counts(cfg, passed)
            log.info("Validation holds %d images: picking by %d-fold CV.", val_split, folds)
        settings, estimate_s = fitted(cfg, study, arms, counts, overrides, clock, REPORT_S, folds)
        plan = _new_plan(cfg, backbone, arms, settings, counts, estimate_s)
        plan.val_split = val_split if folds else None
    else:
        log.info("Resuming the study in %s: completed runs are kept.", study)
    settings, counts = plan.typed_settings(), plan.typed_counts()
    if settings.folds:
        extra = cv_overrides(cfg, passed, settings.folds)
        overrides = {k: [*o, *extra] for k, o in overrides.items()}
    cells = planning.planned(arms, list(spec.optimizers), settings)
    for cell in cells:  # the plan, before anything runs: what each run will get
        steps = planning.schedule(cell, settings, counts)
        log.info("  %s: %d steps a run (%d epochs)", cell.id, steps.steps, steps.epochs)
    batches = grid.batches(cells, settings, spec, overrides, counts, first=True)
    _record(plan, plan_file, cells, overrides, clock, spec)
    for phase in (True, False):
        if not phase:
            grid.pick_lrs(plan, cells, study, spec)
            batches = grid.batches(cells, settings, spec, overrides, counts, False, plan)
        for batch in batches:
            _run(batch, study, clock, plan)
            _record(plan, plan_file, cells, overrides, clock, spec)
    _record(plan, plan_file, cells, overrides, clock, spec, final=True)
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


def _new_plan(cfg, backbone, arms, settings: Settings, counts, estimate_s: float) -> StudyPlan:
    estimate = estimate_s / 60
    s = settings
    log.info(
        "Plan: %d arms x %s, %d seeds, %d epochs (>= %d steps a run), %s px, sizes %s%s: "
        "about %.1f of %g min.",
        len(arms) - len(s.arms_dropped), list(cfg.study.optimizers), s.seeds, s.epochs,
        s.min_steps, s.image_size, [n or "all" for n in s.sizes],
        f", cut: {'; '.join(s.cuts)}" if s.cuts else "", estimate, cfg.study.budget_minutes,
    )  # fmt: skip
    return StudyPlan.new(
        s,
        counts,
        str(cfg.study.lr),
        command=" ".join(["python study.py", *HydraConfig.get().overrides.task]),
        data=HydraConfig.get().runtime.choices.get("data"),
        backbone=backbone,
        budget_minutes=float(cfg.study.budget_minutes),
        estimate_minutes=round(estimate, 2),
        started=datetime.now().isoformat(timespec="seconds"),
    )


def _run(batch: Batch, study: Path, clock: Clock, plan: StudyPlan) -> None:
    """One sweep process, stopped where the budget ends; its cells' status is recorded."""
    if not batch.pending(study):
        return
    deadline = HARD_STOP * clock.budget_s - REPORT_S - clock.elapsed_s()
    if deadline <= 0:
        for cell in batch.cells:
            plan.cell(cell.id).stopped = "skipped: over budget"
        return
    resume = any((study / "runs" / c.id).exists() for c in batch.cells)
    argv = [*TRAIN_COMMAND, "-m", *batch.argv(study, resume)]
    log.info("Running %s (%d runs)...", batch.name, len(batch.job_folders(study)))
    with open(study / "runs.log", "a") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            proc.wait(timeout=deadline)
        except subprocess.TimeoutExpired:
            _stop(proc)
            log.warning("The budget ran out in %s: its unfinished runs were stopped.", batch.name)
            for cell in batch.cells:
                plan.cell(cell.id).stopped = "skipped: over budget"
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


def _record(
    plan: StudyPlan, plan_file: Path, cells: list[Cell], overrides, clock, spec, final=False
):
    """Each cell's runs, lr, command and status into plan.json (saved atomically)."""
    study = plan_file.parent
    settings, counts = plan.typed_settings(), plan.typed_counts()
    for cell in cells:
        entry = plan.cell(cell.id)
        seeds = list(range(settings.seeds_at(cell.size)))
        common = [*overrides[cell.arm.kind], *grid.common(settings, spec, cell, counts)]
        lr = entry.lr if spec.lr == "grid" and cell.arm.kind.needs_optimizer else None
        runs = [study / "runs" / cell.id / job_name(s, lr) for s in seeds]
        done = [r for r in runs if completed(r)]
        failed = [r for r in runs if (summary_of(r) or {}).get("status") == "failed"]
        if len(done) == len(runs):
            status = "done"
        elif failed and len(done) + len(failed) == len(runs):
            status = "failed"
        elif entry.stopped or (final and len(done) < len(runs)):
            status = entry.stopped or "skipped: over budget"
        else:
            status = "pending"
        entry.arm, entry.arm_label, entry.optimizer = cell.arm.name, cell.arm.label, cell.optimizer
        entry.arm_family = cell.arm.family
        entry.size, entry.folder, entry.status = cell.size, f"runs/{cell.id}", status
        entry.train_images = planning.train_images(cell, settings, counts)
        entry.steps = planning.schedule(cell, settings, counts).steps
        entry.lr = entry.lr or ("find" if spec.lr == "find" and cell.optimizer else None)
        entry.command = command(cell, common, seeds, lr)
    plan.elapsed_so_far = round(clock.elapsed_s() / 60, 3)
    plan.elapsed_minutes = plan.elapsed_so_far if final else None
    plan.save(plan_file)
