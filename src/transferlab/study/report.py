"""report.md of a study: the verdict first, then the winner per class, test accuracy per
recipe, data efficiency across training-set sizes, the plan, and the commands to reproduce.

Reads only <study>/plan.json and the run folders its cells name, so it renders a study that
is still running or was stopped too, marking what is missing. Re-render with

    python -m transferlab.study.report <study folder>
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from transferlab.atomic import atomic_write_text
from transferlab.errors import UserError
from transferlab.study import verdict as v
from transferlab.study.plan import LR_FOLDS
from transferlab.study.sections import (
    acc_interval,
    duration,
    efficiency_section,
    first_line,
    images,
    number,
    params,
    pct,
    plan_section,
    recipes_section,
    reproduce_section,
    size_text,
    steps_section,
    winner_section,
)
from transferlab.study.verdict import CellResult

PLOTS = ("recipes.png", "data_efficiency.png", "winner_confusion.png", "winner_confusion.csv")


def write_report(study_dir: Path) -> Path:
    """Write <study>/report.md and <study>/plots/*.png from plan.json and the run folders."""
    study_dir = Path(study_dir)
    plan = read_plan(study_dir)
    results = v.load_cells(study_dir, plan)
    plots = study_dir / "plots"
    for name in PLOTS:  # a picture the runs no longer support must not stay linked
        (plots / name).unlink(missing_ok=True)
    top = v.ranked(v.largest_size(results))
    found = v.contenders(top)
    winner = found[0] if found else None
    sections = [
        f"# Study: {plan.get('data', '?')} on {plan.get('backbone', '?')}",
        verdict_section(plan, results, top, found),
        winner_section(winner, plots),
        recipes_section(top, winner, plots),
        steps_section(results),
        efficiency_section(results, plots),
        plan_section(plan),
        reproduce_section(results, plan),
    ]
    path = study_dir / "report.md"
    atomic_write_text(path, "\n\n".join(s for s in sections if s) + "\n")
    return path


def read_plan(study_dir: Path) -> dict:
    path = study_dir / "plan.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(
            f"No plan.json in {study_dir}: that is not a study folder. Pass the folder "
            "study.py printed when it started (logs/study/<time>_<id>)."
        ) from None
    except ValueError as err:
        raise UserError(
            f"{path} is not valid JSON ({err}). Re-run `python study.py resume={study_dir}`, "
            "which writes the plan again."
        ) from None


def verdict_section(
    plan: dict, results: list[CellResult], top: list[CellResult], found: list[CellResult]
) -> str:
    lines = ["## Verdict", ""]
    cut, whole = (
        (plan.get("settings") or {}).get("train_cut"),
        (plan.get("counts") or {}).get("train"),
    )
    if cut and whole and cut < whole:
        lines += [
            f"**This answer is for {cut:,} training images:** the budget cut the training set "
            f"from {whole:,}; with more images the ranking may change.",
            "",
        ]
    open_cells = [r for r in results if r.status == "pending"]
    if open_cells or plan.get("elapsed_minutes") is None:
        what = f"{len(open_cells)} of {len(results)} cells pending (marked below)"
        lines += [
            f"> **Not finished:** {what if open_cells else 'the study has not recorded its end'}"
            ". `python study.py resume=<this folder>` continues it; this page shows the runs "
            "finished so far.",
            "",
        ]
    lines += [_verdict(found), ""]
    if folds := (plan.get("settings") or {}).get("folds"):
        pooled = (plan.get("counts") or {}).get("val") == 0  # arms.cv_counts pooled it
        lines += [_cross_validated(folds, plan.get("val_split"), pooled), ""]
    if caveat := _training_length(found):
        lines += [caveat, ""]
    if len({r.cell.get("size") for r in results}) > 1 and top:
        lines += [f"Recipes compared at the largest training-set size tried ({images(top)}).", ""]
    lines += ["Every recipe, best validation accuracy first:", "", *_recipe_table(top, found)]
    skipped = [r.label for r in top if r.status.startswith("skipped")]
    if skipped:
        lines += ["", f"Skipped to fit the budget: {', '.join(skipped)}."]
    failures = _failures(results)
    if failures:
        lines += ["", "### Failed runs", "", *failures]
    return "\n".join(lines)


def _cross_validated(folds: int, val_split: int | None, pooled: bool) -> str:
    held = f"only {val_split:,} images" if val_split is not None else "too few images"
    where = "its images joined the training images" if pooled else "it was left aside"
    return (
        f"**Picked by {folds}-fold cross-validation.** The validation split held {held} "
        f"(under `study.cv_below`), so {where} and each run validated on its own fold of "
        "the training images: the run of seed s trained on the other "
        f"{folds - 1} folds. Each lr was kept on its mean over {LR_FOLDS} folds and each "
        'recipe ranked on the mean over all its folds ("val acc" below); the test split was '
        "read once per run, for the numbers reported."
    )


def _verdict(found: list[CellResult]) -> str:
    if not found:
        return "No recipe has a finished run yet: there is nothing to pick from."
    w = found[0]
    mean, _, low, high = w.stat(v.TEST)
    n = len(w.values(v.TEST))
    over = f"over {n} seeds" if n > 1 else "one seed, so no interval"
    head = (
        f"**Winner: {w.label}**, test accuracy **{pct(mean, low, high)}** (mean and 95% "
        f"interval {over}). Picked by mean validation accuracy (`val/acc_best` "
        f"{pct(w.mean(v.PICK))}), not by test accuracy: picking on test would bias the "
        "test number reported here."
    )
    if len(found) == 1:
        return head + " It is the only recipe with a finished run: nothing to compare it with."
    r = found[1]
    seeds = _seeds_phrase(w, r)
    rival = f"{r.label} ({pct(*acc_interval(r))})"
    tail = {
        "clear": f"Its interval lies wholly above the runner-up's, {rival}: it wins clearly "
        f"at {seeds}.",
        "overlap": f"No clear winner between {w.label} and {r.label} at {seeds}: their test "
        f"intervals overlap ({rival}); run more seeds or more data.",
        "reversed": f"No clear winner between {w.label} and {r.label} at {seeds}: "
        f"{r.label}'s test interval ({pct(*acc_interval(r))}) lies above the winner's although "
        "it validated lower; run more seeds or more data.",
        "no interval": f"With one seed there is no interval, so the gap to the runner-up, "
        f"{rival}, cannot be told from training noise: run more seeds (study.seeds=3).",
    }[v.separation(w, r)]
    return f"{head}\n\n{tail}"


def _training_length(found: list[CellResult]) -> str | None:
    """Said when the winner or its runner-up was still improving when its runs stopped."""
    learning = [r for r in found[:2] if r.still_learning]
    if not learning:
        return None
    who = " and ".join(f"{r.label} ({r.still_learning} of {len(r.done)} runs)" for r in learning)
    return (
        f"**Training length may decide this:** {who} still improved over the last quarter of "
        "training, so the lead could be a training-length effect rather than the recipe. "
        "Fix: more steps (study.min_steps) or a larger study.budget_minutes."
    )


def _converged(r: CellResult) -> str:
    if not r.done:
        return "—"
    if r.still_learning:
        return f"still learning ({r.still_learning}/{len(r.done)}): more steps may change this row"
    if any(run.summary.get("converged") is None for run in r.done):
        return "?" if r.steps else "—"  # no steps: a head fitted by scikit-learn
    return "yes"


def _seeds_phrase(a: CellResult, b: CellResult) -> str:
    na, nb = len(a.values(v.TEST)), len(b.values(v.TEST))
    return f"{na} seeds" if na == nb else f"{na} and {nb} seeds"


def _recipe_table(top: list[CellResult], found: list[CellResult]) -> list[str]:
    lines = [
        "| recipe | test acc (95% interval) | balanced acc | macro-F1 | val acc | ECE "
        "| s/epoch | wall time | trainable params | seeds | steps | converged |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in top:
        name = f"**{r.label}**" if found and r is found[0] else r.label
        epoch_s = r.mean("time/epoch_s")
        cells = [
            name,
            pct(*acc_interval(r)),
            pct(r.mean("test/balanced_acc")),
            number(r.mean("test/macro_f1"), ".3f"),
            pct(r.mean(v.PICK)),
            number(r.mean("test/ece"), ".3f"),
            number(epoch_s, ".1f"),
            duration(r.spent_s) if r.spent_s else "—",
            params(r.trainable),
            _seed_state(r),
            f"{r.steps:,}" if r.steps else "—",
            _converged(r),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Balanced acc: the mean of the classes' test recalls; macro-F1: the mean of their "
        "F1 scores (both tell what accuracy hides on imbalanced classes). "
        "ECE: expected calibration error of the test predictions (15 bins, lower is "
        "better). Wall time: every run of the recipe, its lr search included. Steps: optimizer "
        "steps of a run (median). Converged: val accuracy no longer improving over the last "
        "quarter of training, or stopped early; ? = too few validations to tell.",
    ]
    return lines


def _seed_state(r: CellResult) -> str:
    done, failed = len(r.done), len(r.failed)
    counts = f"{done} done" + (f", {failed} failed" if failed else "")
    if r.status == "done":
        return counts
    return r.status if not r.runs else f"{r.status} ({counts})"


def _failures(results: list[CellResult]) -> list[str]:
    rows = []
    for r in results:
        for run in r.failed:
            error = first_line(run.summary.get("error")) or "failed without an error message"
            where = f"`{Path(r.cell['folder']) / run.path.relative_to(r.folder)}`"
            rows.append(f"| {r.label} | {size_text(r)} | {v.seed_of(run)} | {error} | {where} |")
        if r.status == "failed" and not r.failed:
            rows.append(
                f"| {r.label} | {size_text(r)} | — | the cell failed before any run "
                f"wrote summary.json | `{r.cell['folder']}` |"
            )
    if not rows:
        return []
    return ["| recipe | training images | seed | error | run |", "|---|---|---|---|---|", *rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m transferlab.study.report",
        description="Re-render a study's report.md and plots.",
    )
    parser.add_argument("folder", help="the study folder (holding plan.json)")
    args = parser.parse_args(argv)
    try:
        print(write_report(Path(args.folder)))
    except UserError as err:
        print(f"Error: {err}", file=sys.stderr)
        return err.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
