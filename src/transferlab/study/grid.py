"""Which runs go into which `train.py -m` process, and the lr each cell keeps.

Seed 0 of every cell (the lr grid with it; with cross-validation seeds 0-2, a fold each)
runs first, then the other seeds; the cheap kinds first, so a budget that runs out costs
the fewest cells their seeds. Cells that share their seeds, schedule, image size and lrs
share a process, across training-set sizes too.
"""

from __future__ import annotations

from pathlib import Path

from transferlab import arm_kinds
from transferlab.study import plan as planning
from transferlab.study.batches import Batch, summary_of
from transferlab.study.plan import Cell, Counts, Settings
from transferlab.study.state import StudyPlan, job_name


def common(settings: Settings, spec, cell: Cell, counts: Counts) -> list[str]:
    """A cell's own overrides: its schedule, image size, training-set cut, lr finder."""
    arm, plan = cell.arm, planning.schedule(cell, settings, counts)
    out = [f"epochs={plan.epochs}"]
    if plan.val_every > 1:  # about VALIDATIONS checks; early stopping's patience counts them
        out.append(f"trainer.check_val_every_n_epoch={plan.val_every}")
    if size := arm.size_at(settings.image_size):
        out.append(f"data.image_size={size}")
    if settings.train_cut is not None:
        out.append(f"data.source.limit={settings.train_cut}")
    if spec.lr == "find" and arm.kind.needs_optimizer:
        out += ["tune=lr_find", "tune.apply=true", f"tune.num_training={spec.lr_find_batches}"]
    return out


def batches(
    cells, settings, spec, overrides, counts, first: bool, plan: StudyPlan | None = None
) -> list[Batch]:
    """The processes of one phase: seed 0 with the lr grid (first), or the other seeds."""
    grid = spec.lr == "grid"
    out = []
    for kind in arm_kinds.KINDS.values():  # the table's order: cheapest first
        by: dict[tuple, list[Cell]] = {}
        for cell in (c for c in cells if c.arm.kind == kind):
            firsts = settings.lr_seeds_at(cell.size)  # 1, or LR_FOLDS folds with CV
            seeds = tuple(range(firsts) if first else range(firsts, settings.seeds_at(cell.size)))
            lr = None
            if grid and kind.needs_optimizer:
                # The first seed tries the optimizer's grid; later, each cell's picked lr.
                lr = "grid" if first else _picked(plan, cell)
                if not lr:
                    continue  # no completed first-seed run to pick an lr from
            if seeds:
                own = tuple(common(settings, spec, cell, counts))  # epochs differ by size
                by.setdefault((own, seeds, cell.optimizer if lr else None, lr), []).append(cell)
        for (own, seeds, opt, lr), at in by.items():
            base = [*overrides[kind], *own]
            lrs = None if lr is None else lr_candidates(spec, opt, settings) if first else [lr]
            for part in _products(at):
                sizes = ",".join(str(n) for n in dict.fromkeys(c.size for c in part))
                name = f"{kind.name}{f'-{opt}' if opt else ''}-n{sizes}"
                name += f"-lr{','.join(lrs)}" if lrs else ""
                out.append(Batch(f"{name}-seeds{list(seeds)}", part, list(seeds), base, lrs))
    return out


def _picked(plan: StudyPlan | None, cell: Cell) -> str | None:
    found = next((c for c in plan.cells if c.id == cell.id), None) if plan else None
    return found.lr if found else None


def _products(cells: list[Cell]) -> list[list[Cell]]:
    """The cells as sweeps: one if they are every arm x optimizer x size combination of
    their own (a sweep runs the whole product), else one per size."""
    arms, opts = {c.arm.name for c in cells}, {c.optimizer for c in cells}
    sizes = list(dict.fromkeys(c.size for c in cells))
    if len(cells) == len(arms) * len(opts) * len(sizes):
        return [cells]
    return [[c for c in cells if c.size == size] for size in sizes]


def lr_candidates(spec, optimizer: str, settings: Settings) -> list[str]:
    """The lrs a cell's first seed tries: its optimizer's grid, or the grid's middle value
    when the budget narrowed it (study/budget.py)."""
    grid = [as_lr(v) for v in spec.lr_grid[optimizer]]
    return [grid[len(grid) // 2]] if settings.one_lr else grid


def as_lr(value) -> str:
    return repr(float(value))


def pick_lrs(plan: StudyPlan, cells: list[Cell], study: Path, spec) -> None:
    """With study.lr=grid: each cell keeps the lr whose first-seed runs scored best on val
    (with cross-validation: the mean over the folds those seeds held out)."""
    if spec.lr != "grid":
        return
    settings = plan.typed_settings()
    for cell in cells:
        if not cell.arm.kind.needs_optimizer:
            continue
        scores = {}
        for lr in lr_candidates(spec, cell.optimizer, settings):
            found = []
            for seed in range(settings.lr_seeds_at(cell.size)):
                summary = summary_of(study / "runs" / cell.id / job_name(seed, lr)) or {}
                if summary.get("status") == "completed":
                    found.append(summary["metrics"].get("val/acc_best", 0.0))
            if found:
                scores[lr] = sum(found) / len(found)
        if scores:
            plan.cell(cell.id).lr = max(scores, key=scores.get)
