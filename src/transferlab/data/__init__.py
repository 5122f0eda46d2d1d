"""Datasets (sources), transforms and augmentation, and the DataModule."""

from transferlab.data.datamodule import ImageDataModule
from transferlab.data.sources import Digits, ImageFolderSource, ImageSource, TorchvisionSource
from transferlab.data.transforms import (
    BatchTransform,
    Preprocess,
    augmentation_active,
    item_transform,
)

__all__ = [
    "BatchTransform",
    "Digits",
    "ImageDataModule",
    "ImageFolderSource",
    "ImageSource",
    "Preprocess",
    "TorchvisionSource",
    "augmentation_active",
    "item_transform",
]
