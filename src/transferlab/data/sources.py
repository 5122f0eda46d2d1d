"""Where images come from: each source knows its classes and yields train/val/test splits.

A source is built by Hydra from `data.source` and answers `classes`, `channels` and
`image_size` without loading anything; `splits(seed)` returns datasets of
`(image, label)` with the image a PIL image or a uint8 CxHxW tensor.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset, Subset
from torchvision import datasets

from transferlab.data.folders import class_folders, class_tree, is_image, no_images
from transferlab.data.subsets import cut, labels_of
from transferlab.errors import UserError

log = logging.getLogger(__name__)

Splits = tuple[Dataset, Dataset, Dataset]


class ImageSource(Protocol):
    """What the datamodule needs from a source."""

    classes: list[str]
    channels: int
    image_size: int | None

    def prepare(self) -> None: ...

    def splits(self, seed: int) -> Splits: ...


def stratified_split(
    labels: Sequence[int], val_fraction: float, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Train/val/test indices holding each class in proportion; same seed, same split."""
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise UserError(
            f"The split fractions val_fraction={val_fraction} and test_fraction={test_fraction} "
            "must be non-negative and sum to less than 1 so that something is left to train on. "
            "Fix: set data.source.val_fraction / data.source.test_fraction, e.g. 0.15 each."
        )
    labels = np.asarray(labels)
    rest, test = _carve(np.arange(len(labels)), labels, test_fraction, seed)
    train, val = _carve(rest, labels[rest], val_fraction / (1 - test_fraction), seed)
    return train, val, test


