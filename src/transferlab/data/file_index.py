"""A file index per image folder: listed once, then reused by every job, rank and run.

Torch-free. The index (`<index_dir>/<digest of the folder's path>.json`) holds every
directory of the tree with its modification time and every file with its size, mtime and,
once checked, whether it decodes. On reuse a folder counts as unchanged when

- every indexed directory still has its recorded mtime (adding, removing or renaming a
  file, or replacing it by a rename as `mv`, `rsync` and most sync tools do, changes its
  directory's mtime: only such directories are listed again), and
- a sample of up to `SAMPLE` files, spread evenly over the tree (all of them in smaller
  folders), still has its recorded size and mtime: a file overwritten in place under the
  same name leaves its directory's mtime alone. A mismatch re-stats every file.

Decode verdicts (`data.skip_corrupt`) are kept per file and reused while its size and
mtime hold, so a skip_corrupt run decodes only new or changed files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from transferlab.atomic import atomic_write_text

log = logging.getLogger("transferlab")

FORMAT = 1
SAMPLE = 2048
# One directory: its mtime, its files as [name, size, mtime_ns, decodes (None: unchecked)],
# and its subdirectory names.
Directory = dict


def _scan_dir(path: str, old: Directory | None) -> Directory:
    """List one directory, keeping the decode verdicts of files that did not change."""
    known = {f[0]: f for f in old["files"]} if old else {}
    files, subdirs = [], []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=True):
                subdirs.append(entry.name)
            elif entry.is_file(follow_symlinks=True):
                stat = entry.stat()
                was = known.get(entry.name)
                same = was is not None and was[1:3] == [stat.st_size, stat.st_mtime_ns]
                files.append([entry.name, stat.st_size, stat.st_mtime_ns, was[3] if same else None])
    files.sort()
    return {"mtime": os.stat(path).st_mtime_ns, "files": files, "subdirs": sorted(subdirs)}


class FileIndex:
    """The directories and files below `tree`, from the index file when still valid."""

    def __init__(self, tree: Path, dirs: dict[str, Directory]) -> None:
        self.tree, self.dirs = tree, dirs

    @classmethod
    def of(cls, tree: Path, index_dir: str | os.PathLike | None) -> FileIndex:
        """The tree's index: reused when unchanged, refreshed where changed, else built."""
        tree = Path(tree).resolve()
        if index_dir is None:
            return cls(tree, _walk(tree, {}))
        path = index_path(tree, index_dir)
        with locked(path):
            old = _read(path, tree)
            index = cls(tree, _walk(tree, old))
            if old and not index._sample_holds():
                log.info("File index of %s: files changed in place; all stat-ed again.", tree)
                index = cls(tree, _walk(tree, old, restat=True))
            if index.dirs != old:
                index.save(path)
        return index

    def files(self, below: str) -> Iterator[tuple[str, list]]:
        """(path relative to the tree, file entry) below the directory `below`, in the
        order `sorted(Path(...).rglob("*"))` gives (by path components)."""
        directory = self.dirs.get(below)
        if directory is None:
            return
        entries = [(f[0], f) for f in directory["files"]]
        entries += [(d, None) for d in directory["subdirs"]]
        for name, entry in sorted(entries, key=lambda e: e[0]):
            rel = f"{below}/{name}" if below else name
            if entry is None:
                yield from self.files(rel)
            else:
                yield rel, entry

    def check_decodes(
        self, entries: list[tuple[str, list]], decodes: Callable[[str], bool], path: Path | None
    ) -> int:
        """Fill in the decode verdict of those (relative path, entry) pairs that have none and
        save the index; returns how many files were decoded. Threads decode in parallel
        (Pillow releases the GIL while decoding)."""
        todo = [(rel, entry) for rel, entry in entries if entry[3] is None]
        if not todo:
            return 0
        with contextlib.ExitStack() as stack:
            if path is not None:
                stack.enter_context(locked(path))
            with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
                verdicts = pool.map(lambda item: decodes(str(self.tree / item[0])), todo)
                for (_, entry), ok in zip(todo, verdicts, strict=True):
                    entry[3] = bool(ok)
            if path is not None:
                self.save(path)
        return len(todo)

    def save(self, path: Path) -> None:
        blob = {"format": FORMAT, "tree": str(self.tree), "dirs": self.dirs}
        atomic_write_text(path, json.dumps(blob, separators=(",", ":"), ensure_ascii=False))

    def _sample_holds(self) -> bool:
        files = [(d, f) for d, directory in self.dirs.items() for f in directory["files"]]
        step = max(1, len(files) // SAMPLE)
        for folder, entry in files[::step]:
            try:
                stat = os.stat(self.tree / folder / entry[0])
            except OSError:
                return False
            if [stat.st_size, stat.st_mtime_ns] != entry[1:3]:
                return False
        return True


def index_path(tree: Path, index_dir: str | os.PathLike) -> Path:
    digest = hashlib.sha256(str(tree).encode()).hexdigest()[:24]
    return Path(index_dir) / f"{tree.name[:40]}-{digest}.json"


def _walk(tree: Path, old: dict[str, Directory], restat: bool = False) -> dict[str, Directory]:
    """Every directory below `tree`, reusing the old listing of each whose mtime held."""
    dirs: dict[str, Directory] = {}
    pending = [""]
    while pending:
        rel = pending.pop()
        path = os.path.join(tree, rel) if rel else str(tree)
        before = old.get(rel)
        try:
            unchanged = before is not None and os.stat(path).st_mtime_ns == before["mtime"]
        except OSError:
            continue  # removed while we looked
        directory = before if unchanged and not restat else _scan_dir(path, before)
        dirs[rel] = directory
        pending += [f"{rel}/{d}" if rel else d for d in directory["subdirs"]]
    return dirs


def _read(path: Path, tree: Path) -> dict[str, Directory]:
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, or unreadable: listed again and rewritten
    ok = isinstance(blob, dict) and blob.get("format") == FORMAT and blob.get("tree") == str(tree)
    return blob["dirs"] if ok else {}


@contextlib.contextmanager
def locked(index: Path) -> Iterator[None]:
    """One process at a time builds or updates an index; the others then read it."""
    index.parent.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no lock; two processes may then both list the folder
        yield
        return
    with open(index.with_name(f".{index.name}.lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
