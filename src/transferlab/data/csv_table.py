"""Images listed in a CSV file (`data=csv`): a path column, a label column, maybe a split.

fastai's `from_csv` and HF's imagefolder `metadata.csv` hold data this way. Paths are
relative to the CSV's folder (absolute ones are kept); the split column, when named, says
train, val (valid, validation) or test per row, and a split it never names is carved from
train, stratified and seeded like an image folder's.
"""

from __future__ import annotations

import csv
from pathlib import Path

from transferlab.data.image_folder import ImageFiles
from transferlab.data.sources import Splits, split_names, stratified_split
from transferlab.data.subsets import cut
from transferlab.errors import UserError


class CsvSource:
    """Image files and their labels from the rows of `file`; classes are the sorted labels."""

    image_size = None

    def __init__(
        self,
        file: str | Path,
        path_column: str = "path",
        label_column: str = "label",
        split_column: str | None = None,
        val_fraction: float = 0.15,
        test_fraction: float = 0.15,
        channels: int = 3,
        limit: int | None = None,
        shots: int | None = None,
        eval_limit: int | None = None,
    ) -> None:
        self.file = Path(file).expanduser()
        self.columns = {"path": path_column, "label": label_column, "split": split_column}
        self.val_fraction, self.test_fraction = val_fraction, test_fraction
        self.channels = channels
        self.limit, self.shots, self.eval_limit = limit, shots, eval_limit
        self._rows: list[dict[str, str]] | None = None

    @property
    def classes(self) -> list[str]:
        labels = {row[self.columns["label"]] for row in self.rows()}
        numeric = all(label.lstrip("-").isdigit() for label in labels)
        return sorted(labels, key=int if numeric else str)

    def prepare(self) -> None:
        """Read the table now so a wrong column or missing file surfaces before training."""
        missing = [path for path, _, _ in self._entries() if not path.is_file()]
        if missing:
            raise UserError(
                f"{len(missing)} image(s) listed in {self.file} do not exist, e.g. {missing[0]} "
                f"(paths are relative to the CSV's folder). Fix: correct the "
                f"{self.columns['path']!r} column or remove those rows."
            )

    def rows(self) -> list[dict[str, str]]:
        """The CSV's rows, read once, with every named column checked."""
        if self._rows is None:
            self._rows = _read(self.file, [c for c in self.columns.values() if c])
        return self._rows

    def splits(self, seed: int) -> Splits:
        by_split: dict[str, tuple[list[Path], list[int]]] = {}
        for path, label, split in self._entries():
            files, labels = by_split.setdefault(split, ([], []))
            files.append(path)
            labels.append(label)
        train = by_split.get("train")
        if train is None:
            raise UserError(
                f"No row of {self.file} is in the train split (column "
                f"{self.columns['split']!r}). Fix: mark training rows 'train'."
            )
        val_fraction = 0.0 if "val" in by_split else self.val_fraction
        test_fraction = 0.0 if "test" in by_split else self.test_fraction
        idx = stratified_split(train[1], val_fraction, test_fraction, seed)
        carved = [([train[0][i] for i in ix], [train[1][i] for i in ix]) for ix in idx]
        parts = [carved[0], by_split.get("val", carved[1]), by_split.get("test", carved[2])]
        mode = "RGB" if self.channels == 3 else "L"
        splits = tuple(ImageFiles([str(f) for f in files], labels, mode) for files, labels in parts)
        return cut(splits, self.limit, self.shots, seed, self.eval_limit)

    def _entries(self) -> list[tuple[Path, int, str]]:
        index = {name: i for i, name in enumerate(self.classes)}
        folder, columns = self.file.parent, self.columns
        names = split_names(self.file, columns["split"])
        return [
            (
                folder / row[columns["path"]],  # an absolute path stays as it is
                index[row[columns["label"]]],
                names(row[columns["split"]]) if columns["split"] else "train",
            )
            for row in self.rows()
        ]


def _read(file: Path, columns: list[str]) -> list[dict[str, str]]:
    if not file.is_file():
        raise UserError(
            f"data.source.file={file} does not exist. Fix: point it at a CSV with a header "
            "row and one row per image (columns path,label, e.g. cats/1.jpg,cat)."
        )
    with open(file, newline="", encoding="utf-8-sig") as f:  # -sig: Excel's byte-order mark
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if absent := [c for c in columns if c not in header]:
            raise UserError(
                f"{file} has no column {absent[0]!r} (its header: {', '.join(header)}). Fix: "
                "name the columns with data.source.path_column=, data.source.label_column= "
                "and data.source.split_column=."
            )
        rows = [{k: (v or "").strip() for k, v in row.items() if k} for row in reader]
    if not rows:
        raise UserError(f"{file} has a header but no rows. Fix: one row per image.")
    return rows
