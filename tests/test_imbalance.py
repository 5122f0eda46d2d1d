"""Imbalanced classes: balanced accuracy and macro-F1 tell what accuracy hides, per-class
figures land in plots/per_class.csv, and data.balance=weights|sampler counter the imbalance."""

from __future__ import annotations

import csv

import pytest
import torch

from tests.conftest import QUIET, run_cli, run_dirs, summary
from tests.table_files import imbalanced_rows, write_digits_csv
from transferlab.data.balance import class_weights, draw_weights
from transferlab.data.datamodule import EpochShuffle
from transferlab.runs.plots import save_per_class

LABELS = torch.tensor([0] * 95 + [1] * 5)  # a 95/5 set


def test_class_weights_make_every_class_weigh_the_same_in_the_loss():
    weights = class_weights(LABELS, num_classes=3)  # class 2 has no training image
    assert weights.tolist() == pytest.approx([100 / (2 * 95), 100 / (2 * 5), 0.0])
    per_class = torch.bincount(LABELS, minlength=3) * weights
    assert per_class[0] == pytest.approx(per_class[1])


def test_the_balanced_sampler_draws_classes_equally_from_seed_and_epoch_alone():
    sampler = EpochShuffle(len(LABELS), seed=7, weights=draw_weights(LABELS))
    drawn = []
    for epoch in range(20):
        sampler.set_epoch(epoch)
        drawn += list(sampler)
    minority = sum(LABELS[i].item() for i in drawn) / len(drawn)
    assert 0.4 < minority < 0.6  # 5% of the images, half of the draws
    resumed = EpochShuffle(len(LABELS), seed=7, weights=draw_weights(LABELS))
    resumed.set_epoch(19)
    assert list(resumed) == drawn[-len(LABELS) :]  # a resumed run sees the same epoch


def test_the_balanced_sampler_shards_one_draw_exactly_across_ddp_ranks():
    one = EpochShuffle(len(LABELS), seed=7, weights=draw_weights(LABELS))
    ranks = [
        EpochShuffle(len(LABELS), seed=7, rank=r, world_size=3, weights=draw_weights(LABELS))
        for r in range(3)
    ]
    for sampler in (one, *ranks):
        sampler.set_epoch(4)
    shards = [list(r) for r in ranks]
    assert {len(s) for s in shards} == {34}  # equal shares: no rank waits at an all-reduce
    interleaved = [i for row in zip(*shards, strict=True) for i in row]
    whole = list(one)
    assert interleaved[: len(whole)] == whole  # the single process's draw, dealt out
    assert interleaved[len(whole) :] == whole[: 102 - len(whole)]  # wrapped to fill


def test_per_class_csv_holds_precision_recall_f1_and_support_per_class_name(tmp_path):
    confusion = torch.tensor([[90, 5], [4, 1]])  # rows: true class
    save_per_class(confusion, ["other", "eight"], tmp_path / "per_class.csv")
    with open(tmp_path / "per_class.csv") as f:
        rows = {r["class"]: r for r in csv.DictReader(f)}
    assert rows["eight"] == {
        "class": "eight",
        "precision": "0.1667",
        "recall": "0.2000",
        "f1": "0.1818",
        "support": "5",
    }
    assert rows["other"]["recall"] == f"{90 / 95:.4f}" and rows["other"]["support"] == "95"


@pytest.mark.slow
def test_on_a_95_5_set_accuracy_looks_fine_balanced_accuracy_tells_and_weights_help(tmp_path):
    """The CNN on sklearn's real digits, 'eight' against every other digit at 95/5."""
    file = write_digits_csv(tmp_path / "set", imbalanced_rows())
    proc = run_cli(
        "train.py",
        "-m",
        "data=csv",
        f"data.source.file={file}",
        "data.image_size=8",
        "data.num_workers=0",
        "model=cnn",
        "mode=scratch",
        "epochs=1",
        "data.balance=none,weights",
        "optimized_metric=val/balanced_acc",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain, weighted = run_dirs(tmp_path / "logs", "*/multiruns/*/*")
    assert plain.name.endswith("balance=none") and weighted.name.endswith("balance=weights")
    before, after = summary(plain)["metrics"], summary(weighted)["metrics"]
    assert before["test/acc"] > 0.9  # looks fine...
    assert before["test/balanced_acc"] < 0.75  # ...while the minority is mostly missed
    assert after["test/balanced_acc"] > before["test/balanced_acc"] + 0.15
    assert after["test/macro_f1"] > before["test/macro_f1"]
    with open(plain / "plots" / "per_class.csv") as f:
        rows = {r["class"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"eight", "other"}
    assert float(rows["eight"]["recall"]) < 0.6 < float(rows["other"]["recall"])
    assert f"best: {weighted.name} (val/balanced_acc = " in proc.stdout  # what the sweep ranks
    compared = run_cli("compare.py", str(plain.parent), cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr[-3000:]
    assert "test balanced acc" in compared.stdout and "val/balanced_acc" in compared.stdout
