"""A tensor-backed split is sized from one image before it is copied: past MEMORY_SHARE of
the available RAM it is read per item instead, and only the rows a split keeps are read."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import Dataset, Subset

from tests.conftest import HALF
from transferlab.data import memory
from transferlab.data.datamodule import ImageDataModule
from transferlab.data.digits import Digits


class CountedTensors(Dataset):
    """1,000 uint8 3x8x8 images that count how many were read: a source we do not know."""

    def __init__(self) -> None:
        self.reads = 0

    def __len__(self) -> int:
        return 1000

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        self.reads += 1
        return torch.full((3, 8, 8), i % 256, dtype=torch.uint8), i % 10


def test_only_the_rows_a_split_keeps_are_read():
    source = CountedTensors()
    kept = memory.in_memory(Subset(source, list(range(100, 120))))
    assert kept is not None and kept.images.shape == (20, 3, 8, 8)
    assert kept.images[0, 0, 0, 0] == 100 and kept.labels.tolist()[:2] == [0, 1]
    assert source.reads <= 21  # one image to size the split, then its 20 rows


def test_a_split_past_the_memory_share_is_read_per_item_and_the_log_says_why(monkeypatch, caplog):
    monkeypatch.setattr(memory, "available_bytes", lambda: 100_000)  # 100 kB "free"
    source = CountedTensors()  # 1,000 x 192 bytes = 192 kB > half of it
    with caplog.at_level(logging.WARNING, logger="transferlab"):
        assert memory.in_memory(source) is None
    assert source.reads == 1  # sized from one image, nothing copied
    assert "1000 images need 0.0 GB" in caplog.text and "data.source.limit=" in caplog.text


def test_a_datamodule_too_large_for_memory_still_trains_from_the_same_images(monkeypatch):
    def first_batch(module: ImageDataModule) -> tuple[torch.Tensor, torch.Tensor]:
        module.setup()
        images, labels = next(iter(module.test_dataloader()))
        return module.prepare_batch(images, labels, train=False)

    held = ImageDataModule(Digits(), HALF, batch_size=32, num_workers=0)
    x_held, y_held = first_batch(held)
    monkeypatch.setattr(memory, "available_bytes", lambda: 1000)
    lazy = ImageDataModule(Digits(), HALF, batch_size=32, num_workers=0)
    x_lazy, y_lazy = first_batch(lazy)
    assert held.in_memory and not lazy.in_memory
    assert torch.equal(y_held, y_lazy) and x_held.shape == x_lazy.shape == (32, 3, 16, 16)
    assert (x_held - x_lazy).abs().max() < 0.1  # resized per item vs per batch: same images
