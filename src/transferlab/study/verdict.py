"""A study's numbers from its run folders: each cell's final runs, the winner, the crossover.

Reads only plan.json's cells and the run folders below them (summary.json, .hydra/,
plots/confusion_matrix.csv); report.py turns these into the page.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from transferlab import arm_kinds
from transferlab.config_dirs import CONF_DIR
from transferlab.report.run_folders import Run, find_runs, load_run
from transferlab.report.seeds import interval

PICK = "val/acc_best"  # the winner is picked on validation: test picks would bias test
# metrics that are fractions: intervals clipped to [0, 1]
FRACTIONS = ("acc", "acc_best", "ece", "balanced_acc", "macro_f1")
TEST = "test/acc"


@dataclass
class CellResult:
    """One plan cell and its final runs (every status); `spent_s` counts all its runs."""

    cell: dict
    folder: Path  # the cell's folder: plan.json's "folder" below the study folder
    runs: list[Run] = field(default_factory=list)
    spent_s: float = 0.0

    @property
    def label(self) -> str:
        name = self.cell.get("arm_label") or self.cell["arm"]
        optimizer = self.cell.get("optimizer")
        return f"{name}, {optimizer}" if optimizer else name

    @property
    def recipe(self) -> tuple[str, str | None]:
        return self.cell["arm"], self.cell.get("optimizer")

    @property
    def status(self) -> str:
        return self.cell.get("status") or "pending"

    @property
    def done(self) -> list[Run]:
        return [r for r in self.runs if r.completed]

    @property
    def failed(self) -> list[Run]:
        return [r for r in self.runs if not r.completed]

    @property
    def images(self) -> int | None:
        return self.cell.get("train_images") or self.cell.get("size")

    def values(self, metric: str) -> list[float]:
        found = [r.metrics.get(metric) for r in self.done]
        return [float(v) for v in found if v is not None and math.isfinite(v)]

    def stat(self, metric: str) -> tuple[float, float, float, float]:
        """(mean, std, low, high) of `metric` over the completed seeds (report/seeds.py).

        A t-interval of 3 seeds can reach below 0 or above 1; a fraction cannot, so its
        bounds stop there (a NaN bound stays NaN).
        """
        mean, std, low, high = interval(self.values(metric))
        if metric.rsplit("/", 1)[-1] in FRACTIONS:
            low, high = max(low, 0.0), min(high, 1.0)
        return mean, std, low, high

    def mean(self, metric: str) -> float:
        return self.stat(metric)[0]

    @property
    def still_learning(self) -> int:
        """Completed runs whose val/acc was still improving at the end (runs/convergence.py)."""
        return sum(r.summary.get("converged") is False for r in self.done)

    @property
    def steps(self) -> int | None:
        """Median optimizer steps of the completed runs (None: not recorded, or no training)."""
        found = sorted(int(r.summary["steps"]) for r in self.done if r.summary.get("steps"))
        return found[len(found) // 2] if found else None

    @property
    def trainable(self) -> int | None:
        for run in self.done:
            count = (run.summary.get("params") or {}).get("trainable")
            if count is None:
                count = run.metrics.get("params/trainable")
            if count is not None:
                return int(count)
        return None


def seed_of(run: Run) -> str:
    return run.overrides.get("seed", "?")


def load_cells(study_dir: Path, plan: dict) -> list[CellResult]:
    """Each plan cell with its final runs; unreadable summaries (a run killed mid-write) skipped."""
    results = []
    for cell in plan.get("cells", []):
        folder = study_dir / cell["folder"]
        runs = []
        for path in find_runs(folder) if folder.is_dir() else []:
            try:
                runs.append(load_run(path, folder))
            except (OSError, ValueError):
                continue
        spent = sum(float(r.summary.get("wall_time_s") or 0) for r in runs)
        final = [r for r in runs if _is_final(r, cell.get("lr"))]
        if cell.get("lr") is None and len({r.overrides.get("lr") for r in runs}) > 1:
            final = []  # an lr grid whose pick is not made yet: its runs are the search
        results.append(CellResult(cell, folder, sorted(final, key=_seed_order), spent))
    return results


def _is_final(run: Run, lr: str | None) -> bool:
    """With a fixed lr the other grid points are the search, not the recipe's result."""
    if lr in (None, "find", "grid"):
        return True
    seen = run.overrides.get("lr")
    if seen == str(lr):
        return True
    try:
        return seen is not None and math.isclose(float(seen), float(lr))
    except ValueError:
        return False


