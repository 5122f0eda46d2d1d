"""Imbalanced classes: `data.balance=none|weights|sampler`.

`weights` weighs the training loss by class (n / (classes x count), sklearn's "balanced");
`sampler` draws each epoch's training images with replacement, every class equally likely
(`datamodule.EpochShuffle` with `draw_weights`), from (seed, epoch) alone, so a resumed
run and every DDP rank see the same draw.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset, Subset

from transferlab.checks.data import source_keys


def check(balance: str) -> str:
    """`balance` when it is one of BALANCE (checks.data says why not)."""
    source_keys({"balance": balance})
    return balance


def class_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """n / (classes present x count) per class; 0 for a class with no training image."""
    counts = torch.bincount(labels.long(), minlength=num_classes).double()
    present = int((counts > 0).sum())
    weights = torch.where(counts > 0, len(labels) / (present * counts.clamp(min=1)), 0.0)
    return weights.float()


def draw_weights(labels: torch.Tensor) -> torch.Tensor:
    """Per image, the chance the balanced sampler draws it: every class equally likely."""
    counts = torch.bincount(labels.long()).double()
    return (1.0 / counts)[labels.long()]


def split_labels(dataset: Dataset) -> torch.Tensor:
    """The labels of a split's items in order, read without loading any image."""
    from transferlab.data.subsets import labels_of

    indices = None
    while True:
        if isinstance(dataset, Subset):
            step = torch.as_tensor(dataset.indices, dtype=torch.int64)
            indices = step if indices is None else step[indices]
            dataset = dataset.dataset
        elif hasattr(dataset, "dataset") and not hasattr(dataset, "labels"):
            dataset = dataset.dataset  # a transforming wrapper (datamodule.Transformed)
        else:
            break
    labels = getattr(dataset, "labels", None)
    if not isinstance(labels, torch.Tensor):
        labels = torch.as_tensor(labels_of(dataset), dtype=torch.int64)
    return labels if indices is None else labels[indices]
