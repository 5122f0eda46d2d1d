"""The LightningDataModule: a source's three splits, transformed and batched."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Sampler

from transferlab.data.sources import ImageSource
from transferlab.data.transforms import Preprocess, build_transforms


class Transformed(Dataset):
    """Applies `transform` to the image of each `(image, label)` item."""

    def __init__(self, dataset: Dataset, transform: Callable[[Any], torch.Tensor]) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.dataset[i]
        return self.transform(image), label


class EpochShuffle(Sampler[int]):
    """This rank's share of a permutation drawn from (seed, epoch) alone.

    A resumed run sees the same order (Lightning calls `set_epoch` before each epoch).
    Under DDP every rank gets the same number of indices (the permutation wraps around),
    so no rank waits at a gradient all-reduce that others never reach.
    """

    def __init__(self, size: int, seed: int, rank: int = 0, world_size: int = 1) -> None:
        self.size, self.seed, self.epoch = size, seed, 0
        self.rank, self.world_size = rank, world_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.size // self.world_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.size, generator=generator).tolist()
        order += order[: len(self) * self.world_size - self.size]
        return iter(order[self.rank :: self.world_size])


class Shard(Sampler[int]):
    """Every `world_size`-th index from `rank`: each sample evaluated exactly once.

    Lightning's default DistributedSampler pads val/test with repeats, which would make a
    DDP run's accuracy differ from a single-process eval of the same checkpoint.
    """

    def __init__(self, size: int, rank: int = 0, world_size: int = 1) -> None:
        self.indices = range(rank, size, world_size)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        return iter(self.indices)


def rank_and_world(trainer) -> tuple[int, int]:
    """This process's shard; the trainer config sets use_distributed_sampler=false."""
    return (trainer.global_rank, trainer.world_size) if trainer else (0, 1)


class ImageDataModule(LightningDataModule):
    """Train (augmented, shuffled per (seed, epoch)), val and test loaders of a source."""

    def __init__(
        self,
        source: ImageSource,
        preprocess: Preprocess,
        augmentation: Mapping[str, Any] | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 42,
    ) -> None:
        super().__init__()
        self.source, self.preprocess = source, preprocess
        self.augmentation = dict(augmentation) if augmentation else None
        self.batch_size, self.num_workers = batch_size, num_workers
        self.pin_memory, self.seed = pin_memory, seed
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def classes(self) -> list[str]:
        return list(self.source.classes)

    @property
    def num_classes(self) -> int:
        return len(self.source.classes)

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        """Build the three transformed splits once; later calls do nothing."""
        if self.train_set is not None:
            return
        train, val, test = self.source.splits(self.seed)
        eval_tf = build_transforms(self.preprocess, self.augmentation, train=False)
        self.train_set = Transformed(
            train, build_transforms(self.preprocess, self.augmentation, train=True)
        )
        self.val_set, self.test_set = Transformed(val, eval_tf), Transformed(test, eval_tf)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        sampler = EpochShuffle(len(self.train_set), self.seed, *rank_and_world(self.trainer))
        return self._loader("train_set", sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        self.setup()
        return self._loader(
            "val_set", sampler=Shard(len(self.val_set), *rank_and_world(self.trainer))
        )

    def test_dataloader(self) -> DataLoader:
        self.setup()
        sampler = Shard(len(self.test_set), *rank_and_world(self.trainer))
        return self._loader("test_set", sampler=sampler)

    def _loader(self, split: str, **kwargs: Any) -> DataLoader:
        self.setup()  # a no-op under a Trainer; lets scripts use the loaders directly
        return DataLoader(
            getattr(self, split),
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
            **kwargs,
        )
