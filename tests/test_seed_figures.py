"""The seeds' own figures stand beside their rows of the results page, and only there."""

from __future__ import annotations

import pandas as pd
import pytest

from results import results, results_page, seed_figures
from tests.conftest import ROOT

# (experiment, arm) -> how its seed's-figure cell starts: SEEDS.md's numbers, as fractions.
EXPECTED = {
    ("cnn_mnist_vs_digits", ""): "0.9800 (seed 001",
    ("transfer_mnist_cnn_to_digits", "scratch"): "0.8700 (twin of seed 001's CNN",
    ("transfer_mnist_cnn_to_digits", "finetune"): "— (twin of seed 001's MNIST CNN",
    ("lite0_mnist_finetune_vs_features_vs_svm", "finetune"): "0.9957 (twin of seed 001's AlexNet",
    ("lite0_mnist_finetune_vs_features_vs_svm", "features_linear"): (
        "0.9752 (twin of seed 001's AlexNet"
    ),
    ("lite0_svm_vs_finetune_vs_scratch", "features_svm"): "0.8830 (twin of seed 004's VGG16",
    ("lite0_svm_vs_finetune_vs_scratch", "finetune"): "~0.86 (twin of seed 004's VGG16",
    ("lite0_svm_vs_finetune_vs_scratch", "backbone_scratch"): "~0.82 (twin of seed 004's VGG16",
}
ON_THE_PAGE = {e.name: e for e in results.EXPERIMENTS}


def _section(name: str, arms: list[str], column: str) -> str:
    """A section as results.section renders it, with an arm column (none if one empty arm)."""
    frame = pd.DataFrame({"recipe": arms}) if arms != [""] else pd.DataFrame(index=[0])
    frame[seed_figures.COLUMN] = "n/a"  # what pages made before the table said
    frame["n"], frame["test/acc"] = "3", [f"0.9{i}00 ± 0.0010" for i in range(len(arms))]
    frame = frame.rename(columns={"recipe": column})
    return results.section(ON_THE_PAGE[name], frame, "python train.py -m ...", 12.0, None)


def _rows(section: str) -> dict[str, list[str]]:
    """arm -> the cells after it, of the section's table."""
    lines = [line for line in section.splitlines() if line.startswith("| ")]
    header = [c.strip() for c in lines[0].split("|")[1:-1]] if lines else []
    if seed_figures.COLUMN not in header:
        return {}  # another kind of table (the study's, the zoo's): it claims no seed figure
    column = header.index(seed_figures.COLUMN)
    rows = [[c.strip() for c in line.split("|")[1:-1]] for line in lines[1:]]
    return {" / ".join(r[:column]): r[column:] for r in rows}


def test_every_seed_figure_belongs_to_an_experiment_on_the_page():
    assert set(seed_figures.FIGURES) == set(EXPECTED)
    assert {name for name, _ in seed_figures.FIGURES} <= set(ON_THE_PAGE)


@pytest.mark.parametrize("name", sorted({name for name, _ in EXPECTED}))
def test_a_section_shows_the_seed_figure_of_each_row_that_has_one_and_a_dash_elsewhere(name):
    arms = [arm for n, arm in EXPECTED if n == name] + (
        ["other"] if name != "cnn_mnist_vs_digits" else []
    )
    section = _section(name, arms, "mode")
    rows = _rows(seed_figures.filled(section, name))
    for arm in arms:
        figure, n, acc = rows[arm]
        if (name, arm) in EXPECTED:
            assert figure.startswith(EXPECTED[name, arm]), (arm, figure)
        else:
            assert figure == "—", (arm, figure)
        assert (n, acc) == tuple(_rows(section)[arm][1:]), "only the seed's column changes"


def test_rows_of_seeds_without_numbers_say_so():
    for name in ("sgd_vs_adam", "leaky_relu_vs_tanh", "finetune_vs_feature_extract"):
        assert seed_figures.cell(name, "adam") == "—"  # seed 000 gives no figures
    assert seed_figures.cell("lite0_head_512_vs_64", "[512]") == "—"  # seed 004: none here


def test_refilling_a_page_sets_the_seed_column_and_the_note_and_keeps_every_measurement():
    sections = [
        results_page.stamped(
            _section(name, [arm for n, arm in EXPECTED if n == name], "recipe"), "D"
        )
        for name in ON_THE_PAGE
        if any(n == name for n, _ in EXPECTED)
    ]
    targets = "\n".join(results.targets({}))
    old = results_page.page([targets, *sections], quick=False, total_s=60)
    old = old.replace(results_page.NOTE[2], '"seed\'s figure" ... where we hold it (n/a if not).')
    new = results.refilled(old)
    assert "n/a if not" not in new and results_page.NOTE[2] in new
    assert results_page.made_part(results_page.parse(old).head) == results_page.made_part(
        results_page.parse(new).head
    )
    before, after = results_page.parse(old), results_page.parse(new)
    assert before.targets == after.targets
    for name, section in after.sections.items():
        for arm, (figure, *measured) in _rows(section).items():
            assert figure.startswith(EXPECTED[name, arm])
            assert measured == _rows(before.sections[name])[arm][1:]
    assert results.refilled(new) == new


def test_the_committed_results_page_shows_the_seed_figures_of_the_table():
    page = results_page.parse((ROOT / "docs" / "results.md").read_text())
    assert "n/a if not" not in page.head and "only seed figures we hold" not in page.head
    for (name, arm), start in EXPECTED.items():
        (figure, *_) = _rows(page.sections[name])[arm]
        assert figure.startswith(start), (name, arm, figure)
    for name, section in page.sections.items():  # nothing else claims a seed's number
        for arm, (figure, *_) in _rows(section).items():
            assert figure == seed_figures.cell(name, arm), (name, arm)
