"""The study's report.md from plan.json and run folders written here: no training runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from transferlab.study.report import main, write_report
from transferlab.study.state import job_name
from transferlab.study.verdict import crossover, leads, per_class, read_confusion

CLASSES = ["0", "1", "2"]
LABELS = {"finetune": "fine-tune", "features_svm": "frozen features + SVM", "scratch": "scratch"}


def make_cell(arm, optimizer="adam", size=None, status="done", lr="find", images=1000):
    parts = [arm, optimizer, None if size is None else f"n{size}"]
    cell_id = "-".join(p for p in parts if p)
    return {
        "id": cell_id,
        "arm": arm,
        "arm_label": LABELS.get(arm, arm),
        "optimizer": optimizer,
        "size": size,
        "train_images": size or images,
        "folder": f"runs/{cell_id}",
        "lr": lr,
        "command": f"python train.py data=digits arm={arm} epochs=3 seed=<seed>",
        "status": status,
    }


def write_run(
    study, cell, seed, test=None, val=None, *, error=None, lr=None, confusion=None, **fields
):
    """A run folder as train.py leaves it: summary.json, .hydra/overrides.yaml, the matrix."""
    run = study / cell["folder"] / job_name(seed, lr)
    overrides = ["data=digits", f"seed={seed}", *([f"lr={lr}"] if lr else [])]
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    metrics = {} if error else {"test/acc": test, "val/acc_best": val, "test/ece": 0.02}
    metrics |= {"time/epoch_s": 1.5} if not error else {}
    summary = {
        "status": "failed" if error else "completed",
        "error": error,
        "overrides": overrides,
        "metrics": metrics,
        "params": {"trainable": 3383818, "total": 3383818},
        "wall_time_s": 20.0,
        **fields,  # e.g. steps, converged (runs/convergence.py)
    }
    (run / "summary.json").write_text(json.dumps(summary))
    if confusion is not None:
        (run / "plots").mkdir()
        rows = [["true \\ predicted", *CLASSES]]
        rows += [[c, *map(str, row)] for c, row in zip(CLASSES, confusion, strict=True)]
        (run / "plots" / "confusion_matrix.csv").write_text("\n".join(map(",".join, rows)))
    return run


def write_plan(study: Path, cells: list[dict], **fields) -> Path:
    plan = {
        "command": "python study.py data=digits study.budget_minutes=10",
        "data": "digits",
        "backbone": "efficientnet_lite0",
        "budget_minutes": 10.0,
        "estimate_minutes": 9.2,
        "started": "2026-12-03T14:30:00",
        "elapsed_minutes": 9.8,
        "cuts": ["epochs 10 -> 3"],
        "settings": {"epochs": 3, "image_size": 48, "seeds": [0, 1, 2], "sizes": [None]},
        "cells": cells,
    } | fields
    study.mkdir(parents=True, exist_ok=True)
    (study / "plan.json").write_text(json.dumps(plan))
    return study


def two_recipes(study, a_tests, a_vals, b_tests, b_vals, **plan):
    """fine-tune (a) and frozen features + SVM (b), one run per seed each."""
    a, b = make_cell("finetune"), make_cell("features_svm", optimizer=None)
    for cell, tests, vals in ((a, a_tests, a_vals), (b, b_tests, b_vals)):
        for seed, (test, val) in enumerate(zip(tests, vals, strict=True)):
            write_run(study, cell, seed, test, val, confusion=[[8, 2, 0], [1, 9, 0], [0, 0, 10]])
    return write_report(write_plan(study, [a, b], **plan)).read_text()


def section(page: str, title: str) -> str:
    return page.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_verdict_comes_first_and_picks_the_winner_by_validation_not_test(tmp_path):
    # fine-tune validates higher but tests lower: the test-accuracy pick would be the SVM.
    page = two_recipes(
        tmp_path, [0.90, 0.91, 0.90], [0.99, 0.99, 0.98], [0.95, 0.96, 0.95], [0.95, 0.94, 0.95]
    )
    headings = [line for line in page.splitlines() if line.startswith("## ")]
    assert headings[0] == "## Verdict"
    verdict = section(page, "Verdict")
    assert "**Winner: fine-tune, adam**" in verdict
    assert "Picked by mean validation accuracy" in verdict
    assert "No clear winner between fine-tune, adam and frozen features + SVM at 3 seeds" in verdict
    assert "frozen features + SVM's test interval (95.3% [93.9, 96.8]) lies above" in verdict
    table = [line for line in verdict.splitlines() if line.startswith("| ")][1:]
    assert table[0].startswith("| **fine-tune, adam** | 90.3% [")
    assert table[1].startswith("| frozen features + SVM | 95.3% [")
    assert "| 3.38 M | 3 done |" in table[0]


def test_cells_still_learning_are_marked_and_the_verdict_warns_of_training_length(tmp_path):
    a, b = make_cell("finetune"), make_cell("features_svm", optimizer=None)
    a["steps"] = 120  # planned: the runner records it per cell
    for seed, converged in enumerate([False, True, False]):
        write_run(tmp_path, a, seed, 0.97, 0.98, steps=120, converged=converged)
        write_run(tmp_path, b, seed, 0.90, 0.91, steps=0, converged=None)
    verdict = section(write_report(write_plan(tmp_path, [a, b])).read_text(), "Verdict")
    assert "**Training length may decide this:** fine-tune, adam (2 of 3 runs)" in verdict
    rows = [line for line in verdict.splitlines() if line.startswith("| ")][1:]
    assert rows[0].endswith("| 120 | still learning (2/3): more steps may change this row |")
    assert rows[1].endswith("| — | — |")  # an SVM fitted by scikit-learn takes no steps
    page = two_recipes(tmp_path / "other", [0.97], [0.98], [0.90], [0.91])
    assert "Training length" not in page  # runs that do not say are not accused
    steps = section(write_report(tmp_path).read_text(), "Training per cell")
    assert "| fine-tune, adam | 1,000 | 120 | 120 | 2 of 3 still learning |" in steps
    # its feature pass's batches are not optimizer steps: no count that reads below min_steps
    assert "| frozen features + SVM | 1,000 | — | one fit | — |" in steps


def test_a_cut_training_set_is_named_in_the_verdicts_first_line(tmp_path):
    a, b = make_cell("finetune", images=300), make_cell("features_svm", optimizer=None, images=300)
    for seed in range(3):
        write_run(tmp_path, a, seed, 0.97, 0.98)
        write_run(tmp_path, b, seed, 0.90, 0.91)
    settings = {
        "epochs": 3,
        "image_size": 48,
        "seeds": [0, 1, 2],
        "sizes": [None],
        "train_cut": 300,
    }
    plan = write_plan(tmp_path, [a, b], settings=settings, counts={"train": 1257})
    verdict = section(write_report(plan).read_text(), "Verdict")
    assert verdict.splitlines()[1].startswith("**This answer is for 300 training images:**")
    assert "from 1,257" in verdict


def test_separated_intervals_win_clearly(tmp_path):
    page = two_recipes(
        tmp_path, [0.97, 0.975, 0.98], [0.98, 0.985, 0.99], [0.90, 0.905, 0.91], [0.9, 0.91, 0.9]
    )
    assert "it wins clearly at 3 seeds" in section(page, "Verdict")
    assert "No clear winner" not in page


def test_overlapping_intervals_say_no_clear_winner(tmp_path):
    page = two_recipes(
        tmp_path, [0.95, 0.97, 0.93], [0.97, 0.98, 0.96], [0.94, 0.96, 0.95], [0.95, 0.96, 0.96]
    )
    verdict = section(page, "Verdict")
    assert "No clear winner between fine-tune, adam and frozen features + SVM at 3 seeds" in verdict
    assert "run more seeds or more data" in verdict


def test_one_seed_gives_no_interval_and_says_so(tmp_path):
    page = two_recipes(tmp_path, [0.97], [0.98], [0.90], [0.91])
    verdict = section(page, "Verdict")
    assert "one seed, so no interval" in verdict
    assert "With one seed there is no interval" in verdict
    assert "wins clearly" not in verdict
    assert "| **fine-tune, adam** | 97.0% | — | — | 98.0% |" in verdict


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # a - b: -0.1, -0.1, +0.05, +0.1: the sign changes between 300 and 1,000, two thirds of
        # the way on a log scale: 300 * (1000/300) ** (2/3) = 669 -> 670.
        ([0.5, 0.6, 0.8, 0.9], [0.6, 0.7, 0.75, 0.8], "from about 670 images"),
        ([0.7, 0.8, 0.9, 0.95], [0.6, 0.7, 0.8, 0.9], "beats frozen features at every size tried"),
        ([0.5, 0.6, 0.7, 0.8], [0.6, 0.7, 0.8, 0.9], "within the sizes tried (100–3,000)."),
        # ahead at 100, behind at 300, ahead from 1,000 on: the crossover that lasts counts
        ([0.7, 0.6, 0.8, 0.9], [0.6, 0.7, 0.7, 0.8], "from about 550 images"),
        ([0.5, 0.7, 0.8, 0.9], [0.6, 0.7, 0.7, 0.8], "from about 300 images"),  # tie at 300
        ([0.7, 0.8, 0.7, 0.8], [0.6, 0.7, 0.8, 0.9], "(it leads only at some smaller sizes)"),
    ],
)
def test_crossover_interpolates_the_last_sign_change_on_a_log_scale(a, b, expected):
    assert expected in crossover([100, 300, 1000, 3000], a, b)


def test_crossover_ignores_sizes_without_results():
    sentence = crossover([100, 300, 1000], [0.5, math.nan, 0.9], [0.6, 0.7, 0.8])
    assert "from about 320 images" in sentence  # between 100 and 1,000: 10 ** 2.5 = 316


NAN = (math.nan, math.nan)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # the means cross between 300 and 1,000, but only 3,000 separates the intervals
        (
            [(0.40, 0.50), (0.60, 0.70), (0.78, 0.86), (0.90, 0.94)],
            [(0.55, 0.65), (0.62, 0.72), (0.76, 0.84), (0.80, 0.88)],
            "By their test intervals, frozen features lead clearly at 100 images; their "
            "intervals overlap at 300 to 1,000 images; fine-tuning leads clearly at 3,000 images.",
        ),
        (
            [(0.5, 0.7)] * 4,
            [(0.6, 0.8)] * 4,
            "Their test intervals overlap at every size tried: where the means cross is within "
            "the noise of these seeds.",
        ),
        # one seed at 3,000: no interval there, said rather than counted as a tie
        (
            [(0.5, 0.6), (0.7, 0.8), (0.85, 0.9), NAN],
            [(0.7, 0.8), (0.7, 0.8), (0.6, 0.7), (0.9, 0.9)],
            "frozen features lead clearly at 100 images; their intervals overlap at 300 images; "
            "fine-tuning leads clearly at 1,000 images. No interval at 3,000 images (fewer "
            "than two seeds).",
        ),
    ],
)
def test_leads_are_called_clear_only_where_the_test_intervals_part(a, b, expected):
    assert expected in leads([100, 300, 1000, 3000], a, b)


def test_leads_say_nothing_without_any_interval():
    assert leads([100, 300], [NAN, NAN], [NAN, NAN]) == ""


def test_per_class_accuracy_comes_from_the_confusion_matrix_rows(tmp_path):
    study = tmp_path / "study"
    cell = make_cell("finetune")
    run = write_run(study, cell, 0, 0.9, 0.9, confusion=[[8, 2, 0], [1, 9, 0], [0, 3, 7]])
    classes, counts = read_confusion(run / "plots" / "confusion_matrix.csv")
    rows = per_class(classes, counts)
    assert [r["accuracy"] for r in rows] == pytest.approx([0.8, 0.9, 0.7])
    assert [r["confused"] for r in rows] == ["1", "0", "1"]
    write_run(study, cell, 1, 0.9, 0.9, confusion=[[10, 0, 0], [0, 10, 0], [0, 0, 10]])
    page = write_report(write_plan(study, [cell])).read_text()
    winner = section(page, "Winner per class")
    assert "from its 2 seeds' test confusion matrices summed" in winner
    assert "| 0 | 20 | 90.0% | 1 |" in winner  # (8 + 10) / 20
    assert "| 2 | 20 | 85.0% | 1 |" in winner
    summed = np.loadtxt(study / "plots" / "winner_confusion.csv", delimiter=",", skiprows=1)
    assert summed[:, 1:].sum() == 60


def test_a_failed_cell_and_a_failed_seed_are_reported_with_their_error(tmp_path):
    good, broken = make_cell("finetune"), make_cell("scratch", status="failed")
    for seed in range(2):
        write_run(tmp_path, good, seed, 0.9, 0.9)
    write_run(tmp_path, good, 2, error="ValueError: lr is NaN\n  at line 3")
    write_run(tmp_path, broken, 0, error="RuntimeError: out of memory\nTraceback (most recent)")
    page = write_report(write_plan(tmp_path, [good, broken])).read_text()
    failed = section(page, "Verdict").split("### Failed runs", 1)[1]
    assert (
        "| fine-tune, adam | 1,000 | 2 | ValueError: lr is NaN | `runs/finetune-adam/seed2` |"
        in failed
    )
    assert "| scratch, adam | 1,000 | 0 | RuntimeError: out of memory |" in failed
    assert "Traceback" not in page and "at line 3" not in page
    assert "| 2 done, 1 failed |" in page
    assert "| failed (0 done, 1 failed) |" in page


def test_a_partial_study_renders_and_marks_what_is_missing(tmp_path):
    cells = [
        make_cell("finetune", status="pending"),
        make_cell("features_svm", optimizer=None, status="pending"),
        make_cell("scratch", status="skipped: over budget"),
    ]
    write_run(tmp_path, cells[0], 0, 0.9, 0.92)
    page = write_report(write_plan(tmp_path, cells, elapsed_minutes=None)).read_text()
    verdict = section(page, "Verdict")
    assert "**Not finished:** 2 of 3 cells pending" in verdict
    assert "**Winner: fine-tune, adam**" in verdict and "only recipe with a finished run" in verdict
    assert "| frozen features + SVM | — | — | — | — | — | — | — | — | pending |" in verdict
    assert "Skipped to fit the budget: scratch, adam." in verdict
    assert "| elapsed | not finished |" in section(page, "Plan")
    nothing = write_report(write_plan(tmp_path / "fresh", cells[1:])).read_text()
    assert "No recipe has a finished run yet" in nothing


def test_final_runs_of_an_lr_grid_are_those_with_the_chosen_lr(tmp_path):
    cell = make_cell("finetune", lr="0.001")
    write_run(tmp_path, cell, 0, 0.99, 0.99, lr="0.01")  # a grid point, not the recipe
    write_run(tmp_path, cell, 1, 0.80, 0.80, lr="0.001")
    write_run(tmp_path, cell, 2, 0.82, 0.82, lr="1e-3")
    page = write_report(write_plan(tmp_path, [cell])).read_text()
    assert "test accuracy **81.0% [" in page
    assert "for seed in 1 2; do python train.py data=digits arm=finetune" in page
    # Before the grid's pick is made (lr null), its first-seed runs are the search only.
    searching = make_cell("finetune", status="pending", lr=None)
    for lr, acc in (("0.0003", 0.7), ("0.001", 0.8), ("0.003", 0.75)):
        write_run(tmp_path / "grid", searching, 0, acc, acc, lr=lr)
    page = write_report(write_plan(tmp_path / "grid", [searching])).read_text()
    assert "No recipe has a finished run yet" in page
    assert "| fine-tune, adam | — | — | — | — | — | — | 60 s | — | pending |" in page


def sized_study(study: Path) -> Path:
    """fine-tune behind frozen features at 100 and 300 images, ahead from 1,000 on."""
    means = {"finetune": [0.50, 0.70, 0.90, 0.95], "features_svm": [0.60, 0.75, 0.85, 0.88]}
    cells = []
    for size, step in zip([100, 300, 1000, 3000], range(4), strict=True):
        for arm, curve in means.items():
            cell = make_cell(arm, optimizer="adam" if arm == "finetune" else None, size=size)
            for seed, noise in enumerate([-0.01, 0.0, 0.01]):
                acc = curve[step] + noise
                write_run(study, cell, seed, acc, acc, confusion=[[5, 0, 0], [0, 5, 0], [1, 0, 4]])
            cells.append(cell)
    return write_plan(study, cells, cuts=[])


def test_data_efficiency_states_the_crossover_and_tabulates_each_size(tmp_path):
    page = write_report(sized_study(tmp_path)).read_text()
    efficiency = section(page, "Data efficiency")
    assert "Fine-tuning overtakes frozen features from about 550 images" in efficiency
    assert "By their test intervals, frozen features lead clearly at 100" in efficiency
    assert "fine-tuning leads clearly at 1,000 to 3,000 images" in efficiency
    assert "| recipe | 100 images | 300 images | 1,000 images | 3,000 images |" in efficiency
    assert "| fine-tune, adam | 50.0% [47.5, 52.5] | 70.0% [" in efficiency
    assert "largest training-set size tried (3,000 images)" in section(page, "Verdict")
    assert "Nothing was cut: the preferred settings fit the budget." in page


def test_plots_are_written_as_png_and_linked_relative(tmp_path):
    page = write_report(sized_study(tmp_path)).read_text()
    for name in ("recipes.png", "data_efficiency.png", "winner_confusion.png"):
        png = (tmp_path / "plots" / name).read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000, name
        assert f"](plots/{name})" in page
    assert [line for line in page.splitlines() if line.startswith("## ")] == [
        "## Verdict",
        "## Winner per class",
        "## Test accuracy per recipe",
        "## Training per cell",
        "## Data efficiency",
        "## Plan",
        "## Reproduce",
    ]


def test_rendering_again_gives_the_same_page_and_the_module_entry_works(tmp_path, capsys):
    study = sized_study(tmp_path)
    first = write_report(study).read_text()
    assert main([str(study)]) == 0
    assert capsys.readouterr().out.strip() == str(study / "report.md")
    assert (study / "report.md").read_text() == first
    assert main([str(tmp_path / "missing")]) == 2
    assert "No plan.json in" in capsys.readouterr().err


def test_an_accuracy_interval_stops_at_0_and_100_percent(tmp_path):
    # Three seeds at 2%, 40%, 10%: the t-interval's raw bounds are about -40% and 74%.
    page = two_recipes(
        tmp_path, [0.02, 0.40, 0.10], [0.5, 0.6, 0.55], [0.9, 1.0, 1.0], [0.9, 1.0, 1.0]
    )
    table = "\n".join(
        line for line in section(page, "Verdict").splitlines() if line.startswith("| ")
    )
    assert "17.3% [0.0, " in table  # fine-tune: its low bound would be negative
    assert "96.7% [" in table and ", 100.0]" in table  # the SVM: its high bound would pass 100%


def test_the_results_page_section_carries_the_studys_plot_crossover_and_wall_time(tmp_path):
    from results import efficiency_check, results_page

    study = sized_study(tmp_path / "study")
    write_report(study)
    out = tmp_path / "docs"
    text = efficiency_check.render("From how many images?", study, "python study.py ...", 99, out)
    assert text.startswith("## data_efficiency\n\nFrom how many images?\n")
    assert "Fine-tuning overtakes frozen features from about 550 images" in text
    training = text.split("Training behind each point of the curve:\n", 1)[1]
    assert training.startswith("\nEvery trained run gets at least study.min_steps")
    assert (
        "| recipe | training images | steps planned | steps run (median) | converged |" in training
    )
    assert "![test accuracy against training images](data_efficiency_mnist.png)" in text
    assert (out / "data_efficiency_mnist.png").read_bytes().startswith(b"\x89PNG")
    assert "— 588 s wall" in text  # the study's own elapsed minutes (9.8), not the 99 s given
    assert results_page.wall_seconds([text]) == 588
    parsed = results_page.parse("# Results\n\n" + text)
    assert list(parsed.sections) == ["data_efficiency"]  # merged by name with later pages
