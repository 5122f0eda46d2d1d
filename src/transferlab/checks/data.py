"""Checks of the data group: the image folder exists and holds classes, class counts fit,
the cross-validation fold is one of the folds."""

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


def other_class_count(want: int, data: str, have: int, ckpt: Path) -> UserError:
    return UserError(
        f"The checkpoint predicts {want} classes but data {data} has {have}. Evaluate on data "
        f"with the same classes, or fine-tune on it first with model.weights={ckpt}."
    )


def folds(data: DictConfig) -> None:
    """`data.folds` is at least 2 and `data.fold` one of 0..folds-1 (or null)."""
    k, fold = data.get("folds", 5), data.get("fold")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise UserError(
            f"data.folds={k!r} must be a whole number of at least 2 (the k of a k-fold "
            "cross-validation). Fix: e.g. data.folds=5."
        )
    whole = isinstance(fold, int) and not isinstance(fold, bool)
    if fold is not None and not (whole and 0 <= fold < k):
        raise UserError(
            f"data.fold={fold!r} is not a fold of data.folds={k}: folds are numbered 0 to "
            f"{k - 1}. Fix: data.fold=0 (or a sweep: -m data.fold="
            f"{','.join(str(i) for i in range(k))}), or data.fold=null for the normal split."
        )
