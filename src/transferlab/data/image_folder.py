"""Your own images, one subfolder per class (`data=image_folder`).

Which files are images and which folders are classes is decided torch-free in
`image_files`, which the config checks share; the listing comes from the folder's
`FileIndex` (data/file_index.py), built once and reused while the folder is unchanged;
how a file becomes a picture (orientation, colour, bit depth) is `data.decode`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset, Subset

from transferlab.data.decode import open_image, readable
from transferlab.data.file_index import FileIndex, index_path
from transferlab.data.folder_report import FolderReport, Listing, drop_undecodable, list_images
from transferlab.data.sources import Splits, stratified_split
from transferlab.data.subsets import cut
from transferlab.errors import UserError
from transferlab.image_files import class_folders, class_tree, no_images

_SPLIT_FOLDERS = {"val": ("val", "valid", "validation"), "test": ("test",)}


class ImageFiles(Dataset):
    """Image files decoded by `data.decode.open_image` into `mode` ("RGB" or "L").

    `signatures`: each file's "size|mtime" when known from an index (the feature cache's
    fingerprint then stats nothing); `draft_size`: JPEGs decode at reduced scale for it.
    """

    def __init__(
        self,
        files: Sequence[str | Path],
        labels: Sequence[int],
        mode: str,
        signatures: Sequence[str] | None = None,
        draft_size: int | None = None,
    ) -> None:
        self.files, self.labels, self.mode = list(files), list(labels), mode
        self.signatures = list(signatures) if signatures is not None else None
        self.draft_size = draft_size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        path = self.files[i]
        try:
            return open_image(path, self.mode, self.draft_size), self.labels[i]
        except Exception as e:  # PIL raises many types for a bad file; the path is what matters
            raise UserError(
                f"Cannot read image {path}: {e}. Fix: replace or delete that file, or set "
                "data.skip_corrupt=true to drop unreadable files at setup."
            ) from e

    def at_draft_size(self, size: int | None) -> ImageFiles:
        """The same files, JPEGs decoded at reduced scale for a `size` px shorter side."""
        return ImageFiles(self.files, self.labels, self.mode, self.signatures, size)

    def fingerprint_parts(self) -> Iterator[bytes]:
        """What identifies it for the feature cache without decoding: each file's path, size,
        modification time and label, and the JPEG draft size."""
        # The folder's file index already holds each file's size and mtime: no stat then.
        signatures = self.signatures or [_stat_signature(p) for p in self.files]
        for path, signature, label in zip(self.files, signatures, self.labels, strict=True):
            yield f"{path}|{signature}|{label}\n".encode()
        yield f"draft {self.draft_size}".encode()


def _stat_signature(path: str | Path) -> str:
    stat = Path(path).stat()
    return f"{stat.st_size}|{stat.st_mtime_ns}"


def with_draft_size(dataset: Dataset, size: int | None) -> Dataset:
    """`dataset` (ImageFiles, or a Subset of it) decoding JPEGs for `size`; others as they are."""
    if isinstance(dataset, Subset):
        return Subset(with_draft_size(dataset.dataset, size), dataset.indices)
    return dataset.at_draft_size(size) if isinstance(dataset, ImageFiles) else dataset


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
        index_dir: str | Path | None = None,
    ) -> None:
        if channels not in (1, 3):
            raise UserError(
                f"data.source.channels must be 1 (greyscale) or 3 (RGB), got {channels!r}."
            )
        self.root, self.channels = Path(root).expanduser(), channels
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.skip_corrupt = skip_corrupt
        self.limit, self.shots, self.eval_limit = limit, shots, eval_limit
        self.index_dir = index_dir

    @property
    def classes(self) -> list[str]:
        return class_folders(self._train_dir())

    def prepare(self) -> None:
        """Nothing to fetch; check the folder tree early so mistakes surface before training."""
        self.classes  # noqa: B018

    def splits(self, seed: int) -> Splits:
        classes = self.classes
        report = FolderReport(self.root, self.skip_corrupt)
        train = self._scan(self._train_dir(), classes, report)
        found = {k: self._split_dir(k) for k in _SPLIT_FOLDERS}
        given = {k: self._scan(d, classes, report) for k, d in found.items() if d is not None}
        report.log(len(classes))
        val_fraction = 0.0 if "val" in given else self.val_fraction
        test_fraction = 0.0 if "test" in given else self.test_fraction
        idx = stratified_split(train[1], val_fraction, test_fraction, seed)
        carved = [tuple([column[i] for i in ix] for column in train) for ix in idx]
        parts = [carved[0], given.get("val", carved[1]), given.get("test", carved[2])]
        mode = "RGB" if self.channels == 3 else "L"
        splits = tuple(ImageFiles(files, labels, mode, signs) for files, labels, signs in parts)
        return cut(splits, self.limit, self.shots, seed, self.eval_limit)

    def train_files(self) -> tuple[list[str], list[int]]:
        """The training tree's image files and labels as listed (through the file index)."""
        report = FolderReport(self.root, self.skip_corrupt)
        files, labels, _ = self._scan(self._train_dir(), self.classes, report)
        return files, labels

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

    def _scan(
        self, folder: Path, classes: list[str], report: FolderReport
    ) -> tuple[list[str], list[int], list[str]]:
        """Files, labels and size|mtime signatures of one class tree, from its index."""
        if (seen := class_folders(folder)) != classes:
            raise UserError(
                f"The class folders of {folder} ({seen}) differ from those of "
                f"{self._train_dir()} ({classes}). Fix: give every split folder the same "
                "class subfolders."
            )
        listing = self._listing(FileIndex.of(folder, self.index_dir), classes, report)
        report.add(listing)
        files, labels, signatures = [], [], []
        prefix = f"{Path(folder).resolve()}/"
        for label, (name, rels) in enumerate(zip(classes, listing.rels, strict=True)):
            if not rels:
                raise no_images(folder / name)
            files += [prefix + rel for rel in rels]
            signatures += listing.signatures[label]
            labels += [label] * len(rels)
        return files, labels, signatures

    def _listing(self, index: FileIndex, classes: list[str], report: FolderReport) -> Listing:
        """The tree's images per class: derived from its index once, then read back."""
        key = json.dumps(classes, ensure_ascii=False)
        if not self.skip_corrupt and key in index.listings:
            return Listing.from_stored(index.listings[key])
        listing, records = list_images(index, classes)
        if self.skip_corrupt:
            where = index_path(index.tree, self.index_dir) if self.index_dir else None
            report.decoded += index.check_decodes([f for r in records for f in r], readable, where)
            return drop_undecodable(listing, records)
        if self.index_dir is not None:
            index.listings[key] = listing.stored()
            index.save(index_path(index.tree, self.index_dir))
        return listing


class WholeFolderAsTest:
    """eval.py eval.split=all: every image of an image folder is scored, none carved off."""

    def __init__(self, source: ImageFolderSource) -> None:
        self.source = source

    def __getattr__(self, name: str):
        return getattr(self.source, name)  # classes, channels, prepare, ...

    def splits(self, seed: int) -> Splits:
        src = self.source
        files, labels = src.train_files()
        mode = "RGB" if src.channels == 3 else "L"
        empty = ImageFiles([], [], mode)
        return empty, empty, ImageFiles(files, labels, mode)
