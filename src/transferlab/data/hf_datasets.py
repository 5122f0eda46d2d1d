"""A Hugging Face `datasets` image classification set (`data=hf`), from disk or the cache.

`path` is a folder written by `save_to_disk` or a Hub name already in the local cache;
nothing is downloaded unless `download=true`, as for torchvision sets. The set's own
splits are used (train, validation or val, test); one it lacks is carved from train,
stratified and seeded. Images stay in the memory-mapped Arrow files until a worker
decodes one, so a set larger than RAM trains as it is.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from PIL import Image
from torch.utils.data import Dataset

from transferlab import compat
from transferlab.data.sources import SPLIT_NAMES, Splits, stratified_split
from transferlab.data.subsets import cut
from transferlab.errors import UserError

MISSING = (
    "data=hf needs the Hugging Face datasets package, which is not installed. Fix: "
    "pip install 'transferlab[hf]' (or pip install datasets), then run the same command again."
)


def datasets_module() -> Any:
    try:
        import datasets
    except ImportError as e:
        raise UserError(MISSING) from e
    return datasets


@contextlib.contextmanager
def _offline(allowed: bool) -> Iterator[None]:
    """Hub look-ups fail at once unless a download is asked for (else ~25 s of retries)."""
    if allowed:
        yield
        return
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    os.environ.update(dict.fromkeys(saved, "1"))  # read when datasets is first imported
    datasets = datasets_module()
    import huggingface_hub.constants as hub

    flags = [(datasets.config, "HF_HUB_OFFLINE"), (hub, "HF_HUB_OFFLINE")]
    before = [getattr(obj, name) for obj, name in flags]
    for obj, name in flags:  # already imported: its constants were read then
        setattr(obj, name, True)
    try:
        yield
    finally:
        for (obj, name), value in zip(flags, before, strict=True):
            setattr(obj, name, value)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class HFImages(Dataset):
    """(PIL image, label) items of an HF dataset; `labels` read without decoding images."""

    def __init__(self, table: Any, image_column: str, labels: list[int], mode: str) -> None:
        self.table, self.image_column = table, image_column
        self.labels, self.mode = labels, mode

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"HFImages({compat.hf_fingerprint(self.table)}, {self.mode})"

    def fingerprint_parts(self) -> Iterator[bytes]:
        """What identifies it for the feature cache: the Arrow table's own fingerprint."""
        yield f"{type(self).__qualname__}|{len(self)}|{self!r}".encode()

    def __getitem__(self, i: int) -> tuple[Image.Image, int]:
        image = self.table[int(i)][self.image_column]
        if not isinstance(image, Image.Image):  # a path or bytes column
            image = Image.open(image if isinstance(image, str) else image["path"])
        return image.convert(self.mode), self.labels[i]


class HuggingFaceSource:
    """An HF dataset's image and label columns, with its own splits where it has them."""

    image_size = None

    def __init__(
        self,
        path: str,
        name: str | None = None,
        image_column: str = "image",
        label_column: str = "label",
        download: bool = False,
        cache_dir: str | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        channels: int = 3,
        limit: int | None = None,
        shots: int | None = None,
        eval_limit: int | None = None,
    ) -> None:
        self.path, self.name = str(path), name
        self.image_column, self.label_column = image_column, label_column
        self.download, self.cache_dir = download, cache_dir
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.channels = channels
        self.limit, self.shots, self.eval_limit = limit, shots, eval_limit
        self._splits: dict[str, Any] | None = None

    @property
    def classes(self) -> list[str]:
        feature = self.tables()["train"].features[self.label_column]
        if names := getattr(feature, "names", None):  # a ClassLabel
            return [str(n) for n in names]
        return sorted({str(v) for v in self._column("train")})

    def prepare(self) -> None:
        self.tables()

    def tables(self) -> dict[str, Any]:
        """Our split name -> the HF Dataset, loaded once; columns checked."""
        if self._splits is None:
            self._splits = self._load()
        return self._splits

    def splits(self, seed: int) -> Splits:
        tables, classes = self.tables(), self.classes
        index = {name: i for i, name in enumerate(classes)}
        mode = "RGB" if self.channels == 3 else "L"

        def images(split: str, rows: Any = None) -> HFImages:
            table = tables[split] if rows is None else tables[split].select(rows)
            labels = [index[str(v)] for v in self._column(split, table)]
            return HFImages(table, self.image_column, labels, mode)

        train = images("train")
        val_fraction = 0.0 if "val" in tables else self.val_fraction
        test_fraction = 0.0 if "test" in tables else self.test_fraction
        idx = stratified_split(train.labels, val_fraction, test_fraction, seed)
        carved = [images("train", ix.tolist()) for ix in idx]
        parts = (
            carved[0],
            images("val") if "val" in tables else carved[1],
            images("test") if "test" in tables else carved[2],
        )
        return cut(parts, self.limit, self.shots, seed, self.eval_limit)

    def _column(self, split: str, table: Any = None) -> list[Any]:
        table = self.tables()[split] if table is None else table
        feature = table.features[self.label_column]
        values = list(table[self.label_column])
        names = getattr(feature, "names", None)
        return [names[v] for v in values] if names else values

    def _load(self) -> dict[str, Any]:
        datasets = datasets_module()
        folder = Path(self.path).expanduser()
        with _offline(self.download):
            try:
                if folder.is_dir() and any(folder.glob("*.json")):
                    loaded = datasets.load_from_disk(str(folder))
                else:
                    loaded = datasets.load_dataset(self.path, self.name, cache_dir=self.cache_dir)
            except (OSError, ValueError, FileNotFoundError) as e:
                raise UserError(self._missing(e)) from e
        if not isinstance(loaded, datasets.DatasetDict):
            loaded = datasets.DatasetDict({"train": loaded})
        tables = {SPLIT_NAMES.get(k.lower()): v for k, v in loaded.items()}
        tables.pop(None, None)  # e.g. "unlabeled": not a split we train or score on
        if "train" not in tables:
            raise UserError(
                f"data.source.path={self.path} has no train split (its splits: "
                f"{', '.join(loaded)}). Fix: save the training images as 'train'."
            )
        for column in (self.image_column, self.label_column):
            if column not in tables["train"].column_names:
                raise UserError(
                    f"data.source.path={self.path} has no column {column!r} (its columns: "
                    f"{', '.join(tables['train'].column_names)}). Fix: name them with "
                    "data.source.image_column= and data.source.label_column=."
                )
        return tables

    def _missing(self, error: Exception) -> str:
        why = " ".join(str(error).split())
        return (
            f"Hugging Face dataset data.source.path={self.path} could not be loaded ({why}). "
            "Fix: point data.source.path at a folder written by save_to_disk, or at a Hub "
            "name in the local cache; data.source.download=true fetches a Hub dataset "
            "(needs internet)."
        )
