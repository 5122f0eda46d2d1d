"""The results page's trust section: a short study's verdict against a long one's, read from
study folders written here (no training runs)."""

from __future__ import annotations

from results import results_page, trust_check
from tests.test_study_report import make_cell, two_recipes, write_plan, write_run

LABELS = ("10-minute study", "60-minute study")
CLEAR_FT = ([0.97, 0.975, 0.98], [0.98, 0.985, 0.99], [0.90, 0.905, 0.91], [0.9, 0.91, 0.9])
CLEAR_SVM = ([0.90, 0.905, 0.91], [0.9, 0.91, 0.9], [0.97, 0.975, 0.98], [0.98, 0.985, 0.99])
# fine-tune validates higher, but the SVM's test interval overlaps it: no clear winner
HEDGED_FT = ([0.95, 0.97, 0.93], [0.97, 0.98, 0.96], [0.94, 0.96, 0.95], [0.95, 0.96, 0.96])


def verdict(tmp_path, name, numbers, **plan):
    study = tmp_path / name
    two_recipes(study, *numbers, **plan)
    return trust_check.read_verdict(study, f"python study.py data=digits # {name}")


def test_the_same_clear_winner_at_both_budgets_agrees(tmp_path):
    short, long = verdict(tmp_path, "s", CLEAR_FT), verdict(tmp_path, "l", CLEAR_FT)
    assert short.winner == "fine-tune, adam" and short.clear
    assert trust_check.agreement(short, long).startswith(
        "**They agree**: both name fine-tune, adam; the short study named it clearly"
    )


def test_a_hedged_short_verdict_overturned_by_the_long_one_is_said_to_have_warned(tmp_path):
    short, long = verdict(tmp_path, "s", HEDGED_FT), verdict(tmp_path, "l", CLEAR_SVM)
    assert not short.clear and short.tied == {"fine-tune, adam", "frozen features + SVM"}
    sentence = trust_check.agreement(short, long)
    assert sentence.startswith("**They disagree, as the short study warned**")
    assert "no clear winner against frozen features + SVM" in sentence


def test_a_clear_short_verdict_overturned_is_said_not_to_have_warned(tmp_path):
    short, long = verdict(tmp_path, "s", CLEAR_FT), verdict(tmp_path, "l", CLEAR_SVM)
    assert trust_check.agreement(short, long).startswith(
        "**They disagree, and the short study did not warn**: it named fine-tune, adam clearly"
    )


def test_a_long_winner_the_short_study_cut_is_named_with_the_cut(tmp_path):
    long = verdict(tmp_path, "l", CLEAR_FT)
    study = tmp_path / "s"
    svm = make_cell("features_svm", optimizer=None)
    for seed, test in enumerate([0.9, 0.91, 0.92]):
        write_run(study, svm, seed, test, test)
    write_plan(study, [svm], cuts=["arms dropped: finetune"])
    short = trust_check.read_verdict(study, "python study.py data=digits")
    assert short.separation == "alone" and short.winner == "frozen features + SVM"
    sentence = trust_check.agreement(short, long)
    assert "was not among the short study's finished recipes" in sentence
    assert "no clear winner" not in sentence  # the long study's fine-tune wins clearly
    assert "arms dropped: finetune" in sentence
    table = trust_check.comparison(short, long, LABELS)
    ft_row = next(row for row in table if row.startswith("| fine-tune, adam |"))
    assert "| not run |" in ft_row and "**winner** (3 seeds)" in ft_row


def test_the_section_lists_both_studies_with_wall_times_the_page_adds_up(tmp_path):
    short = verdict(tmp_path, "s", HEDGED_FT, elapsed_minutes=9.5)
    long = verdict(tmp_path, "l", CLEAR_SVM, elapsed_minutes=55.0)
    text = trust_check.render_dataset("digits", short, long, LABELS)
    assert text.startswith("### digits\n\n**They disagree, as the short study warned**")
    long_hedged = verdict(tmp_path, "l2", HEDGED_FT)
    assert trust_check.agreement(short, long_hedged).endswith(
        "The long study itself found no clear winner: the test intervals of fine-tune, adam "
        "and frozen features + SVM overlap."
    )
    assert "| recipe | 10-minute study | 60-minute study |" in text
    assert "- 10-minute study: `python study.py data=digits # s` — 570 s wall" in text
    assert "- 60-minute study: `python study.py data=digits # l` — 3300 s wall" in text
    assert results_page.wall_seconds([text]) == 570 + 3300


def test_a_short_pick_the_long_study_cannot_separate_from_its_winner_is_said_to_be_as_good(
    tmp_path,
):
    short, long = verdict(tmp_path, "s", CLEAR_SVM), verdict(tmp_path, "l", HEDGED_FT)
    assert long.winner == "fine-tune, adam" and "frozen features + SVM" in long.tied
    sentence = trust_check.agreement(short, long)
    assert sentence.startswith("**They disagree, and the short study did not warn**")
    assert sentence.endswith(
        "The short study's pick, frozen features + SVM, is one of them: on the long study's "
        "evidence it is as good an answer."
    )
    assert "is one of them" not in trust_check.agreement(long, long)  # same winner: no need
