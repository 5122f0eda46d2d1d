"""`data.source.shots` and `data.source.limit` cut every source the same way, seeded."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from tests.conftest import QUIET, run_cli, run_cli_on_fixtures, run_dirs, summary
from tests.torchvision_files import md5_checks_skipped, write_image_folder
from transferlab.data import Digits, ImageFolderSource, TorchvisionSource
from transferlab.data.packaged import Mnist
from transferlab.data.subsets import labels_of
from transferlab.errors import UserError

ONE_EPOCH = ["model=cnn", "mode=scratch", "epochs=1", QUIET]


def _per_class(split) -> Counter:
    base, indices = split.dataset, np.asarray(split.indices)
    return Counter(np.asarray(labels_of(base))[indices].tolist())


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("folder")
    write_image_folder(root, per_class=12)
    return root


def _sources(files, folder, **cut):
    return {
        "digits": Digits(**cut),
        "mnist": Mnist(files.data_dir, files.data_dir / "no_cache", **cut),
        "cifar10": TorchvisionSource("cifar10", files.data_dir, **cut),
        "flowers102": TorchvisionSource("flowers102", files.data_dir, **cut),
        "image_folder": ImageFolderSource(folder, **cut),
    }


def test_shots_keep_that_many_training_images_per_class_and_nothing_else(dataset_files, folder):
    whole = _sources(dataset_files, folder)
    with md5_checks_skipped():
        for name, source in _sources(dataset_files, folder, shots=2).items():
            train, val, test = source.splits(seed=0)
            _, full_val, full_test = whole[name].splits(seed=0)
            assert set(_per_class(train).values()) == {2}, name
            assert (len(val), len(test)) == (len(full_val), len(full_test)), name


def test_shots_are_seeded(dataset_files, folder):
    cifar = TorchvisionSource("cifar10", dataset_files.data_dir, shots=3)
    with md5_checks_skipped():
        first, again, other = (cifar.splits(seed=s)[0].indices for s in (0, 0, 1))
    assert first == again and first != other


def test_limit_cuts_an_image_folder_stratified(folder):
    splits = ImageFolderSource(folder, limit=12).splits(seed=0)
    assert [len(s) for s in splits] == [12, 6, 6]  # val and test hold 6 each already
    assert set(_per_class(splits[0]).values()) == {4}


@pytest.mark.parametrize("shots", [0, -1, True, 2.5])
def test_a_shot_count_that_is_not_a_positive_whole_number_is_refused(shots):
    with pytest.raises(UserError, match=r"data\.source\.shots"):
        Digits(shots=shots).splits(seed=0)


def test_an_image_folder_run_trains_on_five_images_per_class(folder, tmp_path):
    proc = run_cli(
        "train.py",
        "data=image_folder",
        f"data.source.root={folder}",
        "data.source.shots=5",
        "data.image_size=16",
        *ONE_EPOCH,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    assert summary(run)["status"] == "completed"
    assert "data.source.shots=5: training on 15 of" in (run / "train.log").read_text()


def test_a_torchvision_run_trains_on_five_images_per_class(dataset_files, tmp_path):
    overrides = ["data=cifar10", "data.source.shots=5", *ONE_EPOCH]
    proc = run_cli_on_fixtures("train.py", *overrides, cwd=tmp_path, files=dataset_files)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    assert "data.source.shots=5: training on 50 of 90 images" in (run / "train.log").read_text()
