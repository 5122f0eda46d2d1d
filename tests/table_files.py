"""Tiny real datasets in the on-disk formats users bring: a CSV of image paths and labels,
and a Hugging Face dataset written by `save_to_disk`. Images are sklearn's real digits."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits


def digit_images() -> tuple[list[Image.Image], np.ndarray]:
    """sklearn's 1797 real 8x8 digits as greyscale PIL images (0..16 scaled to 0..255)."""
    digits = load_digits()
    pixels = (digits.images * 16).clip(0, 255).astype(np.uint8)
    return [Image.fromarray(p) for p in pixels], digits.target


def write_digits_csv(root: Path, rows: list[tuple[int, str, str | None]]) -> Path:
    """`root/labels.csv` (path, label[, split]) and `root/images/<i>.png` per (digit index,
    label, split) row; paths relative to the CSV's folder, as users write them."""
    images, _ = digit_images()
    (root / "images").mkdir(parents=True, exist_ok=True)
    with_split = any(split is not None for _, _, split in rows)
    with open(root / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "label", "split"] if with_split else ["path", "label"])
        for i, label, split in rows:
            images[i].save(root / "images" / f"{i}.png")
            writer.writerow(
                [f"images/{i}.png", label, split] if with_split else [f"images/{i}.png", label]
            )
    return root / "labels.csv"


def imbalanced_rows(minority: int = 8, share: float = 0.05, seed: int = 0) -> list:
    """A 95/5 two-class set: every digit but `minority` is "other"; a seeded 5% "eight"."""
    _, target = digit_images()
    others = np.flatnonzero(target != minority)
    rng = np.random.default_rng(seed)
    few = rng.choice(np.flatnonzero(target == minority), int(len(others) * share / (1 - share)))
    return [(int(i), "other", None) for i in others] + [(int(i), "eight", None) for i in few]


def write_hf_digits(folder: Path, per_split: dict[str, int]) -> Path:
    """A DatasetDict of the first digits (Image and ClassLabel features) saved to `folder`,
    `per_split` images in each named split (e.g. train, validation, test)."""
    import datasets

    images, target = digit_images()
    features = datasets.Features(
        {
            "img": datasets.Image(),
            "digit": datasets.ClassLabel(names=[f"digit {d}" for d in range(10)]),
        }
    )
    splits, start = {}, 0
    for name, count in per_split.items():
        rows = range(start, start + count)
        data = {"img": [images[i] for i in rows], "digit": [int(target[i]) for i in rows]}
        splits[name] = datasets.Dataset.from_dict(data, features=features)
        start += count
    datasets.DatasetDict(splits).save_to_disk(str(folder))
    return folder
