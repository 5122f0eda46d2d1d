"""Checks of the data group: the image folder exists and holds classes, class counts fit,
a source's required keys are given, the cross-validation fold is one of the folds."""

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


def class_names(data: DictConfig) -> list[str] | None:
    """The class names the data config yields, when known without loading it (image folders)."""
    dataset = datasets.of(data)
    if dataset is None or not dataset.from_folders:
        return None
    return class_folders(class_tree(Path(str(data.source.root)).expanduser()))


def class_order(want: list[str], have: list[str], ckpt: Path) -> list[int] | None:
    """For each data class, the checkpoint's output that is it; None when already in order.

    The same names in another order are mapped; other names are refused: scoring them
    against the checkpoint's outputs by position would be silently wrong.
    """
    if have == want:
        return None
    if sorted(have) == sorted(want):
        return [want.index(name) for name in have]
    raise UserError(
        f"The data's classes differ from the checkpoint's. Checkpoint {ckpt} predicts "
        f"{want}; the data has {have} (not in the checkpoint: "
        f"{sorted(set(have) - set(want))}; missing: {sorted(set(want) - set(have))}). Fix: "
        "name the class folders as the checkpoint's classes, or fine-tune on these classes "
        f"first with model.weights={ckpt}."
    )


# eval.split: which images of data without a test/ folder eval.py scores
EVAL_SPLITS = ("test", "all")


def eval_split(data: DictConfig, split: str | None) -> None:
    """Data given to eval.py with no test split of its own needs eval.split to say what to score."""
    if split is not None and split not in EVAL_SPLITS:
        raise UserError(
            f"eval.split={split} is not one of {', '.join(EVAL_SPLITS)}. Fix: eval.split=test "
            "(the seeded test share carved from the folder) or eval.split=all (every image)."
        )
    dataset = datasets.of(data)
    if dataset is None or not dataset.from_folders or split is not None:
        return
    root = Path(str(data.source.root)).expanduser()
    if class_tree(root) == root or not (root / "test").is_dir():
        raise UserError(
            f"data.source.root={root} has no test/ folder, so eval.py would score a "
            f"{data.source.get('test_fraction', 0.15):.0%} share it carves itself, which may "
            "hold images a model trained on. Fix: eval.split=all to score every image (e.g. "
            "a folder the model never saw), eval.split=test to score that seeded carve "
            "on purpose, or add a test/ folder beside train/."
        )


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
