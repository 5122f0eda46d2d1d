"""Datasets (sources), transforms and augmentation, and the DataModule."""

from transferlab.data.datamodule import ImageDataModule
from transferlab.data.sources import Digits, ImageFolderSource, ImageSource, TorchvisionSource
from transferlab.data.transforms import Preprocess, augmentation_active, build_transforms

__all__ = [
    "Digits",
    "ImageDataModule",
    "ImageFolderSource",
    "ImageSource",
    "Preprocess",
    "TorchvisionSource",
    "augmentation_active",
    "build_transforms",
]
