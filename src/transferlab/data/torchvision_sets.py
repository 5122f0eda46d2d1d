"""torchvision's downloadable sets (mnist, fashion_mnist, cifar10, svhn, flowers102).

Offline by default: a set that is not on disk is a UserError saying where its files go,
and a download without network fails within seconds instead of hanging.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset, Subset
from torchvision import datasets

from transferlab.data.sources import Splits, stratified_split
from transferlab.data.subsets import cut, labels_of
from transferlab.datasets import DATASETS
from transferlab.errors import UserError


@dataclass(frozen=True)
class _Torchvision:
    cls: type
    subfolder: str  # where torchvision keeps the files, relative to our root
    splits: dict[str, dict[str, Any]]  # our split name -> constructor keywords
    nested: bool = False  # torchvision writes straight into root: give it a folder of its own


_TRAIN_TEST = {"train": {"train": True}, "test": {"train": False}}
_NAMED = {s: {"split": s} for s in ("train", "val", "test")}
# Native size, channels and class names are the datasets table's (transferlab.datasets).
_TORCHVISION = {
    "mnist": _Torchvision(datasets.MNIST, "MNIST", _TRAIN_TEST),
    "fashion_mnist": _Torchvision(datasets.FashionMNIST, "FashionMNIST", _TRAIN_TEST),
    "cifar10": _Torchvision(datasets.CIFAR10, "cifar-10-batches-py", _TRAIN_TEST),
    "svhn": _Torchvision(
        datasets.SVHN, "svhn", {s: _NAMED[s] for s in ("train", "test")}, nested=True
    ),
    "flowers102": _Torchvision(datasets.Flowers102, "flowers-102", _NAMED),
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
        eval_limit: int | None = None,
    ) -> None:
        if name not in _TORCHVISION:
            raise UserError(
                f"Unknown torchvision dataset name={name!r}. Fix: use one of "
                f"{', '.join(_TORCHVISION)} (or data=image_folder for your own images)."
            )
        self.name, self.root = name, Path(root).expanduser()
        self.download, self.val_fraction = download, val_fraction
        self.limit, self.shots, self.eval_limit = limit, shots, eval_limit
        spec = _TORCHVISION[name]
        row = DATASETS[name]
        self.classes = list(row.classes or spec.cls.classes)
        self.channels, self.image_size = row.channels, row.native_size

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
            return cut(
                (train, self._load("val"), test), self.limit, self.shots, seed, self.eval_limit
            )
        labels = labels_of(train)
        train_idx, val_idx, _ = stratified_split(labels, self.val_fraction, 0.0, seed)
        splits = Subset(train, train_idx.tolist()), Subset(train, val_idx.tolist()), test
        return cut(splits, self.limit, self.shots, seed, self.eval_limit)

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
