"""What an image folder's listing kept and skipped, and why: one short block in the run log.

Torch-free. Hidden and system files (.DS_Store, `._` AppleDouble twins, Thumbs.db, files in
hidden folders) and files whose extension is not an image's are never images; 0-byte files
cannot be; unreadable ones are dropped only under data.skip_corrupt=true. Images in nested
subfolders of a class belong to that class.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from transferlab.data.file_index import FileIndex
from transferlab.data.folders import IMAGE_SUFFIXES, is_system

log = logging.getLogger("transferlab")

Found = list[tuple[str, list]]  # (path relative to the tree, index entry)


class FolderReport:
    """Counts of what the listing of one source's class trees kept and skipped."""

    def __init__(self, root: Path, skip_corrupt: bool) -> None:
        self.root, self.skip_corrupt = root, skip_corrupt
        self.kept = self.nested = self.decoded = 0
        self.skipped: dict[str, list[str]] = {}
        self.other_suffixes: Counter[str] = Counter()

    def images(self, index: FileIndex, class_name: str) -> Found:
        """The image files of one class folder (at any depth), noting what was skipped."""
        found: Found = []
        for rel, entry in index.files(class_name):
            parts = rel.split("/")
            name = parts[-1]
            if any(is_system(part) for part in parts):
                self._skip("system", rel)
            elif (suffix := Path(name).suffix.lower()) not in IMAGE_SUFFIXES:
                self.other_suffixes[suffix or "(none)"] += 1
                self._skip("not_image", rel)
            elif entry[1] == 0:
                self._skip("empty", rel)
            else:
                found.append((rel, entry))
                self.nested += len(parts) > 2
        self.kept += len(found)
        return found

    def outside_classes(self, index: FileIndex, classes: list[str]) -> None:
        """Files lying beside the class folders belong to no class."""
        for entry in index.dirs.get("", {}).get("files", []):
            self._skip("system" if is_system(entry[0]) else "outside", entry[0])

    def decodable(self, index: FileIndex, found: Found) -> Found:
        """`found` less the files whose decode verdict is no."""
        kept = [(rel, entry) for rel, entry in found if entry[3]]
        for rel, entry in found:
            if not entry[3]:
                self._skip("unreadable", rel)
        self.kept -= len(found) - len(kept)
        return kept

    def log(self, classes: int) -> None:
        """One block: kept, then each reason for skipping with its count, an example and the fix."""
        nested = f" ({self.nested:,} in nested subfolders, counted in their class)"
        lines = [
            f"Image folder {self.root}: kept {self.kept:,} images in {classes} classes"
            + (nested if self.nested else "")
            + "."
        ]
        for reason, paths in self.skipped.items():
            verb = "dropped" if reason == "unreadable" else "skipped"
            lines.append(f"  {verb} {len(paths):,} {self._why(reason)} (e.g. {paths[0]})")
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

    def _skip(self, reason: str, rel: str) -> None:
        self.skipped.setdefault(reason, []).append(rel)


_REASONS = {
    "system": "hidden or system file(s) (.DS_Store, ._ AppleDouble, Thumbs.db): never images",
    "not_image": "file(s) that are not images by extension ({suffixes}); images are "
    + " ".join(IMAGE_SUFFIXES)
    + " in any case",
    "empty": "empty (0-byte) file(s)",
    "outside": "file(s) beside the class folders, in no class",
    "unreadable": "unreadable image(s) (data.skip_corrupt=true)",
}
