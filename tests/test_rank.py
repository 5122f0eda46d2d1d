"""rank.py: backbones ranked from cached features; the three scores on features whose
answer is known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import multivariate_normal
from sklearn.neighbors import KNeighborsClassifier

from results import results_page, zoo_check
from results.zoo_check import Measured
from tests.conftest import IMPORT_LOG, QUIET, TORCH_IMPORTED, run_cli, run_dirs
from transferlab.cli import CONF_DIR
from transferlab.errors import UserError
from transferlab.ranking import candidates, scores
from transferlab.ranking.table import Row, first_sentence, ranked

ROW_KEYS = {"backbone", "rank", "logme", "knn", "probe", "feature_s", "dim", "cached", "skipped"}


def _labels(n: int, classes: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).permutation(np.arange(n) % classes)


def test_logme_scores_noisy_one_hot_labels_above_random_features():
    labels = _labels(300, 5)
    rng = np.random.default_rng(1)
    informative = np.eye(5)[labels] + 0.3 * rng.standard_normal((300, 5))
    noise = rng.standard_normal((300, 5))
    assert scores.logme(informative, labels) > scores.logme(noise, labels) + 0.5


def _density(f: np.ndarray, y: np.ndarray, alpha: float, beta: float) -> float:
    """log N(y; 0, F Fᵀ / alpha + I / beta) per sample: Bayesian linear regression's evidence."""
    n = len(y)
    return multivariate_normal(np.zeros(n), f @ f.T / alpha + np.eye(n) / beta).logpdf(y) / n


def _regression(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(2)
    f = rng.standard_normal((n, d))
    return f, f @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n)


@pytest.mark.parametrize("n, d", [(40, 4), (12, 30)], ids=["more_samples", "more_dims"])
def test_logme_evidence_is_the_gaussian_marginal_likelihood(n, d):
    f, y = _regression(n, d)
    (found,) = scores.evidences(f, y[:, None])
    assert math.isclose(found.per_sample, _density(f, y, found.alpha, found.beta), rel_tol=1e-9)


def test_logme_fixed_point_sits_at_the_evidence_maximum():
    f, y = _regression(40, 4)
    (found,) = scores.evidences(f, y[:, None])
    for a, b in ((2, 1), (0.5, 1), (1, 2), (1, 0.5)):  # within the iteration's 1% tolerance
        assert _density(f, y, found.alpha * a, found.beta * b) < found.per_sample


def test_knn_votes_by_cosine_similarity_not_distance():
    # Class 0 points along x, class 1 along y; val points lie along their class's axis but
    # far out, so their Euclidean neighbours are the other class's long vectors.
    rng = np.random.default_rng(3)
    lengths = rng.uniform(1, 2, 40)
    train_x = np.vstack(
        [np.c_[lengths, 0.1 * lengths], np.c_[0.1 * lengths * 10, lengths * 10]]
    ).astype(np.float64)
    train_y = np.repeat([0, 1], 40)
    val_x, val_y = np.array([[15.0, 1.0], [0.1, 1.0]]), np.array([0, 1])
    assert scores.knn_accuracy(train_x, train_y, val_x, val_y, k=20) == 1.0
    euclid = KNeighborsClassifier(n_neighbors=20).fit(train_x, train_y)
    assert (euclid.predict(val_x) == val_y).mean() < 1.0  # the case tells the metrics apart


def test_probe_separates_separable_features_and_not_labels_drawn_at_random():
    rng = np.random.default_rng(4)
    labels = _labels(400, 4)
    x = np.eye(4)[labels] * 3 + rng.standard_normal((400, 4))
    probe = {"C": 1.0, "max_iter": 1000}
    args = (x[:300], labels[:300], x[300:])
    assert scores.probe_accuracy(*args, labels[300:], probe, seed=0) > 0.9
    shuffled = rng.permutation(labels)
    assert scores.probe_accuracy(x[:300], shuffled[:300], x[300:], shuffled[300:], probe, 0) < 0.5


def test_rows_rank_by_the_chosen_score_and_skipped_ones_come_last_unranked():
    rows = [
        Row("a", logme=0.1, knn=0.9),
        Row("b", skipped="weights missing."),
        Row("c", logme=0.5, knn=0.2),
    ]
    by_logme = ranked(rows, "logme")
    assert [(r.backbone, r.rank) for r in by_logme] == [("c", 1), ("a", 2), ("b", None)]
    assert [r.backbone for r in ranked(rows, "knn")] == ["a", "c", "b"]
    assert first_sentence("model.weights=/x.pth does not exist. Give a file.") == (
        "model.weights=/x.pth does not exist."
    )


