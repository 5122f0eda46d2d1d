"""Tiny copies of torchvision's datasets and weights, in the very files torchvision reads.

Each writer puts a few seeded images per class and split under a data root, in the layout
that torchvision 0.29's `datasets/{cifar,svhn,flowers102,mnist}.py` read, so the real
dataset classes load them. CIFAR-10, SVHN and MNIST-style images carry a per-class pattern
(a blocky template plus noise): a network can learn something from two batches.
torchvision checks the md5 sums of CIFAR-10, SVHN and Flowers-102 files; as its own dataset
tests do (test/datasets_utils.py), `md5_checks_skipped()` patches those checks, here into
existence checks so that a missing file is still missing.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import numpy as np
import torch
import torchvision
from PIL import Image
from scipy.io import savemat

SEED = 0
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer"]
CIFAR10_CLASSES += ["dog", "frog", "horse", "ship", "truck"]
STL10_CLASSES = ["airplane", "bird", "car", "cat", "deer"]
STL10_CLASSES += ["dog", "horse", "monkey", "ship", "truck"]
EUROSAT_CLASSES = ["AnnualCrop", "Forest", "HerbaceousVegetation", "Highway", "Industrial"]
EUROSAT_CLASSES += ["Pasture", "PermanentCrop", "Residential", "River", "SeaLake"]
FLOWER_CLASSES = (1, 2, 51, 102)  # of 1..102: the first, the last and one between have images
HUB_WEIGHTS = {
    "alexnet": (torchvision.models.alexnet, torchvision.models.AlexNet_Weights.IMAGENET1K_V1),
    "vgg16": (torchvision.models.vgg16, torchvision.models.VGG16_Weights.IMAGENET1K_V1),
}


@dataclass(frozen=True)
class FixtureFiles:
    """Where the copies are: `data_dir` is what `paths.data_dir=` points at."""

    data_dir: Path
    torch_home: Path

    @property
    def image_folder(self) -> Path:
        return self.data_dir / "image_folder"


def _labels(classes: int, per_class: int, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(np.repeat(np.arange(classes), per_class))


def _patterned(labels: np.ndarray, shape: tuple[int, int, int], rng) -> np.ndarray:
    """uint8 N x C x H x W images: the class's 4x4-block template (fixed) plus noise."""
    channels, height, width = shape
    coarse = np.random.default_rng(1234).integers(0, 256, (10, channels, 4, 4), np.int16)
    templates = np.kron(coarse, np.ones((1, 1, -(-height // 4), -(-width // 4)), np.int16))
    templates = templates[:, :, :height, :width]
    # Noise drawn from a bank of 256 images keeps 70,000 MNIST images well under a second.
    bank = rng.normal(0, 24, (min(len(labels), 256), *shape)).astype(np.int16)
    noise = bank[rng.integers(0, len(bank), len(labels))]
    return (templates[labels] + noise).clip(0, 255).astype(np.uint8)


def write_cifar10(data_dir: Path, train_per_class: int = 10, test_per_class: int = 3) -> Path:
    """`cifar-10-batches-py/`: five training batches, `test_batch` and `batches.meta`."""
    folder = Path(data_dir) / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    train, test = _labels(10, train_per_class, rng), _labels(10, test_per_class, rng)
    batches = [*np.array_split(train, 5), test]
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name, labels in zip(names, batches, strict=True):
        images = _patterned(labels, (3, 32, 32), rng).reshape(len(labels), 3072)
        # The real files are Python 2 pickles; torchvision reads them with encoding="latin1",
        # which turns their byte-string keys into str: a Python 3 pickle needs str keys.
        batch = {"batch_label": name, "labels": labels.tolist(), "data": images}
        batch["filenames"] = [f"{name}_{i}.png" for i in range(len(labels))]
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": len(batches[0]), "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def write_cifar100(data_dir: Path, train_per_class: int = 10, test_per_class: int = 2) -> Path:
    """`cifar-100-python/`: `train`, `test` ("fine_labels" of 100 classes) and `meta`."""
    folder = Path(data_dir) / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(SEED + 4)
    for name, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = _labels(100, per_class, rng)
        images = _patterned(labels % 10, (3, 32, 32), rng).reshape(len(labels), 3072)
        batch = {"fine_labels": labels.tolist(), "coarse_labels": (labels // 5).tolist()}
        batch |= {"data": images, "filenames": [f"{name}_{i}.png" for i in range(len(labels))]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {"fine_label_names": [f"class_{i:02d}" for i in range(100)]}
    meta["coarse_label_names"] = [f"super_{i:02d}" for i in range(20)]
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def write_stl10(data_dir: Path, train_per_class: int = 10, test_per_class: int = 2) -> Path:
    """`stl10_binary/`: `{train,test}_X.bin` (N x 3 x 96 x 96 uint8, column-major images),
    `{train,test}_y.bin` (labels 1..10), `class_names.txt`, an empty `unlabeled_X.bin`."""
    folder = Path(data_dir) / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(SEED + 5)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = _labels(10, per_class, rng)
        images = _patterned(labels, (3, 96, 96), rng).transpose(0, 1, 3, 2)  # STL's own order
        (folder / f"{split}_X.bin").write_bytes(np.ascontiguousarray(images).tobytes())
        (folder / f"{split}_y.bin").write_bytes((labels + 1).astype(np.uint8).tobytes())
    (folder / "unlabeled_X.bin").write_bytes(b"")
    (folder / "class_names.txt").write_text("\n".join(STL10_CLASSES) + "\n")
    return folder


def write_eurosat(data_dir: Path, per_class: int = 10) -> Path:
    """`eurosat/2750/<class>/<class>_<i>.jpg`: 64 px RGB JPEGs, one set with no splits."""
    folder = Path(data_dir) / "eurosat" / "2750"
    rng = np.random.default_rng(SEED + 6)
    labels = np.repeat(np.arange(10), per_class)
    for i, (label, pixels) in enumerate(
        zip(labels, _patterned(labels, (3, 64, 64), rng), strict=True)
    ):
        (folder / EUROSAT_CLASSES[label]).mkdir(parents=True, exist_ok=True)
        image = Image.fromarray(pixels.transpose(1, 2, 0))
        image.save(folder / EUROSAT_CLASSES[label] / f"{EUROSAT_CLASSES[label]}_{i}.jpg")
    return folder


def write_svhn(data_dir: Path, train_per_class: int = 10, test_per_class: int = 3) -> Path:
    """`svhn/{train,test}_32x32.mat`: X is H x W x C x N uint8, y is N x 1 with 10 for a 0.

    torchvision writes SVHN straight into its root; our source gives it `<data_dir>/svhn`.
    """
    folder = Path(data_dir) / "svhn"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(SEED + 1)
    for split, per_class in (("train", train_per_class), ("test", test_per_class)):
        labels = _labels(10, per_class, rng)
        images = _patterned(labels, (3, 32, 32), rng).transpose(2, 3, 1, 0)
        digits = np.where(labels == 0, 10, labels).astype(np.uint8).reshape(-1, 1)
        savemat(folder / f"{split}_32x32.mat", {"X": np.ascontiguousarray(images), "y": digits})
    return folder


def write_flowers102(data_dir: Path, per_split: int = 2, classes=FLOWER_CLASSES) -> Path:
    """`flowers-102/`: `jpg/image_00001.jpg...`, `imagelabels.mat` (1..102), `setid.mat`.

    Only `classes` have images (`per_split` small JPEGs of varying size in each split);
    the dataset still has 102 classes.
    """
    folder = Path(data_dir) / "flowers-102"
    (folder / "jpg").mkdir(parents=True)
    rng = np.random.default_rng(SEED + 2)
    labels = np.repeat(np.asarray(classes), 3 * per_split)
    for image_id, label in enumerate(labels, 1):
        size = (int(rng.integers(20, 28)), int(rng.integers(16, 24)))
        colour = np.array([label * 2, 255 - label * 2, (label * 97) % 256])
        pixels = colour + rng.normal(0, 20, (size[1], size[0], 3))
        image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
        image.save(folder / "jpg" / f"image_{image_id:05d}.jpg", quality=90)
    write_flowers_splits(folder, labels, rng.permutation(len(labels)) + 1)
    return folder


def write_flowers_splits(folder: Path, labels: np.ndarray, order: np.ndarray) -> None:
    """`imagelabels.mat` and `setid.mat`: image ids `order` cut into train, val and test
    thirds, each holding every class (the ids are sorted by label, a third per split)."""
    by_class = sorted(order, key=lambda image_id: labels[image_id - 1])
    thirds = [by_class[i::3] for i in range(3)]
    assert all(len(t) >= 2 for t in thirds), "loadmat(squeeze_me=True) turns 1 id to a scalar"
    savemat(folder / "imagelabels.mat", {"labels": labels.reshape(1, -1).astype(np.uint8)})
    ids = {
        k: np.asarray(sorted(t), np.uint16).reshape(1, -1)
        for k, t in zip(("trnid", "valid", "tstid"), thirds, strict=True)
    }
    savemat(folder / "setid.mat", ids)


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's own file format (what torchvision reads): magic, dims, then raw bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def write_mnist(
    data_dir: Path, name: str = "MNIST", train_per_class: int = 10, test_per_class: int = 3
) -> Path:
    """`<name>/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte`, uncompressed.

    `name` is the torchvision class: MNIST or FashionMNIST.
    """
    raw = Path(data_dir) / name / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(SEED + 3)
    for split, per_class in (("train", train_per_class), ("t10k", test_per_class)):
        labels = _labels(10, per_class, rng)
        write_idx(raw / f"{split}-images-idx3-ubyte", _patterned(labels, (1, 28, 28), rng)[:, 0])
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return raw


def write_image_folder(root: Path, per_class: int = 6, classes=("cat", "dog", "owl")) -> None:
    """`root/<class>/<i>.png`: small RGB images, one colour per (class, image), sizes vary."""
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            colour = (40 * c, 10 * i, 100)
            Image.new("RGB", (10 + i, 12), colour).save(root / name / f"{i}.png")


def write_datasets(root: Path) -> FixtureFiles:
    """Every dataset a `data=` option reads, under `root/data`; an empty torch home beside it.

    MNIST has the official 60,000 + 10,000 images: data=mnist (packaged.Mnist) cuts its
    splits at those counts. The other sets hold a handful of images per class and split.
    """
    files = FixtureFiles(Path(root) / "data", Path(root) / "torch")
    (files.torch_home / "hub" / "checkpoints").mkdir(parents=True)
    write_cifar10(files.data_dir)
    write_svhn(files.data_dir)
    write_flowers102(files.data_dir)
    write_mnist(files.data_dir, "MNIST", train_per_class=6_000, test_per_class=1_000)
    write_mnist(files.data_dir, "FashionMNIST")
    write_image_folder(files.image_folder)
    return files


def hub_weights_file(torch_home: Path, arch: str) -> Path:
    """Where torchvision's `load_state_dict_from_url` looks for `arch`'s ImageNet weights."""
    url = HUB_WEIGHTS[arch][1].url
    return Path(torch_home) / "hub" / "checkpoints" / Path(urllib.parse.urlsplit(url).path).name


def write_hub_weights(torch_home: Path, arch: str) -> Path:
    """A seeded random-init state_dict of torchvision's `arch` (alexnet, vgg16) at its
    hub-cache name: loaded without a hash check, as a download already there would be."""
    path = hub_weights_file(torch_home, arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        state = HUB_WEIGHTS[arch][0]().state_dict()
    torch.save(state, path)
    return path


def _exists(fpath: str | os.PathLike, md5: str | None = None) -> bool:
    return os.path.isfile(fpath)


@contextlib.contextmanager
def md5_checks_skipped() -> Iterator[None]:
    """torchvision's CIFAR-10/100, STL-10, SVHN and Flowers-102 accept files whatever their
    md5 sum."""
    modules = ("cifar", "stl10", "svhn", "flowers102")
    with contextlib.ExitStack() as stack:
        for name in modules:
            target = f"torchvision.datasets.{name}.check_integrity"
            stack.enter_context(mock.patch(target, _exists))
        yield


def write_mnist_folder(root: Path, per_class: int, cache_dir: Path) -> Path:
    """`root/<digit>/<i>.png`: the first `per_class` real MNIST training images of each digit
    (the registry copy data=mnist reads), as an image folder a user would have."""
    from transferlab.data.packaged import Mnist

    train = Mnist(root / "no_torchvision_files", cache_dir).splits(seed=0)[0]
    images, labels = train.dataset.images, train.dataset.labels
    kept = {d: 0 for d in range(10)}
    for i in train.indices:
        digit = int(labels[i])
        if kept[digit] < per_class:
            (root / "digits" / str(digit)).mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[i, 0].numpy()).save(root / "digits" / str(digit) / f"{i}.png")
            kept[digit] += 1
        if min(kept.values()) >= per_class:
            break
    return root / "digits"