def _seed_order(run: Run) -> tuple[int, str]:
    seed = seed_of(run)
    return (int(seed), "") if seed.lstrip("-").isdigit() else (1 << 30, seed)


def size_order(size: int | None) -> float:
    """None (the whole training set) is the largest size."""
    return math.inf if size is None else float(size)


def largest_size(results: Sequence[CellResult]) -> list[CellResult]:
    """The cells at the largest training-set size tried: one per recipe."""
    if not results:
        return []
    top = max((r.cell.get("size") for r in results), key=size_order)
    return [r for r in results if r.cell.get("size") == top]


def ranked(results: Sequence[CellResult]) -> list[CellResult]:
    """Best mean val/acc_best first; recipes without one (none finished) last, in plan order."""

    def key(item: tuple[int, CellResult]) -> tuple[float, int]:
        mean = item[1].mean(PICK)
        return (-mean if math.isfinite(mean) else math.inf, item[0])

    return [r for _, r in sorted(enumerate(results), key=key)]


def contenders(results: Sequence[CellResult]) -> list[CellResult]:
    """Ranked cells that have a validation accuracy and a test accuracy to report."""
    return [r for r in ranked(results) if r.values(PICK) and r.values(TEST)]


def separation(winner: CellResult, runner_up: CellResult) -> str:
    """'clear', 'overlap', 'reversed' (runner-up's test interval above) or 'no interval'."""
    side = apart(winner.stat(TEST)[2:], runner_up.stat(TEST)[2:])
    return {"a": "clear", "b": "reversed", "tie": "overlap", None: "no interval"}[side]


def apart(a: tuple[float, float], b: tuple[float, float]) -> str | None:
    """'a' or 'b' where that side's (low, high) interval lies wholly above the other's,
    'tie' where they overlap, None without both intervals: the one rule for a clear lead."""
    if any(math.isnan(x) for x in (*a, *b)):
        return None
    return "a" if a[0] > b[1] else "b" if b[0] > a[1] else "tie"


def best_by_val(results: Sequence[CellResult], arms: Sequence[str]) -> CellResult | None:
    """Of the cells of these arms, the one with the best mean val/acc_best."""
    found = contenders([r for r in results if r.cell["arm"] in arms])
    return found[0] if found else None


def family_bests(results: Sequence[CellResult], arms: Sequence[str]) -> dict:
    """Size -> the family's best-by-val cell at that size (sizes with results only)."""
    out = {}
    for size in sorted({r.cell.get("size") for r in results}, key=size_order):
        best = best_by_val([r for r in results if r.cell.get("size") == size], arms)
        if best is not None and best.images:
            out[size] = best
    return out


def family_of(result: CellResult) -> arm_kinds.Family:
    """The cell's arm family as plan.json records it (a plan older than the field: the
    family its arm's shipped YAML declares; an unknown one stands on neither side)."""
    name = result.cell.get("arm_family")
    shipped = Path(CONF_DIR) / "arm" / f"{result.cell['arm']}.yaml"
    if not name and shipped.is_file():
        name = OmegaConf.select(OmegaConf.load(shipped), "arm.family")
    return arm_kinds.FAMILIES.get(str(name)) or arm_kinds.Family(str(name))


def frozen_arms(results: Sequence[CellResult]) -> tuple[str, ...]:
    """The arms on the frozen-features side of the crossover."""
    return tuple(sorted({r.cell["arm"] for r in results if family_of(r).frozen}))


def finetune_arms(results: Sequence[CellResult]) -> tuple[str, ...]:
    """The arms on the fine-tuning side: those of the lowest-ranked tuned family present
    (whole fine-tuning; partial or gradual where the study has none)."""
    ranked = {(family_of(r).tuned_rank, r.cell["arm"]) for r in results}
    ranks = [rank for rank, _ in ranked if rank is not None]
    return tuple(sorted(arm for rank, arm in ranked if ranks and rank == min(ranks)))


