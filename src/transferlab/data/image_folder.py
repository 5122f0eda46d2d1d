"""Your own images, one subfolder per class (`data=image_folder`).

Which files are images and which folders are classes is decided torch-free in
`image_files`, which the config checks share.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from transferlab.data.sources import Splits, stratified_split
from transferlab.data.subsets import cut
from transferlab.errors import UserError
from transferlab.image_files import class_folders, class_tree, is_image, no_images

log = logging.getLogger(__name__)

_SPLIT_FOLDERS = {"val": ("val", "valid", "validation"), "test": ("test",)}


class ImageFiles(Dataset):
    """Image files read with PIL and converted to `mode` ("RGB" or "L")."""

    def __init__(self, files: Sequence[Path], labels: Sequence[int], mode: str) -> None:
        self.files, self.labels, self.mode = list(files), list(labels), mode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        path = self.files[i]
        try:
            with Image.open(path) as img:
                return img.convert(self.mode), self.labels[i]
        except Exception as e:  # PIL raises many types for a bad file; the path is what matters
            raise UserError(
                f"Cannot read image {path}: {e}. Fix: replace or delete that file, or set "
                "data.skip_corrupt=true to drop unreadable files at setup."
            ) from e


class ImageFolderSource:
    """Your own images, one subfolder per class.

    Either `root/<class>/...` split by the fractions, or `root/train`, `root/val` and
    `root/test` (a missing val or test is carved from train), stratified and seeded.
    """

    image_size = None

    def __init__(
        self,
        root: str | Path,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        channels: int = 3,
        skip_corrupt: bool = False,
        limit: int | None = None,
        shots: int | None = None,
        eval_limit: int | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise UserError(
                f"data.source.channels must be 1 (greyscale) or 3 (RGB), got {channels!r}."
            )
        self.root, self.channels = Path(root).expanduser(), channels
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.skip_corrupt = skip_corrupt
        self.limit, self.shots, self.eval_limit = limit, shots, eval_limit

    @property
    def classes(self) -> list[str]:
        return class_folders(self._train_dir())

    def prepare(self) -> None:
        """Nothing to fetch; check the folder tree early so mistakes surface before training."""
        self.classes  # noqa: B018

    def splits(self, seed: int) -> Splits:
        classes = self.classes
        train = self._scan(self._train_dir(), classes)
        found = {k: self._split_dir(k) for k in _SPLIT_FOLDERS}
        given = {k: self._scan(d, classes) for k, d in found.items() if d is not None}
        val_fraction = 0.0 if "val" in given else self.val_fraction
        test_fraction = 0.0 if "test" in given else self.test_fraction
        idx = stratified_split(train[1], val_fraction, test_fraction, seed)
        carved = [([train[0][i] for i in ix], [train[1][i] for i in ix]) for ix in idx]
        parts = [carved[0], given.get("val", carved[1]), given.get("test", carved[2])]
        mode = "RGB" if self.channels == 3 else "L"
        splits = tuple(ImageFiles(files, labels, mode) for files, labels in parts)
        return cut(splits, self.limit, self.shots, seed, self.eval_limit)

    def _train_dir(self) -> Path:
        if not self.root.is_dir():
            raise UserError(
                f"Image folder data.source.root={self.root} does not exist. Fix: point it at a "
                "folder with one subfolder of images per class (or train/, val/, test/ ones)."
            )
        return class_tree(self.root)

    def _split_dir(self, split: str) -> Path | None:
        if self._train_dir() == self.root:
            return None
        return next((p for n in _SPLIT_FOLDERS[split] if (p := self.root / n).is_dir()), None)

    def _scan(self, folder: Path, classes: list[str]) -> tuple[list[Path], list[int]]:
        if (seen := class_folders(folder)) != classes:
            raise UserError(
                f"The class folders of {folder} ({seen}) differ from those of "
                f"{self._train_dir()} ({classes}). Fix: give every split folder the same "
                "class subfolders."
            )
        files, labels = [], []
        for label, name in enumerate(classes):
            found = _image_files(folder / name)
            if not found:
                raise no_images(folder / name)
            files += found
            labels += [label] * len(found)
        return self._drop_corrupt(files, labels) if self.skip_corrupt else (files, labels)

    def _drop_corrupt(self, files: list[Path], labels: list[int]) -> tuple[list[Path], list[int]]:
        ok = [_readable(f) for f in files]
        if bad := [f for f, good in zip(files, ok, strict=True) if not good]:
            log.warning("skip_corrupt: dropped %d unreadable image(s), e.g. %s", len(bad), bad[0])
        keep = [i for i, good in enumerate(ok) if good]
        return [files[i] for i in keep], [labels[i] for i in keep]


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if is_image(p) and p.is_file())


def _readable(path: Path) -> bool:
    try:
        with Image.open(path) as img:
            img.draft(img.mode, (1, 1))  # JPEGs decode at 1/8 scale: a full pass, far cheaper
            img.load()
        return True
    except Exception:  # any failure means the training loop could not read it either
        return False
