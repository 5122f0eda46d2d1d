"""k-fold cross-validation over the training images: `data.folds` and `data.fold`.

`data.fold=k` (0 <= k < data.folds) trains on the other folds and validates on fold k.
The folds are stratified and seeded, and made from the training split only (after
`data.source.limit` / `shots`): the source's own validation and test images are never
in a fold, so `python train.py -m data.fold=0,1,2,3,4` is a 5-fold CV whose test scores
are all on the one untouched test split. `data.fold=null` is the normal split.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import StratifiedKFold
from torch.utils.data import Dataset, Subset

from transferlab.data.sources import Splits
from transferlab.data.subsets import labels_of
from transferlab.errors import UserError


def fold_indices(labels: np.ndarray, folds: int, seed: int) -> list[np.ndarray]:
    """Positions (into `labels`) of each fold's images: stratified, seeded, a partition."""
    counts = np.bincount(labels) if len(labels) else np.array([0])
    if len(labels) < folds or counts[counts > 0].min() < folds:
        smallest = int(counts[counts > 0].min()) if len(labels) else 0
        raise UserError(
            f"data.folds={folds} needs at least {folds} training images of every class; the "
            f"smallest class has {smallest}. Fix: fewer folds (e.g. data.folds={max(2, smallest)}"
            "), or more training images (data.source.limit / shots)."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [held for _, held in splitter.split(np.zeros(len(labels)), labels)]


def _positions(split: Dataset) -> tuple[Dataset, np.ndarray]:
    if isinstance(split, Subset):
        return split.dataset, np.asarray(split.indices, dtype=np.int64)
    return split, np.arange(len(split))


def cross_validation_split(splits: Splits, folds: int, fold: int | None, seed: int) -> Splits:
    """(train without fold k, fold k, test); the splits as they are when `fold` is None."""
    if fold is None:
        return splits
    if not 0 <= fold < folds:  # train.py refuses this first (checks/data.folds)
        raise ValueError(f"fold {fold} is not one of 0..{folds - 1}")
    train, _, test = splits
    base, indices = _positions(train)
    labels = np.asarray(labels_of(base))[indices]
    held = fold_indices(labels, folds, seed)[fold]
    kept = np.setdiff1d(np.arange(len(indices)), held)
    return Subset(base, indices[kept].tolist()), Subset(base, indices[held].tolist()), test
