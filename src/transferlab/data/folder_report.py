"""Which files of a class tree are images, and one short block in the run log saying what
was kept, what was skipped, why, and how to change it.

Torch-free. Hidden and system files (.DS_Store, `._` AppleDouble twins, Thumbs.db, files in
hidden folders) and files whose extension is not an image's are never images; 0-byte files
cannot be; unreadable ones are dropped only under data.skip_corrupt=true. Images in nested
subfolders of a class belong to that class.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from transferlab.data.file_index import File, FileIndex
from transferlab.image_files import IMAGE_SUFFIXES, is_system

log = logging.getLogger("transferlab")

_REASONS = {
    "system": "hidden or system file(s) (.DS_Store, ._ AppleDouble, Thumbs.db): never images",
    "not_image": "file(s) that are not images by extension ({suffixes}); images are "
    + " ".join(IMAGE_SUFFIXES)
    + " in any case",
    "empty": "empty (0-byte) file(s)",
    "outside": "file(s) beside the class folders, in no class",
    "unreadable": "unreadable image(s) (data.skip_corrupt=true)",
}


@dataclass
class Listing:
    """The images of one class tree, per class (paths relative to the tree, "size|mtime"
    signatures), and what was skipped: reason -> [count, first example]."""

    rels: list[list[str]]
    signatures: list[list[str]]
    skipped: dict[str, list] = field(default_factory=dict)
    other_suffixes: dict[str, int] = field(default_factory=dict)
    nested: int = 0

    def skip(self, reason: str, rel: str, count: int = 1) -> None:
        self.skipped.setdefault(reason, [0, rel])[0] += count

    def stored(self) -> dict:
        """A form that the index's JSON reads back fast: one string per class, not a list."""
        flat = asdict(self)
        flat["rels"] = ["\n".join(r) for r in self.rels]
        flat["signatures"] = ["\n".join(s) for s in self.signatures]
        return flat

    @classmethod
    def from_stored(cls, flat: dict) -> Listing:
        split = [[s.split("\n") if s else [] for s in flat[k]] for k in ("rels", "signatures")]
        return cls(*split, flat["skipped"], flat["other_suffixes"], flat["nested"])


def list_images(index: FileIndex, classes: list[str]) -> tuple[Listing, list[list[File]]]:
    """The tree's images per class (and the index's records of them), noting what was
    skipped; files beside the class folders belong to no class."""
    listing, records = Listing([], []), []
    suffixes: Counter[str] = Counter()
    for name in index.dirs.get("", {}).get("names", []):
        listing.skip("system" if is_system(name) else "outside", name)
    for name in classes:
        found: list[File] = []
        for file in index.files(name):
            rel, directory, i = file
            parts = rel.split("/")
            if any(is_system(part) for part in parts):
                listing.skip("system", rel)
            elif (suffix := os.path.splitext(parts[-1])[1].lower()) not in IMAGE_SUFFIXES:
                suffixes[suffix or "(none)"] += 1
                listing.skip("not_image", rel)
            elif directory["sizes"][i] == 0:
                listing.skip("empty", rel)
            else:
                found.append(file)
                listing.nested += len(parts) > 2
        records.append(found)
        listing.rels.append([rel for rel, _, _ in found])
        listing.signatures.append([f"{d['sizes'][i]}|{d['mtimes'][i]}" for _, d, i in found])
    listing.other_suffixes = dict(suffixes)
    return listing, records


def drop_undecodable(listing: Listing, records: list[list[File]]) -> Listing:
    """`listing` less the files whose decode verdict (filled in first) is no."""
    kept = Listing([], [], dict(listing.skipped), listing.other_suffixes, listing.nested)
    for found in records:
        good = [(rel, d, i) for rel, d, i in found if d["decodes"][i]]
        for rel, d, i in found:
            if not d["decodes"][i]:
                kept.skip("unreadable", rel)
        kept.rels.append([rel for rel, _, _ in good])
        kept.signatures.append([f"{d['sizes'][i]}|{d['mtimes'][i]}" for _, d, i in good])
    return kept


class FolderReport:
    """What the listings of one source's class trees kept and skipped, as one log block."""

    def __init__(self, root: Path, skip_corrupt: bool) -> None:
        self.root, self.skip_corrupt = root, skip_corrupt
        self.kept = self.nested = self.decoded = 0
        self.skipped: dict[str, list] = {}
        self.other_suffixes: Counter[str] = Counter()

    def add(self, listing: Listing) -> None:
        self.kept += sum(map(len, listing.rels))
        self.nested += listing.nested
        self.other_suffixes.update(listing.other_suffixes)
        for reason, (count, example) in listing.skipped.items():
            self.skipped.setdefault(reason, [0, example])[0] += count

    def log(self, classes: int) -> None:
        """One block: kept, then each reason for skipping with its count, an example and the fix."""
        nested = f" ({self.nested:,} in nested subfolders, counted in their class)"
        lines = [
            f"Image folder {self.root}: kept {self.kept:,} images in {classes} classes"
            + (nested if self.nested else "")
            + "."
        ]
        for reason, (count, example) in self.skipped.items():
            verb = "dropped" if reason == "unreadable" else "skipped"
            lines.append(f"  {verb} {count:,} {self._why(reason)} (e.g. {example})")
        if self.skip_corrupt:
            lines.append(
                f"  data.skip_corrupt=true: {self.decoded:,} new or changed file(s) decoded to "
                "check them; earlier verdicts come from the folder's file index."
            )
        if self.skipped:
            lines.append(
                "  To change it: rename a file to an image extension to include it; delete or "
                "replace empty and unreadable files; data.skip_corrupt=true drops unreadable "
                "images instead of failing on them."
            )
        log.log(logging.WARNING if "unreadable" in self.skipped else logging.INFO, "\n".join(lines))

    def _why(self, reason: str) -> str:
        top = self.other_suffixes.most_common(4)
        return _REASONS[reason].format(suffixes=", ".join(f"{s} x{n}" for s, n in top))
