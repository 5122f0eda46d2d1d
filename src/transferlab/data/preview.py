"""plots/augmentation.png: training images as the model receives them, several draws each.

Rows are images (one per class while classes last), columns the eval view (no
augmentation) then `draws` training draws through the same batch stage the training
step gets, MixUp/CutMix included; de-normalised and enlarged (nearest) for display.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from transferlab.data.datamodule import ImageDataModule, Transformed
from transferlab.data.memory import collate

ROWS, DRAWS, GAP, MIN_TILE = 8, 8, 2, 64


def pick_rows(labels: list[int], rows: int = ROWS) -> list[int]:
    """Indices of the first image of each class, then the next ones, `rows` in all."""
    firsts = list({label: i for i, label in reversed(list(enumerate(labels)))}.values())
    firsts.sort(key=lambda i: labels[i])
    rest = [i for i in range(len(labels)) if i not in set(firsts)]
    return (firsts + rest)[:rows]


def preview_grid(datamodule: ImageDataModule, draws: int = DRAWS) -> np.ndarray:
    """(H, W, C) uint8 grid: a row per picked training image, 1 + `draws` columns."""
    datamodule.setup()
    dataset = datamodule.train_set
    labels = [int(dataset[i][1]) for i in range(min(len(dataset), 500))]
    rows = pick_rows(labels)
    columns = [_batch(datamodule, rows, train=False)]
    columns += [_batch(datamodule, rows, train=True) for _ in range(draws)]
    return _tile(torch.stack(columns, dim=1))  # (rows, columns, C, S, S)


def write_preview(datamodule: ImageDataModule, path: Path, draws: int = DRAWS) -> Path:
    grid = preview_grid(datamodule, draws)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(path)
    return path


def _batch(datamodule: ImageDataModule, rows: list[int], train: bool) -> torch.Tensor:
    # Items are fetched anew for every draw: image files draw their augmentation in the
    # item stage, so their eval view reads the same files through the eval item stage.
    dataset = datamodule.train_set
    if not train and isinstance(dataset, Transformed):
        dataset = Transformed(dataset.dataset, datamodule.val_set.transform)
    images, labels = collate([dataset[i] for i in rows])
    x, _ = datamodule.prepare_batch(images, torch.as_tensor(labels), train=train)
    pre = datamodule.preprocess
    mean = torch.tensor(pre.mean).view(1, -1, 1, 1)
    std = torch.tensor(pre.std).view(1, -1, 1, 1)
    return ((x * std + mean).clamp(0, 1) * 255).round().to(torch.uint8)


def tile_size(image_size: int) -> int:
    """Display size of one tile: small images enlarged by a whole factor to >= MIN_TILE."""
    return image_size * math.ceil(MIN_TILE / image_size)


def _tile(images: torch.Tensor) -> np.ndarray:
    rows, cols, channels, size, _ = images.shape
    scale = tile_size(size) // size
    big = images.repeat_interleave(scale, dim=-1).repeat_interleave(scale, dim=-2)
    tile = size * scale
    grid = np.full((GAP + rows * (tile + GAP), GAP + cols * (tile + GAP), channels), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            top, left = GAP + r * (tile + GAP), GAP + c * (tile + GAP)
            grid[top : top + tile, left : left + tile] = big[r, c].permute(1, 2, 0).numpy()
    return grid