def _carve(
    idx: np.ndarray, labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if fraction == 0:
        return idx, idx[:0]
    try:
        kept, carved = train_test_split(
            idx, test_size=fraction, stratify=labels, random_state=seed, shuffle=True
        )
    except ValueError as e:
        raise UserError(
            f"Cannot carve a stratified {fraction:.3g} fraction out of {len(idx)} images "
            f"({len(set(labels.tolist()))} classes): {e}. Fix: add images (every class needs "
            "at least 2, and each split at least one per class) or change "
            "data.source.val_fraction / data.source.test_fraction."
        ) from e
    return np.sort(kept), np.sort(carved)


class TensorImages(Dataset):
    """Images held in memory as a uint8 NxCxHxW tensor, with integer labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])


class Digits:
    """sklearn's 1797 real 8x8 greyscale digits: offline, seconds to train on."""

    channels = 1
    image_size = 8

    def __init__(
        self,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        limit: int | None = None,
        shots: int | None = None,
    ) -> None:
        self.classes = list(_DIGITS)
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.limit, self.shots = limit, shots

    def prepare(self) -> None:
        """Nothing to fetch: the data ships with scikit-learn."""

    def splits(self, seed: int) -> Splits:
        from sklearn.datasets import load_digits

        digits = load_digits()
        # Pixel values run 0..16; scale to the full uint8 range like any other image.
        images = torch.from_numpy(digits.images * (255 / 16)).round().to(torch.uint8)
        data = TensorImages(images.unsqueeze(1), torch.from_numpy(digits.target))
        idx = stratified_split(digits.target, self.val_fraction, self.test_fraction, seed)
        splits = tuple(Subset(data, i.tolist()) for i in idx)
        return cut(splits, self.limit, self.shots, seed)


@dataclass(frozen=True)
class _Torchvision:
    cls: type
    subfolder: str  # where torchvision keeps the files, relative to our root
    classes: tuple[str, ...]
    channels: int
    image_size: int | None
    splits: dict[str, dict[str, Any]]  # our split name -> constructor keywords
    nested: bool = False  # torchvision writes straight into root: give it a folder of its own


_DIGITS = tuple(str(d) for d in range(10))
_FASHION = tuple(datasets.FashionMNIST.classes)
_CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer")
_CIFAR10 += ("dog", "frog", "horse", "ship", "truck")
_FLOWERS = tuple(datasets.Flowers102.classes)
_TRAIN_TEST = {"train": {"train": True}, "test": {"train": False}}
_NAMED = {s: {"split": s} for s in ("train", "val", "test")}
_TORCHVISION = {
    "mnist": _Torchvision(datasets.MNIST, "MNIST", _DIGITS, 1, 28, _TRAIN_TEST),
    "fashion_mnist": _Torchvision(
        datasets.FashionMNIST, "FashionMNIST", _FASHION, 1, 28, _TRAIN_TEST
    ),
    "cifar10": _Torchvision(datasets.CIFAR10, "cifar-10-batches-py", _CIFAR10, 3, 32, _TRAIN_TEST),
    "svhn": _Torchvision(
        datasets.SVHN, "svhn", _DIGITS, 3, 32, {s: _NAMED[s] for s in ("train", "test")}, True
    ),
    "flowers102": _Torchvision(datasets.Flowers102, "flowers-102", _FLOWERS, 3, None, _NAMED),
}


def torchvision_files(dataset: Dataset) -> list[Path] | None:
    """Every file under the folder that a torchvision dataset of `_TORCHVISION` reads, in
    order; None for any other dataset.

    The whole folder, not the files one split opens (which are torchvision's internals):
    an unrelated file there changes the answer too, which only costs a recomputation.
    """
    spec = next((s for s in _TORCHVISION.values() if type(dataset) is s.cls), None)
    if spec is None:
        return None
    root = Path(dataset.root)
    folder = root if spec.nested else root / spec.subfolder
    return sorted(p for p in folder.rglob("*") if p.is_file())


@contextlib.contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    # Without network a download would otherwise hang on connect for minutes.
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


class TorchvisionSource:
    """A torchvision dataset (mnist, fashion_mnist, cifar10, svhn, flowers102) under `root`.

    Uses the dataset's own test split (and Flowers102's own val split); val is otherwise a
    stratified, seeded `val_fraction` of train.
    """

    download_timeout_s = 5.0

    def __init__(
        self,
        name: str,
        root: str | Path,
        download: bool = False,
        val_fraction: float = 0.1,
        limit: int | None = None,
        shots: int | None = None,
    ) -> None:
        if name not in _TORCHVISION:
            raise UserError(
                f"Unknown torchvision dataset name={name!r}. Fix: use one of "
                f"{', '.join(_TORCHVISION)} (or data=image_folder for your own images)."
            )
        self.name, self.root = name, Path(root).expanduser()
        self.download, self.val_fraction = download, val_fraction
        self.limit, self.shots = limit, shots
        spec = _TORCHVISION[name]
        self.classes = list(spec.classes)
        self.channels, self.image_size = spec.channels, spec.image_size

    @property
    def folder(self) -> Path:
        """The folder that holds the dataset's files once it is on disk."""
        return self.root / _TORCHVISION[self.name].subfolder

    def prepare(self) -> None:
        """Check the files are on disk, downloading them first when `download` is true."""
        for split in _TORCHVISION[self.name].splits:
            self._load(split, download=self.download)

    def splits(self, seed: int) -> Splits:
        spec = _TORCHVISION[self.name]
        train, test = self._load("train"), self._load("test")
        if "val" in spec.splits:
            return cut((train, self._load("val"), test), self.limit, self.shots, seed)
        labels = labels_of(train)
        train_idx, val_idx, _ = stratified_split(labels, self.val_fraction, 0.0, seed)
        splits = Subset(train, train_idx.tolist()), Subset(train, val_idx.tolist()), test
        return cut(splits, self.limit, self.shots, seed)

    def _load(self, split: str, download: bool = False) -> Dataset:
        spec = _TORCHVISION[self.name]
        root = self.folder if spec.nested else self.root
        if not download:
            try:
                return spec.cls(root=str(root), download=False, **spec.splits[split])
            except RuntimeError as e:  # torchvision's "Dataset not found or corrupted"
                raise UserError(self._missing("is not on disk (download=false)")) from e
        try:
            with _socket_timeout(self.download_timeout_s):
                return spec.cls(root=str(root), download=True, **spec.splits[split])
        except (OSError, RuntimeError) as e:  # URLError and socket timeouts are OSErrors
            why = " ".join(str(e).split())  # torchvision's message spans lines
            raise UserError(self._missing(f"could not be downloaded ({why})")) from e

    def _missing(self, why: str) -> str:
        return (
            f"Dataset {self.name!r} {why}: expected its files in {self.folder}. Fix: run once "
            "with data.source.download=true on a machine with internet, then copy that folder "
            "here, or set paths.data_dir= to the folder that already holds it."
        )


class ImageFiles(Dataset):
    """Image files read with PIL and converted to `mode` ("RGB" or "L")."""

    def __init__(self, files: Sequence[Path], labels: Sequence[int], mode: str) -> None:
        self.files, self.labels, self.mode = list(files), list(labels), mode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        path = self.files[i]
        try:
            with Image.open(path) as img:
                return img.convert(self.mode), self.labels[i]
        except Exception as e:  # PIL raises many types for a bad file; the path is what matters
            raise UserError(
                f"Cannot read image {path}: {e}. Fix: replace or delete that file, or set "
                "data.skip_corrupt=true to drop unreadable files at setup."
            ) from e


_SPLIT_FOLDERS = {"val": ("val", "valid", "validation"), "test": ("test",)}


class ImageFolderSource:
    """Your own images, one subfolder per class.

    Either `root/<class>/...` split by the fractions, or `root/train`, `root/val` and
    `root/test` (a missing val or test is carved from train), stratified and seeded.
    """

    image_size = None

    def __init__(
        self,
        root: str | Path,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        channels: int = 3,
        skip_corrupt: bool = False,
        limit: int | None = None,
        shots: int | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise UserError(
                f"data.source.channels must be 1 (greyscale) or 3 (RGB), got {channels!r}."
            )
        self.root, self.channels = Path(root).expanduser(), channels
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.skip_corrupt = skip_corrupt
        self.limit, self.shots = limit, shots

    @property
    def classes(self) -> list[str]:
        return class_folders(self._train_dir())

    def prepare(self) -> None:
        """Nothing to fetch; check the folder tree early so mistakes surface before training."""
        self.classes  # noqa: B018

    def splits(self, seed: int) -> Splits:
        classes = self.classes
        train = self._scan(self._train_dir(), classes)
        found = {k: self._split_dir(k) for k in _SPLIT_FOLDERS}
        given = {k: self._scan(d, classes) for k, d in found.items() if d is not None}
        val_fraction = 0.0 if "val" in given else self.val_fraction
        test_fraction = 0.0 if "test" in given else self.test_fraction
        idx = stratified_split(train[1], val_fraction, test_fraction, seed)
        carved = [([train[0][i] for i in ix], [train[1][i] for i in ix]) for ix in idx]
        parts = [carved[0], given.get("val", carved[1]), given.get("test", carved[2])]
        mode = "RGB" if self.channels == 3 else "L"
        splits = tuple(ImageFiles(files, labels, mode) for files, labels in parts)
        return cut(splits, self.limit, self.shots, seed)

    def _train_dir(self) -> Path:
        if not self.root.is_dir():
            raise UserError(
                f"Image folder data.source.root={self.root} does not exist. Fix: point it at a "
                "folder with one subfolder of images per class (or train/, val/, test/ ones)."
            )
        return class_tree(self.root)

    def _split_dir(self, split: str) -> Path | None:
        if self._train_dir() == self.root:
            return None
        return next((p for n in _SPLIT_FOLDERS[split] if (p := self.root / n).is_dir()), None)

    def _scan(self, folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
        if (seen := class_folders(folder)) != classes:
            raise UserError(
                f"The class folders of {folder} ({seen}) differ from those of "
                f"{self._train_dir()} ({classes}). Fix: give every split folder the same "
                "class subfolders."
            )
        files, labels = [], []
        for label, name in enumerate(classes):
            found = _image_files(folder / name)
            if not found:
                raise no_images(folder / name)
            files += found
            labels += [label] * len(found)
        return self._drop_corrupt(files, labels) if self.skip_corrupt else (files, labels)

    def _drop_corrupt(self, files: list[Path], labels: list[int]) -> tuple[list[Path], list[int]]:
        ok = [_readable(f) for f in files]
        if bad := [f for f, good in zip(files, ok, strict=True) if not good]:
            log.warning("skip_corrupt: dropped %d unreadable image(s), e.g. %s", len(bad), bad[0])
        keep = [i for i, good in enumerate(ok) if good]
        return [files[i] for i in keep], [labels[i] for i in keep]


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if is_image(p) and p.is_file())


def _readable(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.draft(img.mode, (1, 1))  # JPEGs decode at 1/8 scale: a full pass, far cheaper
            img.load()
        return True
    except Exception:  # any failure means the training loop could not read it either
        return False
