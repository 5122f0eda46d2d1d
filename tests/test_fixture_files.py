"""The tiny copies of tests/torchvision_files.py load as the real files would."""

from __future__ import annotations

import pytest
import torch

from tests.torchvision_files import HUB_WEIGHTS, md5_checks_skipped
from transferlab.data import TorchvisionSource
from transferlab.data.packaged import Mnist
from transferlab.errors import UserError
from transferlab.models.weights import torchvision_pretrained_state_dict

SIZES = {  # (train, val, test) of each copy
    "cifar10": (90, 10, 30),
    "svhn": (90, 10, 30),
    "flowers102": (8, 8, 8),
    "fashion_mnist": (90, 10, 30),
}


@pytest.mark.parametrize("name", sorted(SIZES))
def test_each_copy_loads_with_torchvisions_own_class(name, dataset_files):
    source = TorchvisionSource(name, dataset_files.data_dir)
    with md5_checks_skipped():
        splits = source.splits(seed=0)
    assert tuple(len(s) for s in splits) == SIZES[name]
    image, label = splits[0][0]
    assert image.mode == ("L" if source.channels == 1 else "RGB")
    assert 0 <= label < len(source.classes)


def test_md5_sums_are_checked_again_outside_the_patch_and_missing_files_stay_missing(
    dataset_files, tmp_path
):
    with pytest.raises(UserError, match="not on disk"):
        TorchvisionSource("cifar10", dataset_files.data_dir).prepare()
    with md5_checks_skipped(), pytest.raises(UserError, match="not on disk"):
        TorchvisionSource("cifar10", tmp_path).prepare()


def test_mnist_copy_has_the_official_counts_that_data_mnist_splits_by(dataset_files, tmp_path):
    mnist = Mnist(dataset_files.data_dir, tmp_path / "no_cache")
    assert [len(s) for s in mnist.splits(seed=0)] == [50_000, 10_000, 10_000]
    assert mnist.copy.startswith("torchvision's files")


@pytest.mark.parametrize("arch", ["alexnet", pytest.param("vgg16", marks=pytest.mark.slow)])
def test_weights_load_from_the_hub_cache_like_downloaded_ones(arch, request, monkeypatch):
    path = request.getfixturevalue(f"{arch}_weights")
    monkeypatch.setenv("TORCH_HOME", str(path.parents[2]))
    build, weights = HUB_WEIGHTS[arch]
    state = torchvision_pretrained_state_dict(arch, weights)
    build().load_state_dict(state)  # strict: every tensor of the real architecture
    assert torch.equal(state["features.0.weight"], torch.load(path)["features.0.weight"])
