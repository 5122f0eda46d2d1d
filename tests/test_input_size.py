"""`data.image_size: null` is the size the weights were made for, or the data's native size."""

from __future__ import annotations

import pytest

from transferlab import datasets, input_size
from transferlab.data import Digits, ImageFolderSource, TorchvisionSource
from transferlab.data.packaged import Mnist

CASES = {
    # pretrained networks get their weights' size, whatever the data's own size
    "alexnet on cifar10": (["model=alexnet", "data=cifar10"], 224, "pretrained input size"),
    "vgg16 on svhn": (["model=vgg16", "data=svhn"], 224, "pretrained input size"),
    "lite0 on fashion": (["data=fashion_mnist"], 224, "pretrained input size"),
    "resnet50 (timm)": (["model=resnet50", "data=cifar10"], 224, "pretrained input size"),
    "vit at 224": (["model=vit_tiny_patch16_224", "data=svhn"], 224, "pretrained input size"),
    "timm at 288": (["model=timm", "model.name=efficientnet_b3", "data=svhn"], 288, "pretrained"),
    # networks from scratch read the native size
    "scratch alexnet on cifar10": (["model=alexnet", "mode=scratch", "data=cifar10"], 32, "native"),
    "cnn on svhn": (["model=cnn", "mode=scratch", "data=svhn"], 32, "native"),
    "unloaded weights": (
        ["model=resnet18", "model.pretrained=false", "data=cifar10"],
        32,
        "native",
    ),
    # tiny digits: pretrained networks read the table's pretrained_size (64 px), scratch
    # nets (mode=scratch sets model.pretrained=false) the native size
    "lite0 on digits": ([], 64, "digits's size for pretrained networks"),
    "lite0 on mnist": (["data=mnist"], 64, "mnist's size for pretrained networks"),
    "lite0 from scratch on digits": (["mode=scratch"], 8, "digits's native size"),
    "cnn on digits": (["model=cnn", "mode=scratch"], 8, "digits's native size"),
    "cnn on mnist": (["model=cnn", "mode=scratch", "data=mnist"], 28, "mnist's native size"),
    # a data config that sets a size on purpose keeps it
    "flowers": (["model=cnn", "mode=scratch", "data=flowers102"], 224, "data.image_size=224"),
    "override": (["model=alexnet", "data=cifar10", "data.image_size=96"], 96, "data.image_size"),
    # the seeds' experiments run at the seeds' size on every dataset
    "seed 001 on mnist": (
        ["experiment=alexnet_finetune_vs_feature_extract", "data=mnist", "mode=feature_extract"],
        224,
        "data.image_size=224",
    ),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_null_image_size_resolves_by_where_the_weights_come_from(case, cfg_factory):
    overrides, pixels, origin = CASES[case]
    size = input_size.resolve(cfg_factory(*overrides))
    assert size.pixels == pixels
    assert origin in size.origin


def test_a_timm_tag_leaves_the_size_to_that_tags_pretrained_config(cfg_factory):
    size = input_size.resolve(
        cfg_factory("model=timm", "model.name=resnet50.a1_in1k", "data=cifar10")
    )
    assert size.pixels is None and "pretrained config of model=resnet50.a1_in1k" in size.origin


def test_a_runs_checkpoint_gives_the_size_it_was_trained_at(cfg_factory, cnn_run):
    ckpt = cnn_run / "checkpoints" / "best.ckpt"  # a CNN trained on 8 px digits
    cfg = cfg_factory("model=cnn", "mode=finetune", "data=svhn", f"model.weights={ckpt}")
    size = input_size.resolve(cfg)
    assert size.pixels == 8 and "best.ckpt was trained at" in size.origin
    # also where the data's table row has a size for pretrained networks (MNIST: 64 px)
    cfg = cfg_factory("model=cnn", "mode=finetune", "data=mnist", f"model.weights={ckpt}")
    assert input_size.resolve(cfg).pixels == 8


def test_the_native_sizes_known_before_torch_are_the_sources_own(tmp_path):
    sources = {
        "digits": Digits(),
        "mnist": Mnist(root=tmp_path, cache_dir=tmp_path),
        "image_folder": ImageFolderSource(root=tmp_path),
    }
    for name in ("fashion_mnist", "cifar10", "svhn", "flowers102"):
        sources[name] = TorchvisionSource(name, root=tmp_path)
    assert {n: s.image_size for n, s in sources.items()} == {
        n: d.native_size for n, d in datasets.DATASETS.items()
    }
