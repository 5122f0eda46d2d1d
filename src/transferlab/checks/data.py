"""Checks of the data group: the image folder exists and holds classes, class counts fit,
a source's required keys are given."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from transferlab import datasets
from transferlab.errors import UserError
from transferlab.image_files import class_folders, class_tree, is_image, no_images


def class_count(data: DictConfig) -> int | None:
    """How many classes the data config yields, when that is known without loading it."""
    dataset = datasets.of(data)
    if dataset is None:
        return None
    if dataset.class_count is None:  # one class per folder
        return len(class_folders(class_tree(Path(str(data.source.root)).expanduser())))
    return dataset.class_count


def image_folder(data: DictConfig) -> None:
    """A class-per-subfolder tree must exist and hold at least two classes."""
    source = data.get("source") or {}
    dataset = datasets.of(data)
    if dataset is None or not dataset.from_folders:
        return
    if OmegaConf.is_missing(source, "root"):
        raise UserError(
            "data=image_folder needs the folder of images: add data.source.root=<folder> "
            "(one subfolder per class, or train/, val/, test/ splits of that)."
        )
    root = Path(str(source.get("root"))).expanduser()
    if not root.is_dir():
        raise UserError(
            f"data.source.root={source.get('root')} is not a folder. Point it at a folder with "
            f"one subfolder per class (or train/, val/, test/ splits of that), e.g. "
            f"data.source.root=/data/flowers."
        )
    tree = class_tree(root)
    classes = class_folders(tree)
    for name in classes:
        if not any(is_image(p) for p in (tree / name).rglob("*")):  # stops at the first
            raise no_images(tree / name)


# What a source's required key (??? in its config) is, for the message that asks for it.
_REQUIRED = {
    "file": "the CSV of images, e.g. data.source.file=/data/pets/labels.csv",
    "path": "a dataset saved with save_to_disk, or a Hub name in the local cache, e.g. "
    "data.source.path=/data/beans",
    "name": "a torchvision classification set, e.g. data.source.name=CIFAR100",
}
BALANCE = ("none", "weights", "sampler")


def source_keys(data: DictConfig) -> None:
    """Every key a source needs has a value; `data.balance` is one of BALANCE."""
    source = data.get("source") or {}
    for key, what in _REQUIRED.items():
        if OmegaConf.is_config(source) and OmegaConf.is_missing(source, key):
            raise UserError(
                f"This data config needs data.source.{key}, which has no default. Fix: give {what}."
            )
    if (balance := data.get("balance", "none")) not in BALANCE:
        raise UserError(
            f"data.balance={balance!r} is not one of {', '.join(BALANCE)}. Fix: "
            "data.balance=weights (class-weighted loss) or data.balance=sampler (each class "
            "drawn equally often), or none."
        )


def other_class_count(want: int, data: str, have: int, ckpt: Path) -> UserError:
    return UserError(
        f"The checkpoint predicts {want} classes but data {data} has {have}. Evaluate on data "
        f"with the same classes, or fine-tune on it first with model.weights={ckpt}."
    )
