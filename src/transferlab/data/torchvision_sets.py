"""torchvision's classification sets: any of them by its class name (`CIFAR100`, `STL10`,
`EuroSAT`, `DTD`...), and five with shortcuts of their own (mnist, fashion_mnist, cifar10,
svhn, flowers102).

Each set keeps its own split convention: a `train=True/False` pair, or the `split=` values
it accepts (train or trainval, val, test); a split it lacks is carved from train,
stratified and seeded. Offline by default: a set that is not on disk is a UserError saying
where its files go, and a download without network fails within seconds instead of hanging.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torchvision
from torch.utils.data import Dataset, Subset
from torchvision import datasets

from transferlab.data.sources import Splits, stratified_split
from transferlab.data.subsets import cut, labels_of
from transferlab.datasets import DATASETS
from transferlab.errors import UserError
from transferlab.image_files import is_image


@dataclass(frozen=True)
class _Torchvision:
    cls: type
    subfolder: str  # where torchvision keeps the files, relative to our root
    splits: dict[str, dict[str, Any]] | None  # ours -> constructor keywords; None: ask the set
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
    if spec is None and not isinstance(dataset, datasets.VisionDataset):
        return None
    root = Path(dataset.root)
    # Any other set: its whole root, since where it keeps its files is its own business.
    folder = root if spec is None or spec.nested else root / spec.subfolder
    return sorted(p for p in folder.rglob("*") if p.is_file())


# Files of a torchvision dataset smaller than this (labels, splits, class names) are read
# whole; larger ones (pixel arrays, archives) and images count by path, size and mtime.
_READ_BELOW = 1 << 20


def library_fingerprint_parts(dataset: Dataset) -> Iterator[bytes]:
    """What identifies a dataset of a library's own class (which cannot answer
    `fingerprint_parts()` itself) for the feature cache: its repr, which tells a
    torchvision set's splits apart (split=train), and for a torchvision set every file in
    its folder (path, size, modification time, the content of small non-image files) and
    its labels."""
    yield f"{type(dataset).__qualname__}|{len(dataset)}|{dataset!r}".encode()
    if (files := torchvision_files(dataset)) is None:
        return
    for path in files:
        stat = path.stat()
        yield f"{path}|{stat.st_size}|{stat.st_mtime_ns}\n".encode()
        if stat.st_size < _READ_BELOW and not is_image(path):
            yield hashlib.sha256(path.read_bytes()).digest()
    yield np.asarray(labels_of(dataset), dtype=np.int64).tobytes()


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
    """A torchvision classification set under `root`: a shortcut name or a class name.

    Uses the set's own splits (Flowers102's and DTD's val too); a missing val is a
    stratified, seeded `val_fraction` of train, a missing test (EuroSAT) `test_fraction`.
    """

    download_timeout_s = 5.0

    def __init__(
        self,
        name: str,
        root: str | Path,
        download: bool = False,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        limit: int | None = None,
        shots: int | None = None,
        eval_limit: int | None = None,
    ) -> None:
        self.name, self.root = name, Path(root).expanduser()
        self.spec = _TORCHVISION.get(name) or _any_set(name)
        self.row = DATASETS.get(name)  # None: a set the table does not know, read to learn
        self.download, self.val_fraction, self.test_fraction = download, val_fraction, test_fraction
        self.limit, self.shots, self.eval_limit = limit, shots, eval_limit
        self._loaded: dict[str, Dataset] = {}

    @property
    def classes(self) -> list[str]:
        if self.row and self.row.classes:
            return list(self.row.classes)
        if isinstance(name_list := getattr(self.spec.cls, "classes", None), (list, tuple)):
            return list(name_list)
        train = self._load("train")
        if names := getattr(train, "classes", None):
            return [str(n) for n in names]
        return [str(i) for i in range(max(labels_of(train)) + 1)]  # a set naming none

    @property
    def channels(self) -> int:
        if self.row and self.row.channels:
            return self.row.channels
        image = self._load("train")[0][0]
        return 1 if getattr(image, "mode", "RGB") in ("L", "1", "I", "I;16", "F") else 3

    @property
    def image_size(self) -> int | None:
        return self.row.native_size if self.row else None

    @property
    def folder(self) -> Path:
        """The folder that holds the dataset's files once it is on disk."""
        return self.root / self.spec.subfolder

    def prepare(self) -> None:
        """Check the files are on disk, downloading them first when `download` is true."""
        for split in self._split_kwargs():
            self._load(split, download=self.download)

    def splits(self, seed: int) -> Splits:
        have = self._split_kwargs()
        train = self._load("train")
        val_fraction = 0.0 if "val" in have else self.val_fraction
        test_fraction = 0.0 if "test" in have else self.test_fraction
        idx = stratified_split(labels_of(train), val_fraction, test_fraction, seed)
        carved = [Subset(train, ix.tolist()) for ix in idx]
        splits = (
            carved[0] if val_fraction or test_fraction else train,
            self._load("val") if "val" in have else carved[1],
            self._load("test") if "test" in have else carved[2],
        )
        return cut(splits, self.limit, self.shots, seed, self.eval_limit)

    def _split_kwargs(self) -> dict[str, dict[str, Any]]:
        """Our split name -> the constructor keywords that select it (the set's own names)."""
        if self.spec.splits is not None:
            return self.spec.splits
        params = inspect.signature(self.spec.cls).parameters
        if "train" in params:
            return _TRAIN_TEST
        if "split" not in params:
            return {"train": {}}  # one set of images (EuroSAT): val and test are carved
        found = {}
        for ours, theirs in _SPLIT_VALUES.items():
            for value in theirs:
                if _accepts(self.spec.cls, "split", value):
                    found[ours] = {"split": value}
                    break
        return found

    def _load(self, split: str, download: bool = False) -> Dataset:
        if split in self._loaded and not download:
            return self._loaded[split]
        spec = self.spec
        kwargs = {"root": str(self.folder if spec.nested else self.root)}
        kwargs |= self._split_kwargs()[split]
        if "download" in inspect.signature(spec.cls).parameters:  # ImageNet has none
            kwargs["download"] = download
        try:
            with _socket_timeout(self.download_timeout_s):
                found = spec.cls(**kwargs)
        except RuntimeError as e:  # torchvision's "Dataset not found or corrupted"
            if not download:
                raise UserError(self._missing("is not on disk (download=false)")) from e
            raise UserError(self._missing(f"could not be downloaded ({_one_line(e)})")) from e
        except OSError as e:  # URLError and socket timeouts are OSErrors
            raise UserError(self._missing(f"could not be downloaded ({_one_line(e)})")) from e
        self._loaded[split] = found
        return found

    def _missing(self, why: str) -> str:
        return (
            f"Dataset {self.name!r} {why}: expected its files in {self.folder}. Fix: run once "
            "with data.source.download=true on a machine with internet, then copy that folder "
            "here, or set paths.data_dir= to the folder that already holds it."
        )


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())  # torchvision's messages span lines


# What sets call the splits we use, in order of preference (OxfordIIITPet: trainval).
_SPLIT_VALUES = {"train": ("train", "trainval"), "val": ("val", "valid"), "test": ("test",)}


def _accepts(cls: type, key: str, value: str) -> bool:
    """Whether the set takes `key=value`: torchvision checks the value before any file."""
    try:
        cls(root="/nonexistent", download=False, **{key: value})
    except ValueError:  # verify_str_arg: not one of the set's values
        return False
    except Exception:  # it got past the check and then found no files
        return True
    return True


def _any_set(name: str) -> _Torchvision:
    """A torchvision dataset class by name; classes, channels and splits found on loading."""
    cls = getattr(torchvision.datasets, name, None)
    if not (isinstance(cls, type) and issubclass(cls, datasets.VisionDataset)):
        raise UserError(
            f"Unknown torchvision dataset name={name!r}. Fix: a shortcut ("
            f"{', '.join(_TORCHVISION)}) or a torchvision.datasets class name as it is "
            "spelled there, e.g. CIFAR100, STL10, EuroSAT, DTD, Food101, OxfordIIITPet "
            "(or data=image_folder for your own images)."
        )
    return _Torchvision(cls, "", None)
