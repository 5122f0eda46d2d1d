"""Seeded, stratified cuts of a source's splits: `data.source.limit` and `data.source.shots`.

Every source ends its `splits` with `cut`, so the two keys mean the same for sklearn's
digits, MNIST, torchvision sets and image folders: `limit` keeps that many training images
in the classes' proportions and `shots` that many training images of each class (few-shot
and data-efficiency studies), val and test untouched, so runs at different training-set
sizes are scored on the same images. `eval_limit` cuts val and test too (quick runs).
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.model_selection import train_test_split
from torch.utils.data import Dataset, Subset

from transferlab.data.sources import Splits
from transferlab.errors import UserError

log = logging.getLogger("transferlab")


def labels_of(dataset: Dataset) -> list[int]:
    """A dataset's labels, in item order, read from its attributes (torchvision's and ours)."""
    for attr in ("targets", "labels", "_labels"):
        if hasattr(dataset, attr):
            values = getattr(dataset, attr)
            return values.tolist() if hasattr(values, "tolist") else [int(y) for y in values]
    raise TypeError(f"no labels found on {type(dataset).__name__}")


def _indexed(split: Dataset) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """(base dataset, indices into it, their labels) of a split, Subset or whole."""
    if isinstance(split, Subset):
        base, indices = split.dataset, np.asarray(split.indices, dtype=np.int64)
    else:  # a split that is a whole dataset (an official test set, an image folder)
        base, indices = split, np.arange(len(split))
    return base, indices, np.asarray(labels_of(base))[indices]


def cut(
    splits: Splits,
    limit: int | None,
    shots: int | None,
    seed: int,
    eval_limit: int | None = None,
) -> Splits:
    """`limit` training images, then `shots` per class; `eval_limit` val and test images."""
    train, *others = splits
    train = limited((train,), limit, seed)[0]
    others = limited(tuple(others), eval_limit, seed, key="eval_limit")
    if shots is not None:
        train = few_shot(train, shots, seed)
    return (train, *others)


def limited(splits: Splits, limit: int | None, seed: int, key: str = "limit") -> Splits:
    """Each split cut to a seeded, stratified `limit` images; None: all."""
    if limit is None:
        return splits
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 10:
        raise UserError(
            f"data.source.{key}={limit!r} must be a whole number of images of at least 10 "
            f"(one per class), or null for every image. Fix: e.g. data.source.{key}=500."
        )
    out = []
    for split in splits:
        if len(split) <= limit:
            out.append(split)
            continue
        base, indices, labels = _indexed(split)
        try:
            kept, _ = train_test_split(
                indices, train_size=limit, stratify=labels, random_state=seed
            )
        except ValueError as e:  # fewer images kept than classes, or a class of one image
            raise UserError(
                f"data.source.{key}={limit} cannot keep every class of a split of {len(split)} "
                f"images in proportion ({e}). Fix: a larger limit, e.g. "
                f"data.source.{key}=1000, or null for every image."
            ) from e
        out.append(Subset(base, np.sort(kept).tolist()))
    return tuple(out)


def few_shot(train: Dataset, shots: int, seed: int) -> Subset:
    """`shots` seeded training images of each class (all of a class that has fewer)."""
    if isinstance(shots, bool) or not isinstance(shots, int) or shots < 1:
        raise UserError(
            f"data.source.shots={shots!r} must be a whole number of training images per class "
            "of at least 1, or null for every image. Fix: e.g. data.source.shots=5."
        )
    base, indices, labels = _indexed(train)
    rng = np.random.default_rng(seed)
    kept, short = [], []
    for label in np.unique(labels):
        members = indices[labels == label]
        if len(members) < shots:
            short.append(int(label))
        kept.append(rng.choice(members, size=min(shots, len(members)), replace=False))
    if short:
        log.warning(
            "data.source.shots=%d: %d class(es) have fewer training images, all of theirs "
            "are kept (labels %s).",
            shots,
            len(short),
            short[:10],
        )
    chosen = np.sort(np.concatenate(kept))
    log.info(
        "data.source.shots=%d: training on %d of %d images (%d classes).",
        shots,
        len(chosen),
        len(indices),
        len(np.unique(labels)),
    )
    return Subset(base, chosen.tolist())