def crossover(sizes: Sequence[float], a_means: Sequence[float], b_means: Sequence[float]) -> str:
    """Where fine-tuning (a) overtakes frozen features (b) for good, as one sentence.

    The crossover is the first size from which a's mean stays above b's at every larger
    size; N is interpolated on a log scale between the two sizes where a - b changes sign.
    """
    points = sorted(
        (float(s), a - b)
        for s, a, b in zip(sizes, a_means, b_means, strict=True)
        if math.isfinite(a) and math.isfinite(b)
    )
    if not points:
        return "Fine-tuning and frozen features have no size with results from both yet."
    tried = f"({_count(points[0][0])}–{_count(points[-1][0])})"
    above = [d > 0 for _, d in points]
    if all(above):
        return "Fine-tuning beats frozen features at every size tried."
    if not above[-1]:
        also = " (it leads only at some smaller sizes)" if any(above) else ""
        return (
            f"Fine-tuning does not overtake frozen features within the sizes tried {tried}{also}."
        )
    first = max(i for i, up in enumerate(above) if not up) + 1
    (s0, d0), (s1, d1) = points[first - 1], points[first]
    t = d0 / (d0 - d1)  # d0 <= 0 < d1, so t lies in [0, 1)
    n = math.exp(math.log(s0) + t * (math.log(s1) - math.log(s0)))
    return f"Fine-tuning overtakes frozen features from about {_count(float(f'{n:.2g}'))} images."


def leads(
    sizes: Sequence[float],
    a: Sequence[tuple[float, float]],
    b: Sequence[tuple[float, float]],
) -> str:
    """Where fine-tuning (a) or frozen features (b) leads clearly, as one sentence.

    A lead is clear where the two test intervals (low, high) do not overlap; the crossover
    of the means alone can sit where the seeds cannot tell the two apart. Sizes without an
    interval on both sides (fewer than two seeds) are named as such; '' when no size has one.
    """
    states, lone = [], []
    for size, a_interval, b_interval in sorted(zip(sizes, a, b, strict=True)):
        state = apart(a_interval, b_interval)
        if state is None:
            lone.append(_count(size))
            continue
        if states and states[-1][0] == state:
            states[-1][2] = size
        else:
            states.append([state, size, size])
    if not states:
        return ""
    unsure = f" No interval at {', '.join(lone)} images (fewer than two seeds)." if lone else ""
    if all(state == "tie" for state, _, _ in states):
        return (
            "Their test intervals overlap at every size tried: where the means cross is "
            f"within the noise of these seeds.{unsure}"
        )
    words = {
        "a": "fine-tuning leads clearly",
        "b": "frozen features lead clearly",
        "tie": "their intervals overlap",
    }
    parts = [
        f"{words[state]} at {_count(lo)}{f' to {_count(hi)}' if hi != lo else ''} images"
        for state, lo, hi in states
    ]
    return f"By their test intervals, {'; '.join(parts)}.{unsure}"


def _count(n: float) -> str:
    return f"{round(n):,}"


def read_confusion(path: Path) -> tuple[list[str], np.ndarray]:
    """plots/confusion_matrix.csv: class names and counts (rows = true class)."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    classes = rows[0][1:]
    counts = np.array([[float(v) for v in row[1:]] for row in rows[1:]])
    return classes, counts


def summed_confusion(runs: Sequence[Run]) -> tuple[list[str], np.ndarray, int] | None:
    """The runs' test confusion matrices summed (runs with other classes left out), and how
    many were summed; None when no run saved one."""
    classes, total, n = None, None, 0
    for run in runs:
        path = run.path / "plots" / "confusion_matrix.csv"
        if not path.is_file():
            continue
        names, counts = read_confusion(path)
        if classes is None:
            classes, total = names, np.zeros_like(counts)
        if names == classes and counts.shape == total.shape:
            total, n = total + counts, n + 1
    return None if classes is None else (classes, total, n)


def per_class(classes: Sequence[str], counts: np.ndarray) -> list[dict]:
    """A row per true class: test images, accuracy, and the class it is most often taken for."""
    rows = []
    for i, name in enumerate(classes):
        row = counts[i]
        wrong = row.copy()
        wrong[i] = 0
        confused = classes[int(wrong.argmax())] if wrong.sum() > 0 else ""
        total = row.sum()
        accuracy = row[i] / total if total else math.nan
        rows.append(
            {"class": name, "images": int(total), "accuracy": accuracy, "confused": confused}
        )
    return rows
