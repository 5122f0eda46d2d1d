"""Sources and their splits: digits, image folders, torchvision sets offline, data configs."""

import logging
import socket
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from tests.conftest import HALF
from tests.table_files import write_digits_csv, write_hf_digits
from tests.torchvision_files import md5_checks_skipped, write_cifar100, write_image_folder
from transferlab.cli import CONF_DIR
from transferlab.data import Digits, ImageDataModule, ImageFolderSource, TorchvisionSource
from transferlab.errors import UserError

CONF = Path(CONF_DIR)


def _indices(split) -> set[int]:
    return set(split.indices)


def _labels(split) -> list[int]:
    return [split.dataset.labels[i].item() for i in split.indices]


# --- digits ---------------------------------------------------------------------------


def test_digits_splits_cover_all_1797_images_without_overlap():
    train, val, test = Digits().splits(seed=0)
    assert len(train) + len(val) + len(test) == 1797
    assert len(val) == pytest.approx(0.15 * 1797, abs=2)
    parts = [_indices(s) for s in (train, val, test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_digits_splits_hold_every_class_in_proportion():
    splits = Digits().splits(seed=0)
    overall = np.bincount(splits[0].dataset.labels.numpy(), minlength=10) / 1797
    for split in splits:
        counts = np.bincount(_labels(split), minlength=10)
        assert counts.min() > 0
        # stratified: within rounding of the overall share (a random split is off by ~5-10)
        assert np.abs(counts - overall * len(split)).max() < 1.5


def test_digits_split_is_fixed_by_the_seed():
    a, b, c = (Digits().splits(seed=s)[1] for s in (1, 1, 2))
    assert _indices(a) == _indices(b)
    assert _indices(a) != _indices(c)


def test_digits_items_are_uint8_tensors_scaled_to_full_range():
    image, label = Digits().splits(seed=0)[0][0]
    assert image.dtype == torch.uint8 and image.shape == (1, 8, 8)
    assert isinstance(label, int)
    assert max(int(x.max()) for x, _ in Digits().splits(seed=0)[2]) == 255


# --- image folders ----------------------------------------------------------------------


def test_flat_image_folder_is_split_by_fractions_with_every_class(tmp_path):
    write_image_folder(tmp_path)
    source = ImageFolderSource(tmp_path, val_fraction=1 / 3, test_fraction=1 / 3)
    assert source.classes == ["cat", "dog", "owl"]
    splits = source.splits(seed=0)
    assert [len(s) for s in splits] == [6, 6, 6]
    for split in splits:
        assert sorted(split.labels) == [0, 0, 1, 1, 2, 2]
    files = [set(s.files) for s in splits]
    assert not (files[0] & files[1] or files[1] & files[2] or files[0] & files[2])
    dm = ImageDataModule(source, HALF, batch_size=4)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 16, 16) and y.max() <= 2


def test_split_folders_are_used_and_a_missing_test_folder_is_carved_from_train(tmp_path):
    write_image_folder(tmp_path / "train", per_class=6)
    write_image_folder(tmp_path / "val", per_class=2)
    source = ImageFolderSource(tmp_path, test_fraction=1 / 3, channels=1)
    assert source.classes == ["cat", "dog", "owl"]
    train, val, test = source.splits(seed=0)
    assert (len(train), len(val), len(test)) == (12, 6, 6)
    assert all(Path(f).parent.parent.name == "val" for f in val.files)
    assert train[0][0].mode == "L"
    write_image_folder(tmp_path / "test", per_class=1)
    assert [len(s) for s in source.splits(seed=0)] == [18, 6, 3]


def test_split_folders_with_different_classes_are_a_user_error(tmp_path):
    write_image_folder(tmp_path / "train")
    write_image_folder(tmp_path / "val", classes=("cat", "dog"))
    with pytest.raises(UserError, match="differ"):
        ImageFolderSource(tmp_path).splits(seed=0)


def test_missing_or_single_class_folder_is_a_user_error_naming_it(tmp_path):
    with pytest.raises(UserError, match="nowhere"):
        ImageFolderSource(tmp_path / "nowhere").prepare()
    write_image_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(UserError, match="one"):
        ImageFolderSource(tmp_path / "one").prepare()


def test_corrupt_image_error_names_the_file_and_skip_corrupt_drops_it(tmp_path, caplog):
    write_image_folder(tmp_path)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png at all")
    source = ImageFolderSource(tmp_path, val_fraction=0.2, test_fraction=0.2)
    data = torch.utils.data.ConcatDataset(source.splits(seed=0))
    with pytest.raises(UserError, match=r"broken\.png"):
        [data[i] for i in range(len(data))]
    source.skip_corrupt = True
    with caplog.at_level(logging.WARNING):
        splits = source.splits(seed=0)
    assert sum(len(s) for s in splits) == 18
    assert "dropped 1" in caplog.text and "broken.png" in caplog.text


# --- torchvision datasets offline ---------------------------------------------------------


def test_missing_torchvision_dataset_offline_is_a_user_error_naming_its_folder(tmp_path):
    with pytest.raises(UserError, match="MNIST") as err:
        TorchvisionSource("mnist", root=tmp_path, download=False).prepare()
    assert str(tmp_path) in str(err.value) and "download=true" in str(err.value)


@pytest.mark.timeout(60)  # a retry loop over torchvision's mirrors would outlast this
def test_download_without_network_fails_with_a_user_error(tmp_path):
    with pytest.raises(UserError, match="could not be downloaded"):
        TorchvisionSource("mnist", root=tmp_path, download=True).prepare()


@pytest.mark.timeout(30)  # without our socket timeout this download would hang for good
def test_download_from_an_unresponsive_network_times_out_quickly(tmp_path, monkeypatch):
    # A proxy that accepts connections but never answers: what a firewalled network looks like.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    proxy = f"http://127.0.0.1:{silent.getsockname()[1]}"
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, proxy)
    monkeypatch.setattr(TorchvisionSource, "download_timeout_s", 0.5)
    urllib.request.install_opener(None)  # urlopen reads the proxy variables once, then caches
    try:
        with pytest.raises(UserError, match="timed out"):
            TorchvisionSource("mnist", root=tmp_path, download=True).prepare()
    finally:
        silent.close()
        urllib.request.install_opener(None)


