"""k-fold cross-validation: data.folds / data.fold split the training images only."""

import csv

import numpy as np
import pytest

from tests.conftest import HALF, QUIET, run_cli, run_dirs
from transferlab.data import Digits, ImageDataModule
from transferlab.data.folds import cross_validation_split
from transferlab.data.subsets import labels_of


def _rows(split) -> set[int]:
    return set(split.indices)


def test_folds_partition_the_training_images_and_never_touch_val_or_test():
    source = Digits()
    splits = source.splits(7)
    train, val, test = (_rows(s) for s in splits)
    labels = np.asarray(labels_of(source.splits(7)[0].dataset))
    held_out = []
    for k in range(5):
        fold_train, fold_val, fold_test = cross_validation_split(splits, 5, k, seed=7)
        a, b = _rows(fold_train), _rows(fold_val)
        assert a | b == train and not a & b  # every training image, once, on one side
        assert not (a | b) & (val | test)  # the source's val and test never enter a fold
        assert _rows(fold_test) == test
        held_out.append(b)
        # stratified: each class's share of the fold is within one image of its share
        for c in range(10):
            expected = np.sum(labels[sorted(train)] == c) / 5
            assert abs(np.sum(labels[sorted(b)] == c) - expected) <= 1
    assert set().union(*held_out) == train and sum(map(len, held_out)) == len(train)
    again = cross_validation_split(splits, 5, 3, seed=7)
    assert _rows(again[1]) == held_out[3]  # seeded: the same fold every time
    assert cross_validation_split(splits, 5, None, seed=7) is splits


def test_the_datamodule_validates_on_the_chosen_fold():
    whole = ImageDataModule(Digits(), HALF, batch_size=16, seed=1)
    fold = ImageDataModule(Digits(), HALF, batch_size=16, seed=1, folds=4, fold=2)
    whole.setup(), fold.setup()
    assert len(fold.train_set) + len(fold.val_set) == len(whole.train_set)
    assert abs(len(fold.val_set) - len(whole.train_set) / 4) <= 10
    assert len(fold.test_set) == len(whole.test_set)


def test_a_fold_outside_the_folds_is_refused_before_training(tmp_path):
    proc = run_cli("train.py", "data.fold=5", QUIET, cwd=tmp_path)
    assert proc.returncode == 2
    assert "data.fold=5 is not a fold of data.folds=5" in proc.stderr
    assert "data.fold=0" in proc.stderr


@pytest.mark.slow
def test_a_five_fold_sweep_is_compared_as_one_row_with_its_interval(tmp_path):
    sweep = run_cli(
        "train.py",
        "-m",
        "data.fold=0,1,2,3,4",
        "model=cnn",
        "mode=scratch",
        "epochs=2",
        "callbacks.early_stopping=null",
        QUIET,
        cwd=tmp_path,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    report = run_cli("compare.py", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    (folder,) = run_dirs(tmp_path / "logs", "*/multiruns/*")
    with open(folder / "report_seeds.csv") as f:
        (row,) = list(csv.DictReader(f))  # the 5 folds are replicates of one configuration
    assert row["n"] == "5"
    low, mean, high = (float(row[f"test/acc {k}"]) for k in ("ci95 low", "mean", "ci95 high"))
    assert low < mean < high and mean > 0.5
    assert "95% CI" in report.stdout
