"""In-memory image sets as one uint8 tensor, read a whole batch at a time.

Digits, MNIST, Fashion-MNIST, CIFAR-10, SVHN and any source of uint8 tensors fit in
memory, so a batch is one tensor index (`__getitems__`, which the DataLoader calls with
the batch's indices) instead of N item calls and a collate: no worker processes needed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, default_collate
from torchvision import datasets

from transferlab.data.sources import TensorImages

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
    """The split as one uint8 tensor when its images are tensors or array-backed; else None.

    Subsets (the seeded splits) are resolved to their rows. Image files (PIL) give None.
    """
    indices: np.ndarray | None = None
    while isinstance(dataset, Subset):
        step = np.asarray(dataset.indices, dtype=np.int64)
        indices = step if indices is None else step[indices]
        dataset = dataset.dataset
    found = _tensors(dataset)
    if found is None:
        return None
    images, labels = found
    if indices is not None:
        index = torch.from_numpy(indices)
        images, labels = images[index], labels[index]
    return BatchedImages(images.contiguous(), labels)


def _tensors(dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor] | None:
    if isinstance(dataset, TensorImages):
        images = dataset.images
        return (images.unsqueeze(1) if images.ndim == 3 else images), torch.as_tensor(
            dataset.labels, dtype=torch.int64
        )
    for cls, layout in _LAYOUTS.items():
        if isinstance(dataset, cls) and getattr(dataset, "transform", None) is None:
            return _from_array(dataset.data, layout), torch.as_tensor(_targets(dataset))
    if len(dataset) and _is_uint8_tensor(dataset[0][0]):
        # Any other source of uint8 tensors: read once, then sliced like the rest.
        items = [dataset[i] for i in range(len(dataset))]
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