def test_backbone_items_name_a_model_a_random_init_a_checkpoint_or_a_weights_file():
    parse = candidates.parse
    assert parse("cnn", CONF_DIR).kind == "model"
    assert parse("random:efficientnet_lite0", CONF_DIR).model == "efficientnet_lite0"
    assert parse("runs/x/best.ckpt", CONF_DIR).kind == "checkpoint"
    weights = parse("resnet18=/w/resnet.pth", CONF_DIR)
    assert (weights.kind, weights.model, weights.path) == ("weights", "resnet18", "/w/resnet.pth")
    with pytest.raises(UserError, match="did you mean efficientnet_lite0"):
        parse("efficientnet_lit0", CONF_DIR)
    with pytest.raises(UserError, match="without its model"):
        parse("/w/resnet.pth", CONF_DIR)


@pytest.mark.slow
def test_rank_skips_missing_weights_ranks_the_rest_and_reads_the_cache_the_second_time(
    tmp_path, cnn_run
):
    ckpt = cnn_run / "checkpoints" / "best.ckpt"
    items = f"backbones=[cnn,efficientnet_lite0,{ckpt},'efficientnet_lite0=/nonexistent.pth']"
    args = ["data.source.limit=100", "data.source.eval_limit=50", "data.image_size=32", QUIET]
    first = run_cli("rank.py", items, *args, "rank.score=knn", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "| rank | backbone |" in first.stdout
    second = run_cli("rank.py", items, *args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    old, new = (json.loads((r / "ranking.json").read_text()) for r in run_dirs(tmp_path / "logs"))
    assert (old["score"], new["score"], new["data"]) == ("knn", "logme", "digits")
    for found in (old, new):
        rows = {r["backbone"]: r for r in found["rows"]}
        assert all(set(r) == ROW_KEYS for r in rows.values())
        skipped = rows.pop("efficientnet_lite0=/nonexistent.pth")
        assert skipped["rank"] is None and "/nonexistent.pth does not exist" in skipped["skipped"]
        assert sorted(r["rank"] for r in rows.values()) == [1, 2, 3]
        assert rows["efficientnet_lite0"]["dim"] == 1280 and rows["cnn"]["dim"] == 128
        ordered = sorted(rows.values(), key=lambda r: r["rank"])
        key = found["score"]
        assert [r[key] for r in ordered] == sorted((r[key] for r in ordered), reverse=True)
        assert all(r["cached"] is (found is new) for r in rows.values())
    assert second.stdout.count("read cached features") == 3


def test_rank_exits_2_naming_each_reason_when_no_backbone_can_be_ranked(tmp_path):
    proc = run_cli("rank.py", "backbones=[/no/best.ckpt,resnt18]", QUIET, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "No backbone could be ranked" in proc.stderr
    assert "/no/best.ckpt is not a file" in proc.stderr and "did you mean resnet18" in proc.stderr
    (run,) = run_dirs(tmp_path / "logs")
    rows = json.loads((run / "ranking.json").read_text())["rows"]
    assert [r["rank"] for r in rows] == [None, None]


@pytest.mark.parametrize(
    "override, message",
    [("rank.scor=knn", "Did you mean rank.score"), ("rank.score=auc", "Unknown rank.score")],
)
def test_rank_options_that_cannot_work_are_refused_before_torch_loads(override, message, tmp_path):
    proc = run_cli("rank.py", override, QUIET, cwd=tmp_path, env=IMPORT_LOG)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert not TORCH_IMPORTED.search(proc.stderr), "refused only after importing torch"


def _measured(scores_by_item: dict[str, tuple[float, float, float]], accuracy: dict) -> Measured:
    rows = {
        item: {"backbone": item, "logme": lm, "knn": knn, "probe": probe, "feature_s": 1.0}
        for item, (lm, knn, probe) in scores_by_item.items()
    }
    return Measured(rows, accuracy, rank_s=10.0, cached_rank_s=2.0, finetune_s=300.0)


def test_zoo_section_says_plainly_which_score_does_not_predict_fine_tuning():
    settings = results_page.page_data()["zoo"]
    plan = zoo_check.Plan.of(settings, quick=False, ckpt="/runs/source/best.ckpt")
    items = [b.item for b in plan.backbones]
    # LogME agrees with the fine-tuned order, kNN is its reverse, the probe is flat-ish.
    accuracy = {item: [0.9 - 0.1 * i, 0.91 - 0.1 * i] for i, item in enumerate(items)}
    scores_by_item = {
        item: (1.0 - i, 0.1 * i, 0.5 + 0.01 * (i % 2)) for i, item in enumerate(items)
    }
    found = _measured(scores_by_item, accuracy)
    text = zoo_check._render("Which backbone?", plan, {"digits": found}, wall_s=321)
    (logme, knn, _) = [
        line for line in text.splitlines() if line.startswith("| ") and "τ" not in line
    ][-3:]
    assert "+1.00" in logme and "exactly" in logme
    assert "-1.00" in knn and "**does not predict**" in knn
    assert "On digits, kNN acc" in text and "**not** predict the fine-tuned order" in text
    assert "30.0x the ranking (10.0x for one seed each)" in text and "/runs/source" not in text
    page = results_page.parse(results_page.page([text], quick=False, total_s=321))
    assert list(page.sections) == ["zoo"] and results_page.wall_seconds([text]) == 321