def test_torchvision_sources_know_classes_without_loading(tmp_path):
    assert len(TorchvisionSource("flowers102", tmp_path).classes) == 102
    cifar = TorchvisionSource("cifar10", tmp_path)
    assert cifar.classes[0] == "airplane" and cifar.channels == 3 and cifar.image_size == 32
    with pytest.raises(UserError, match="imagenet"):
        TorchvisionSource("imagenet", tmp_path)


# --- configs ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((CONF / "data").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_data_config_builds_its_source(path, tmp_path):
    write_image_folder(tmp_path / "images")
    raw = OmegaConf.load(path)
    data = raw.data if "data" in raw else raw  # mnist.yaml is global: it sets batch_size too
    paths = {"data_dir": str(tmp_path), "log_dir": str(tmp_path / "logs")}
    cfg = OmegaConf.create({"paths": paths, "data": data})
    if OmegaConf.is_missing(cfg.data.source, "root"):
        cfg.data.source.root = str(tmp_path / "images")
    if OmegaConf.is_missing(cfg.data.source, "file"):  # data=csv
        cfg.data.source.file = str(write_digits_csv(tmp_path, [(0, "0", None), (1, "1", None)]))
    if OmegaConf.is_missing(cfg.data.source, "path"):  # data=hf
        pytest.importorskip("datasets")
        cfg.data.source.path = str(write_hf_digits(tmp_path / "hf", {"train": 10}))
        cfg.data.source.image_column, cfg.data.source.label_column = "img", "digit"
    if OmegaConf.is_missing(cfg.data.source, "name"):  # data=torchvision
        write_cifar100(tmp_path)
        cfg.data.source.name = "CIFAR100"
    keys = {
        "source",
        "image_size",
        "mean",
        "std",
        "num_workers",
        "pin_memory",
        "balance",
        "folds",
        "fold",
    }
    assert keys <= set(cfg.data)
    with md5_checks_skipped():
        source = instantiate(cfg.data.source)
        assert len(source.classes) >= 2 and source.channels in (1, 3)


def test_a_source_named_by_an_older_checkpoint_still_instantiates():
    """A checkpoint keeps its source's `_target_`; the names under data.sources resolve."""
    for cls in (Digits, TorchvisionSource, ImageFolderSource):
        assert get_class(f"transferlab.data.sources.{cls.__name__}") is cls
    old = {"_target_": "transferlab.data.sources.Digits", "limit": 100}
    train, val, test = instantiate(old).splits(seed=0)
    assert (len(train), len(val), len(test)) == (100, 270, 270)  # limit: training images
