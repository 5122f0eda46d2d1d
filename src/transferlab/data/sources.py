"""Where images come from: what every source answers, and the seeded split they share.

A source is built by Hydra from `data.source` and answers `classes`, `channels` and
`image_size` without loading anything; `splits(seed)` returns datasets of
`(image, label)` with the image a PIL image or a uint8 CxHxW tensor (what tells their
images apart for the feature cache: `data.fingerprints`). The sources
themselves: `digits.Digits`, `torchvision_sets.TorchvisionSource`,
`image_folder.ImageFolderSource`, `csv_table.CsvSource`, `hf_datasets.HuggingFaceSource`
and `packaged.Mnist`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset

from transferlab.errors import UserError

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


# What datasets call their splits (HF's "validation", Kaggle's "valid"...), as ours.
SPLIT_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
    "testing": "test",
}


def split_names(where: object, key: str | None) -> Callable[[str], str]:
    """A function naming a split value ours (train, val, test), or refusing an unknown one."""

    def name(value: str) -> str:
        if (ours := SPLIT_NAMES.get(value.strip().lower())) is None:
            raise UserError(
                f"{where}: split {value!r} (in {key!r}) is none of train, val or test. Fix: "
                f"name splits {', '.join(sorted(SPLIT_NAMES))}, or drop those rows."
            )
        return ours

    return name


class TensorImages(Dataset):
    """Images held in memory as a uint8 NxCxHxW tensor, with integer labels."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.images[i], int(self.labels[i])

    def fingerprint_parts(self) -> Iterator[memoryview]:
        """What identifies it for the feature cache: its pixels and labels, by value."""
        for tensor in (self.images, torch.as_tensor(self.labels)):
            yield tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().data


# A checkpoint keeps its source's `_target_`, and those written before the sources had
# modules of their own name this module: eval.py still instantiates them from here.
_MOVED = {
    "Digits": "digits",
    "ImageFolderSource": "image_folder",
    "TorchvisionSource": "torchvision_sets",
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"transferlab.data.{_MOVED[name]}"), name)
