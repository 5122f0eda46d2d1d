"""The datasets transferlab knows by name, one row each: what its config instantiates and
what is known about it before anything loads (native size, the size for pretrained
networks, channels, classes).

Every part that depends on the dataset asks this table (the input size, the config checks,
the torchvision sources, the flip rule), so a dataset is one row here plus its
`conf/data/<name>.yaml`. Torch-free: the config checks read it before torch loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DIGITS = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
CIFAR10 = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TORCHVISION_SOURCE = "transferlab.data.torchvision_sets.TorchvisionSource"
IMAGE_FOLDER_SOURCE = "transferlab.data.image_folder.ImageFolderSource"


@dataclass(frozen=True)
class Dataset:
    name: str
    # The source class its conf/data YAML instantiates (`data.source._target_`); the
    # torchvision sets share one, told apart by `data.source.name`.
    target: str
    native_size: int | None  # square side of its images; None: files of varying size
    channels: int | None  # None: the source's own `channels` option
    class_count: int | None  # None: counted from the folders
    classes: tuple[str, ...] | None = None  # None: the library's names, or the folders'
    # For a network that starts from a library's weights: tiny images upscaled to this side
    # rather than to the weights' own (224 px): ImageNet filters work at 64 px, at CPU speed.
    pretrained_size: int | None = None

    @property
    def from_folders(self) -> bool:
        """Its classes are the subfolders of a folder the user gives."""
        return self.class_count is None

    @property
    def flip_safe(self) -> bool:
        return flip_safe(self.classes)


DATASETS = {
    d.name: d
    for d in (
        Dataset("digits", "transferlab.data.digits.Digits", 8, 1, 10, DIGITS, pretrained_size=64),
        Dataset("mnist", "transferlab.data.packaged.Mnist", 28, 1, 10, DIGITS, pretrained_size=64),
        Dataset("fashion_mnist", TORCHVISION_SOURCE, 28, 1, 10),
        Dataset("cifar10", TORCHVISION_SOURCE, 32, 3, 10, CIFAR10),
        Dataset("svhn", TORCHVISION_SOURCE, 32, 3, 10, DIGITS),
        Dataset("flowers102", TORCHVISION_SOURCE, None, 3, 102),
        Dataset(
            "image_folder", "transferlab.data.image_folder.ImageFolderSource", None, None, None
        ),
    )
}


def _class_name(target: str) -> str:
    # Matched by class name: checkpoints keep older module paths of the same source.
    return target.rsplit(".", 1)[-1]


def of(data: Mapping[str, Any]) -> Dataset | None:
    """The row a `data` config reads, or None for a source the table does not know (any
    other torchvision set by `data.source.name`, a csv or Hugging Face source)."""
    source = data.get("source") or {}
    kind = _class_name(str(source.get("_target_", "")))
    if kind == _class_name(TORCHVISION_SOURCE):
        return DATASETS.get(str(source.get("name")))
    return next((d for d in DATASETS.values() if _class_name(d.target) == kind), None)


def flip_safe(classes: Sequence[str] | None) -> bool:
    """Whether a mirrored image is still its class: not for the ten digits (a mirrored 2
    or 5 reads as another glyph)."""
    return classes is None or tuple(classes) != DIGITS
