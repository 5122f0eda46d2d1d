"""Datasets (sources), transforms and augmentation, and the DataModule.

Names load on first use (PEP 562), so the torch-free parts (`image_files`) import without
torch: the config checks use them before torch loads.
"""

from __future__ import annotations

import importlib

_HOMES = {
    "ImageDataModule": "datamodule",
    "Digits": "digits",
    "ImageFolderSource": "image_folder",
    "ImageSource": "sources",
    "TorchvisionSource": "torchvision_sets",
    "BatchTransform": "transforms",
    "Preprocess": "transforms",
    "item_transform": "transforms",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
