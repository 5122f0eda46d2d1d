"""In-memory image sets as one uint8 tensor, read a whole batch at a time.

Digits, MNIST, Fashion-MNIST, CIFAR-10/100, SVHN, STL-10 and any source of equal-shape
uint8 tensors usually fit in memory, so a batch is one tensor index (`__getitems__`, which
the DataLoader calls with the batch's indices) instead of N item calls and a collate: no
worker processes needed. The size is estimated from one image before anything is copied:
a split larger than MEMORY_SHARE of the RAM available takes the lazy path (images read per
item by the loader's workers) and the log says so. Only the images a split keeps (after
`limit`, `shots`, the seeded split) are read.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, default_collate
from torchvision import datasets

from transferlab.data.sources import TensorImages

log = logging.getLogger("transferlab")

MEMORY_SHARE = 0.5  # of the RAM available when the split is built

# torchvision keeps these sets' pixels in `.data`: (N, H, W), (N, H, W, C) or (N, C, H, W).
_LAYOUTS = {
    datasets.MNIST: "NHW",
    datasets.CIFAR10: "NHWC",  # CIFAR100 too, a subclass
    datasets.SVHN: "NCHW",
    datasets.STL10: "NCHW",
}


class BatchedImages(TensorImages):
    """A split's images (uint8 N x C x H x W) and labels; `__getitems__` slices a batch."""

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.int64)
        return self.images[index], self.labels[index]


def collate(items: Any) -> Any:
    """A batch already sliced by `BatchedImages` as it is; a list of items stacked."""
    return items if isinstance(items, tuple) else default_collate(items)


def in_memory(dataset: Dataset) -> BatchedImages | None:
    """The split as one uint8 tensor when its images are tensors or array-backed and fit in
    memory; else None (image files, or too large: read per item).

    Subsets (the seeded splits, `limit`, `shots`) are resolved to their rows first.
    """
    indices: np.ndarray | None = None
    while isinstance(dataset, Subset):
        step = np.asarray(dataset.indices, dtype=np.int64)
        indices = step if indices is None else step[indices]
        dataset = dataset.dataset
    rows = np.arange(len(dataset)) if indices is None else indices
    found = _tensors(dataset, rows)
    if found is None:
        return None
    images, labels = found
    return BatchedImages(images.contiguous(), labels)


def available_bytes() -> int:
    """RAM the kernel could give now without swapping (MemAvailable), else all of it."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def fits(count: int, image_bytes: int, what: str) -> bool:
    """Whether `count` images of `image_bytes` fit in MEMORY_SHARE of the available RAM."""
    need, have = count * image_bytes, available_bytes()
    if need <= MEMORY_SHARE * have:
        return True
    log.warning(
        "%s: %d images need %.1f GB in memory, more than %d%% of the %.1f GB available: read "
        "per item by the loader's workers instead (slower). Fix, if it should fit: "
        "data.source.limit= or data.source.eval_limit=, or a machine with more RAM.",
        what,
        count,
        need / 1e9,
        MEMORY_SHARE * 100,
        have / 1e9,
    )
    return False


def _tensors(dataset: Dataset, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor] | None:
    if not len(rows):
        return None
    index = torch.from_numpy(rows)
    name = type(dataset).__name__
    if isinstance(dataset, TensorImages):
        images = dataset.images
        if not fits(len(rows), images[0].numel() * images.element_size(), name):
            return None
        images = images[index]
        labels = torch.as_tensor(dataset.labels, dtype=torch.int64)[index]
        return (images.unsqueeze(1) if images.ndim == 3 else images), labels
    for cls, layout in _LAYOUTS.items():
        if isinstance(dataset, cls) and getattr(dataset, "transform", None) is None:
            if not fits(len(rows), int(np.prod(dataset.data.shape[1:])), name):
                return None
            images = _from_array(np.asarray(dataset.data)[rows], layout)
            return images, torch.as_tensor(_targets(dataset))[index]
    first = dataset[int(rows[0])][0]
    if _is_uint8_tensor(first) and fits(len(rows), first.numel(), name):
        # Any other source of uint8 tensors: only the rows kept are read, then sliced.
        items = [dataset[int(i)] for i in rows]
        if len({tuple(x.shape) for x, _ in items}) == 1:
            return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])
    return None


def _is_uint8_tensor(image: Any) -> bool:
    return isinstance(image, torch.Tensor) and image.dtype == torch.uint8 and image.ndim == 3


def _from_array(data: Any, layout: str) -> torch.Tensor:
    images = torch.as_tensor(np.asarray(data), dtype=torch.uint8)
    if layout == "NHW":
        return images.unsqueeze(1)
    return images.permute(0, 3, 1, 2) if layout == "NHWC" else images


def _targets(dataset: Dataset) -> list[int]:
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = dataset.labels
    return [int(y) for y in labels]
