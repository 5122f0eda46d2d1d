"""The study page after its verdict: the winner per class, test accuracy per recipe, data
efficiency across sizes, the plan and the commands; and the number formats every section
uses (accuracies as percentages with one decimal)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from transferlab.runs.plots import save_confusion
from transferlab.study import verdict as v
from transferlab.study.plots import save_data_efficiency, save_recipes
from transferlab.study.verdict import CellResult


def winner_section(winner: CellResult | None, plots: Path) -> str:
    if winner is None:
        return ""
    summed = v.summed_confusion(winner.done)
    lines = ["## Winner per class", ""]
    if summed is None:
        return "\n".join([*lines, f"{winner.label}: no run saved a test confusion matrix."])
    classes, counts, n = summed
    lines += [
        f"{winner.label}: test accuracy per class, from its {n} seed"
        f"{'s' if n > 1 else ''}' test confusion matrices summed (each run's "
        "plots/confusion_matrix.csv), so every seed's test images count.",
        "",
        "| class | test images | accuracy | most often taken for |",
        "|---|---|---|---|",
    ]
    for row in v.per_class(classes, counts):
        lines.append(
            f"| {row['class']} | {row['images']:,} | {pct(row['accuracy'])} "
            f"| {row['confused'] or '—'} |"
        )
    save_confusion(torch.tensor(counts, dtype=torch.long), list(classes), plots)
    for suffix in (".png", ".csv"):  # the run plots' names, renamed for the study page
        (plots / f"confusion_matrix{suffix}").replace(plots / f"winner_confusion{suffix}")
    lines += ["", "![the winner's test confusion matrix](plots/winner_confusion.png)"]
    return "\n".join(lines)


def recipes_section(top: list[CellResult], winner: CellResult | None, plots: Path) -> str:
    points = [(r.label, *acc_interval(r)) for r in top if r.values(v.TEST)]
    if not points:
        return ""
    save_recipes(points, winner.label if winner else None, plots / "recipes.png")
    caption = "Mean and 95% interval over seeds; red: the winner (picked on validation)."
    picture = "![test accuracy per recipe](plots/recipes.png)"
    return f"## Test accuracy per recipe\n\n{picture}\n\n{caption}"


def efficiency_section(results: list[CellResult], plots: Path) -> str:
    sizes = sorted({r.cell.get("size") for r in results}, key=v.size_order)
    if len(sizes) < 2:
        return ""
    recipes: dict[tuple, list] = {}
    for r in results:
        recipes.setdefault(r.recipe, []).append(r)
    curves = {
        cells[0].label: [(float(c.images or 0), *acc_interval(c)) for c in cells if c.images]
        for cells in recipes.values()
    }
    lines = ["## Data efficiency", "", _crossover_sentence(results), ""]
    if any(not math.isnan(p[1]) for curve in curves.values() for p in curve):
        save_data_efficiency(curves, plots / "data_efficiency.png")
        lines += ["![test accuracy against training images](plots/data_efficiency.png)", ""]
    by_size = {s: [r for r in results if r.cell.get("size") == s] for s in sizes}
    lines += [
        "| recipe | " + " | ".join(images(by_size[s]) for s in sizes) + " |",
        "|---|" + "---|" * len(sizes),
    ]
    for cells in recipes.values():
        at = {c.cell.get("size"): c for c in cells}
        row = [
            pct(*acc_interval(at[s])) if s in at and at[s].done else _missing(at.get(s))
            for s in sizes
        ]
        lines.append(f"| {cells[0].label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _crossover_sentence(results: list[CellResult]) -> str:
    tuned_arms, frozen_arms = v.finetune_arms(results), v.frozen_arms(results)
    tuned = v.family_bests(results, tuned_arms)
    frozen = v.family_bests(results, frozen_arms)
    if not tuned or not frozen:
        return "No crossover to state: the study needs a fine-tune and a frozen-features arm."
    both = [s for s in tuned if s in frozen]
    images = [float(tuned[s].images) for s in both]
    sentence = v.crossover(
        images, [tuned[s].mean(v.TEST) for s in both], [frozen[s].mean(v.TEST) for s in both]
    )
    clear = v.leads(
        images,
        [acc_interval(tuned[s])[1:] for s in both],
        [acc_interval(frozen[s])[1:] for s in both],
    )
    return (
        f"{sentence} {clear + ' ' if clear else ''}At each size the best of "
        f"`{'`, `'.join(tuned_arms)}` is set against the best of `{'`, `'.join(frozen_arms)}`, "
        "each picked on validation."
    )


def steps_section(results: list[CellResult]) -> str:
    """Per cell: the optimizer steps a run was planned, the steps its runs took, converged."""
    rows = []
    for r in results:
        planned = r.cell.get("steps")
        if not r.cell.get("optimizer"):  # a scikit-learn head on frozen features: one fit
            rows.append(f"| {r.label} | {size_text(r)} | — | one fit | — |")
            continue
        learning = f"{r.still_learning} of {len(r.done)} still learning" if r.still_learning else ""
        judged = [run.summary.get("converged") for run in r.done]
        state = learning or ("yes" if judged and all(judged) else "—" if not r.done else "?")
        rows.append(
            f"| {r.label} | {size_text(r)} | {f'{planned:,}' if planned else '—'} "
            f"| {f'{r.steps:,}' if r.steps else '—'} | {state} |"
        )
    return "\n".join(
        [
            "## Training per cell",
            "",
            "Every trained run gets at least study.min_steps optimizer steps, or stops earlier "
            "when early stopping on validation says it converged. Converged: validation accuracy "
            "no longer improving over the last quarter of the run; ? = too few validations. "
            "A scikit-learn head on frozen features is fitted once, with no steps.",
            "",
            "| recipe | training images | steps planned | steps run (median) | converged |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )


def plan_section(plan: dict) -> str:
    budget, elapsed = plan.get("budget_minutes"), plan.get("elapsed_minutes")
    if elapsed is None:
        so_far = plan.get("elapsed_so_far")  # the runner's clock at its last record
        spent = "not finished" + (f": {so_far:.1f} min so far" if so_far is not None else "")
    elif not budget:
        spent = f"{elapsed:.1f} min"
    elif elapsed > budget:
        spent = f"{elapsed:.1f} min, over budget by {100 * (elapsed / budget - 1):.0f}%"
    else:
        spent = f"{elapsed:.1f} min, within budget ({100 * elapsed / budget:.0f}% of it)"
    rows = [
        ("command", f"`{plan.get('command', '?')}`"),
        ("started", plan.get("started", "?")),
        ("budget", _minutes(budget)),
        ("estimate before starting", _minutes(plan.get("estimate_minutes"))),
        ("elapsed", spent),
        *((key, _setting(value)) for key, value in (plan.get("settings") or {}).items()),
    ]
    lines = ["## Plan", "", "| | |", "|---|---|", *(f"| {k} | {val} |" for k, val in rows), ""]
    cuts = plan.get("cuts") or []
    if cuts:
        lines += ["Cut to fit the budget:", "", *(f"- {c}" for c in cuts)]
    else:
        lines.append("Nothing was cut: the preferred settings fit the budget.")
    return "\n".join(lines)


def reproduce_section(results: list[CellResult], plan: dict) -> str:
    planned = [str(s) for s in (plan.get("settings") or {}).get("seeds", [])]
    lines = ["## Reproduce", "", "Each recipe's train.py command per size, from the project root:"]
    recipes: dict[tuple, list] = {}
    for r in results:
        recipes.setdefault(r.recipe, []).append(r)
    for cells in recipes.values():
        lines += ["", f"### {cells[0].label}"]
        for c in cells:
            seeds = [v.seed_of(run) for run in c.runs] or planned
            chosen = [(run.summary.get("lr_find") or {}).get("suggestion") for run in c.done]
            found = [f"{x:.3g}" for x in chosen if isinstance(x, int | float)]
            note = f"; the lr finder chose {', '.join(found)}" if found else ""
            command = c.cell.get("command", "")
            if "<seed>" in command and seeds:
                command = (
                    f"for seed in {' '.join(seeds)}; do {command.replace('<seed>', '$seed')}; done"
                )
            lines += [
                "",
                f"{images([c])}, seeds {', '.join(seeds) or '—'}{note}:",
                "",
                "```bash",
                command,
                "```",
            ]
    return "\n".join(lines)


def acc_interval(r: CellResult) -> tuple[float, float, float]:
    """Mean test accuracy and its 95% interval (NaN bounds with one seed)."""
    mean, _, low, high = r.stat(v.TEST)
    return mean, low, high


def pct(mean: float, low: float = math.nan, high: float = math.nan) -> str:
    """97.4% [96.8, 98.0]: a fraction as a percentage with one decimal, interval if known."""
    if mean is None or math.isnan(mean):
        return "—"
    if math.isnan(low):
        return f"{100 * mean:.1f}%"
    return f"{100 * mean:.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def number(value: float, spec: str) -> str:
    return "—" if math.isnan(value) else format(value, spec)


def _missing(r: CellResult | None) -> str:
    return "—" if r is None else r.status


def images(cells: list[CellResult]) -> str:
    count = max((c.images or 0 for c in cells), default=0)
    if cells and all(c.cell.get("size") is None for c in cells):
        # "all" would hide a cut: the plan section says whether the set was cut to fit.
        return f"{count:,} training images" if count else "all training images"
    return f"{count:,} images"


def size_text(r: CellResult) -> str:
    return f"{r.images:,}" if r.images else "all"


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes / 60:.1f} h"


def _minutes(value) -> str:
    return "?" if value is None else f"{value:g} min"


def params(count: int | None) -> str:
    if count is None:
        return "—"
    for scale, unit in ((1e6, " M"), (1e3, " k")):
        if count >= scale:
            return f"{count / scale:.3g}{unit}"
    return str(count)


def _setting(value) -> str:
    if value is None or value == []:
        return "—"
    if isinstance(value, list):
        return ", ".join(
            "whole training set" if x is None else f"{x:,}" if isinstance(x, int) else str(x)
            for x in value
        )
    return str(value)


def first_line(text) -> str:
    lines = str(text or "").strip().splitlines()
    line = lines[0] if lines else ""
    return (line[:200] + "…" if len(line) > 200 else line).replace("|", "\\|")
