"""The LightningDataModule: a source's three splits, batched, then prepared on the device.

Loaders yield uint8 batches; `on_after_batch_transfer` resizes, normalises and augments
them where training runs (the GPU when there is one). See data/transforms.py.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping
from typing import Any

import torch
from lightning import LightningDataModule
from torch.utils.data import DataLoader, Dataset, Sampler

from transferlab.checks.augmentation import check_augmentation
from transferlab.data import balance as balancing
from transferlab.data.folds import cross_validation_split
from transferlab.data.image_folder import with_draft_size
from transferlab.data.memory import collate, in_memory
from transferlab.data.sources import ImageSource
from transferlab.data.transforms import (
    BatchTransform,
    Preprocess,
    batch_mix,
    item_transform,
    random_ops,
)
from transferlab.errors import UserError

log = logging.getLogger("transferlab")


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
    so no rank waits at a gradient all-reduce that others never reach. With `weights`
    (data.balance=sampler) the epoch is `size` draws with replacement in those proportions.
    """

    def __init__(
        self,
        size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        weights: torch.Tensor | None = None,
    ) -> None:
        self.size, self.seed, self.epoch = size, seed, 0
        self.rank, self.world_size, self.weights = rank, world_size, weights

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.size // self.world_size)

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.weights is None:
            order = torch.randperm(self.size, generator=generator).tolist()
        else:
            order = torch.multinomial(self.weights, self.size, True, generator=generator).tolist()
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
    """Train (augmented, shuffled per (seed, epoch)), val and test loaders of a source.

    In-memory sets are sliced a batch at a time in this process; image files are decoded
    and resized by `num_workers` persistent worker processes ("auto": the cores of this
    machine shared among its ranks, one per rank left to the training step). JPEGs decode at
    reduced scale when the target size allows (`jpeg_draft`). Either way the device stage
    (`BatchTransform`) finishes every batch.
    """

    def __init__(
        self,
        source: ImageSource,
        preprocess: Preprocess,
        augmentation: Mapping[str, Any] | None = None,
        batch_size: int = 64,
        num_workers: int | str = "auto",
        pin_memory: bool | str = "auto",
        seed: int = 42,
        balance: str = "none",
        folds: int = 5,
        fold: int | None = None,
        jpeg_draft: bool = True,
    ) -> None:
        super().__init__()
        self.balance = balancing.check(balance)
        self.source, self.preprocess = source, preprocess
        self.augmentation = dict(augmentation) if augmentation else None
        self.batch_size, self.seed = batch_size, seed
        self.folds, self.fold = folds, fold  # data/folds.py: fold k validates, the rest train
        self.num_workers = _workers(num_workers)
        self.workers_setting, self.jpeg_draft = num_workers, jpeg_draft
        self.pin_memory = torch.cuda.is_available() if pin_memory == "auto" else bool(pin_memory)
        self.train_set: Dataset | None = None
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.in_memory = False

    @property
    def classes(self) -> list[str]:
        return list(self.source.classes)

    @property
    def num_classes(self) -> int:
        return len(self.source.classes)

    def prepare_data(self) -> None:
        self.source.prepare()

    def setup(self, stage: str | None = None) -> None:
        """Build the three splits and both batch stages once; later calls do nothing."""
        if self.train_set is not None:
            return
        pre = self.preprocess
        opts = check_augmentation(self.augmentation, self.classes)
        if self.augmentation and self.augmentation.get("hflip") == "auto" and not opts["hflip"]:
            log.info("augmentation.hflip=auto: no flips, the classes are digits.")
        splits = cross_validation_split(
            self.source.splits(self.seed), self.folds, self.fold, self.seed
        )
        tensors = [in_memory(split) for split in splits]
        self.in_memory = all(t is not None for t in tensors)
        if self.in_memory:
            self.train_set, self.val_set, self.test_set = tensors
            random = random_ops(opts, None, pre.interpolation)
        else:
            train, val, test = splits
            if self.jpeg_draft:
                train = with_draft_size(train, _train_decode_size(pre.image_size, opts))
                val, test = (with_draft_size(split, pre.image_size) for split in (val, test))
            self.train_set = Transformed(train, item_transform(pre, opts, train=True))
            items = item_transform(pre, opts, train=False)
            self.val_set, self.test_set = Transformed(val, items), Transformed(test, items)
            random = []  # drawn in the workers, per image
        self.train_batch = BatchTransform(pre, random, opts["random_erasing"])
        self.eval_batch = BatchTransform(pre, [])
        self.mix = batch_mix(opts, self.num_classes)

    def prepare_batch(
        self, images: torch.Tensor, labels: torch.Tensor, train: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A loader's uint8 batch as the model receives it (labels soft under MixUp/CutMix)."""
        self.setup()
        if not train:
            return self.eval_batch(images), labels
        x = self.train_batch(images)
        return self.mix(x, labels) if self.mix is not None else (x, labels)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        images, labels = batch
        train = self.trainer is not None and self.trainer.training
        return self.prepare_batch(images, labels, train)

    def train_labels(self) -> torch.Tensor:
        """The training split's labels, in order (class weights and the balanced sampler)."""
        self.setup()
        return balancing.split_labels(self.train_set)

    def train_dataloader(self) -> DataLoader:
        self.setup()
        weights = None
        if self.balance == "sampler":
            weights = balancing.draw_weights(self.train_labels())
        sampler = EpochShuffle(
            len(self.train_set), self.seed, *rank_and_world(self.trainer), weights=weights
        )
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

    def loader(self, dataset: Dataset, batch_size: int, **kwargs: Any) -> DataLoader:
        """uint8 batches of `dataset` (one of this module's splits), in order unless a sampler."""
        self.setup()
        # Slicing a tensor takes microseconds: worker processes would only add IPC.
        ranks_here = self.trainer.num_devices if self.trainer is not None else 1
        workers = 0 if self.in_memory else _workers(self.workers_setting, ranks_here)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            num_workers=workers,
            pin_memory=self.pin_memory,
            persistent_workers=workers > 0,
            collate_fn=collate,
            drop_last=False,
            **kwargs,
        )

    def _loader(self, split: str, **kwargs: Any) -> DataLoader:
        return self.loader(getattr(self, split), self.batch_size, **kwargs)


def _train_decode_size(size: int | None, opts: Mapping[str, Any]) -> int | None:
    """The shorter side a training image needs before its random crop: a crop of area share
    `s` keeps the target's sharpness only when taken from a side of size / sqrt(s)."""
    if size is None or opts["crop_scale"] is None:
        return size
    return math.ceil(size / math.sqrt(min(opts["crop_scale"])))


def _workers(value: int | str, ranks_here: int = 1) -> int:
    if value == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        # The machine's cores shared among its ranks, one per rank left to the training step.
        return max(1, (cores or 1) // max(1, ranks_here) - 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise UserError(
            f"data.num_workers must be a whole number >= 0 or auto, got {value!r}. "
            "Fix: data.num_workers=auto (one worker per core but one), or 0 for none."
        )
    return value
