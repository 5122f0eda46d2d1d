"""A file index per image folder: listed once, then reused by every job, rank and run.

Torch-free. The index (`<index_dir>/<digest of the folder's path>.json`) holds every
directory of the tree with its modification time and every file with its size, mtime and,
once checked, whether it decodes. On reuse a folder counts as unchanged when

- every indexed directory still has its recorded mtime (adding, removing or renaming a
  file, or replacing it by a rename as `mv`, `rsync` and most sync tools do, changes its
  directory's mtime: only such directories are listed again), and
- a sample of about `SAMPLE` files, spread evenly over the tree (all of them in smaller
  folders), still has its recorded size and mtime: a file overwritten in place under the
  same name leaves its directory's mtime alone. A mismatch re-stats every file.

Decode verdicts (`data.skip_corrupt`) are kept per file and reused while its size and
mtime hold, so a skip_corrupt run decodes only new or changed files.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from transferlab.atomic import atomic_write_text

log = logging.getLogger("transferlab")

FORMAT = 2
SAMPLE = 2048
# One directory: its mtime, its subdirectory names, and its files as columns (names, sizes,
# mtimes, decodes: None until checked). Columns, not a list per file: parsing and the
# garbage collector then see a few lists per directory, not one per file.
Directory = dict
# A file: its path relative to the tree, its directory's record and its position there.
File = tuple[str, Directory, int]


def _scan_dir(path: str, old: Directory | None) -> Directory:
    """List one directory, keeping the decode verdicts of files that did not change."""
    known = {}
    if old:
        known = {n: (s, m, d) for n, s, m, d in zip(*(old[k] for k in _COLUMNS), strict=True)}
    rows, subdirs = [], []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=True):
                subdirs.append(entry.name)
            elif entry.is_file(follow_symlinks=True):
                stat = entry.stat()
                was = known.get(entry.name)
                same = was is not None and was[:2] == (stat.st_size, stat.st_mtime_ns)
                rows.append((entry.name, stat.st_size, stat.st_mtime_ns, was[2] if same else None))
    rows.sort()
    columns = [list(c) for c in zip(*rows, strict=True)] if rows else [[], [], [], []]
    directory = {"mtime": os.stat(path).st_mtime_ns, "subdirs": sorted(subdirs)}
    return directory | dict(zip(_COLUMNS, columns, strict=True))


_COLUMNS = ("names", "sizes", "mtimes", "decodes")


class FileIndex:
    """The directories and files below `tree`, from the index file when still valid.

    `listings` keeps what a reader derived from an unchanged index (data/image_folder.py
    keeps its per-class file lists there), so a second run does no per-file work at all;
    any change to the tree empties it.
    """

    def __init__(self, tree: Path, dirs: dict[str, Directory], listings: dict | None = None):
        self.tree, self.dirs, self.listings = tree, dirs, listings or {}

    @classmethod
    def of(cls, tree: Path, index_dir: str | os.PathLike | None) -> FileIndex:
        """The tree's index: reused when unchanged, refreshed where changed, else built."""
        tree = Path(tree).resolve()
        if index_dir is None:
            return cls(tree, _walk(tree, {}))
        path = index_path(tree, index_dir)
        with locked(path), _gc_paused():
            old, listings = _read(path, tree)
            index = cls(tree, _walk(tree, old), listings)
            if old and not index._sample_holds():
                log.info("File index of %s: files changed in place; all stat-ed again.", tree)
                index = cls(tree, _walk(tree, old, restat=True))
            if index.dirs != old:
                index.listings = {}
                index.save(path)
        return index

    def files(self, below: str) -> Iterator[File]:
        """The files below the directory `below`, in the order `sorted(Path(...).rglob("*"))`
        gives (by path components)."""
        directory = self.dirs.get(below)
        if directory is None:
            return
        entries = [(name, i) for i, name in enumerate(directory["names"])]
        entries += [(name, None) for name in directory["subdirs"]]
        for name, i in sorted(entries, key=lambda e: e[0]):
            rel = f"{below}/{name}" if below else name
            if i is None:
                yield from self.files(rel)
            else:
                yield rel, directory, i

    def check_decodes(
        self, files: list[File], decodes: Callable[[str], bool], path: Path | None
    ) -> int:
        """Fill in the decode verdict of those files that have none and save the index;
        returns how many files were decoded. Threads decode in parallel (Pillow releases the
        GIL while decoding)."""
        todo = [file for file in files if file[1]["decodes"][file[2]] is None]
        if not todo:
            return 0
        with contextlib.ExitStack() as stack:
            if path is not None:
                stack.enter_context(locked(path))
                todo = self._unless_decided_meanwhile(todo, path)
            with ThreadPoolExecutor(max(1, os.cpu_count() or 1)) as pool:
                verdicts = pool.map(lambda file: decodes(str(self.tree / file[0])), todo)
                for (_, directory, i), ok in zip(todo, verdicts, strict=True):
                    directory["decodes"][i] = bool(ok)
            if path is not None:
                self.listings = {}
                self.save(path)
        return len(todo)

    def _unless_decided_meanwhile(self, todo: list[File], path: Path) -> list[File]:
        """Take the verdicts another process (a DDP rank, a parallel job) saved since this
        index was read, for files unchanged since; return the files still undecided."""
        with _gc_paused():
            saved, _ = _read(path, self.tree)
        rows: dict[str, dict] = {}  # per directory: name -> (size, mtime, verdict)
        left = []
        for file in todo:
            rel, directory, i = file
            folder, _, name = rel.rpartition("/")
            if folder not in rows:
                other = saved.get(folder) or {k: [] for k in _COLUMNS}
                columns = [other[k] for k in _COLUMNS]
                rows[folder] = {n: rest for n, *rest in zip(*columns, strict=True)}
            size, mtime, verdict = rows[folder].get(name, (None, None, None))
            if (size, mtime) == (directory["sizes"][i], directory["mtimes"][i]):
                directory["decodes"][i] = verdict
            if directory["decodes"][i] is None:
                left.append(file)
        return left

    def save(self, path: Path) -> None:
        blob = {"format": FORMAT, "tree": str(self.tree), "dirs": self.dirs}
        blob["listings"] = self.listings
        atomic_write_text(path, json.dumps(blob, separators=(",", ":"), ensure_ascii=False))

    def _sample_holds(self) -> bool:
        counts = [(rel, len(d["names"])) for rel, d in self.dirs.items()]
        step = max(1, sum(n for _, n in counts) // SAMPLE)
        position = 0
        for rel, count in counts:
            directory = self.dirs[rel]
            base = os.path.join(self.tree, rel)
            for i in range(-position % step, count, step):
                try:
                    stat = os.stat(f"{base}/{directory['names'][i]}")
                except OSError:
                    return False
                if (stat.st_size, stat.st_mtime_ns) != (
                    directory["sizes"][i],
                    directory["mtimes"][i],
                ):
                    return False
            position += count
        return True


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    # Parsing a big index allocates many containers at once; the cyclic collector would
    # rescan them all again and again (measured: 0.86 s instead of 0.05 s for 20,000 files).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


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


def _read(path: Path, tree: Path) -> tuple[dict[str, Directory], dict]:
    try:
        blob = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}, {}  # none yet, or unreadable: listed again and rewritten
    ok = isinstance(blob, dict) and blob.get("format") == FORMAT and blob.get("tree") == str(tree)
    return (blob["dirs"], blob.get("listings") or {}) if ok else ({}, {})


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
