"""Computed backbone features kept on disk (or in memory), keyed by all that changes them.

Layout: `<root>/<key digest>/key.json` (the key, readable) and one `<split>.pt` per split,
each holding features, labels, the split's full key and a checksum. Files are written to a
temp file and renamed, so a killed run never leaves half a file; a file that does not load,
belongs to another key (stale) or fails its checksum is recomputed, never read.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from transferlab.atomic import atomic_write, atomic_write_text
from transferlab.data.fingerprints import fingerprint_parts

log = logging.getLogger("transferlab")

FORMAT = 1  # bump when the file layout or the meaning of a key field changes
Features = tuple[torch.Tensor, torch.Tensor]
# features.cache=memory: features computed in this process (e.g. earlier jobs of a sweep).
_MEMORY: dict[str, Features] = {}


def _bytes(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()


def state_digest(module: nn.Module) -> str:
    """sha256 of a module's tensors (names, dtypes, shapes, values): its weights' identity."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        digest.update(_bytes(tensor))
    return digest.hexdigest()


def dataset_fingerprint(dataset: Dataset) -> str:
    """sha256 of what identifies a split's images without decoding them: Subset indices,
    then what the base data answers (`data.fingerprints`)."""
    digest = hashlib.sha256()
    for part in fingerprint_parts(dataset):
        digest.update(part)
    return digest.hexdigest()


def _checksum(features: torch.Tensor, labels: torch.Tensor) -> str:
    digest = hashlib.sha256(_bytes(features))
    digest.update(_bytes(labels))
    return digest.hexdigest()


class FeatureCache:
    """Features of each split of one (backbone, weights, data, transform, layers...) key.

    `root=None` keeps them in this process only. `get` returns them from the cache when a
    valid copy exists, otherwise computes, stores and returns them.
    """

    def __init__(self, key: Mapping, root: str | os.PathLike | None) -> None:
        self.key = json.loads(json.dumps(dict(key), sort_keys=True, default=str))
        self.digest = hashlib.sha256(json.dumps(self.key, sort_keys=True).encode()).hexdigest()
        self.dir = Path(root) / self.digest[:24] if root is not None else None

    def path(self, split: str) -> Path:
        if self.dir is None:
            raise ValueError("an in-memory FeatureCache has no files")
        return self.dir / f"{split}.pt"

    def split_key(self, split: str, fingerprint: str) -> str:
        return f"{self.digest}/{split}/{fingerprint}"

    def get(
        self, split: str, fingerprint: str, compute: Callable[[], Features], expected: int
    ) -> Features:
        """The split's (features, labels): a valid cached copy, else `compute()` stored."""
        key = self.split_key(split, fingerprint)
        if self.dir is None:
            if key in _MEMORY:
                log.info("Feature cache hit (memory): %s features %s", split, _shape(_MEMORY[key]))
                return _MEMORY[key]
            _MEMORY[key] = timed_pass(split, compute, "kept in memory for this process")
            return _MEMORY[key]
        self.dir.mkdir(parents=True, exist_ok=True)
        key_file = self.dir / "key.json"
        if not key_file.is_file():
            atomic_write_text(key_file, json.dumps(self.key, indent=2, sort_keys=True) + "\n")
        path = self.path(split)
        # Parallel sweep jobs wait here for the first one's file instead of computing it too.
        with _locked(path.with_name(f".{path.name}.lock")):
            found = _read_valid(path, key, expected)
            if found is not None:
                log.info(
                    "Feature cache hit: %s features %s read from %s", split, _shape(found), path
                )
                return found
            features, labels = timed_pass(split, compute, f"saved to {path}")
            blob = {"key": key, "features": features, "labels": labels}
            _atomic_save({**blob, "checksum": _checksum(features, labels)}, path)
            return features, labels


def _read_valid(path: Path, key: str, expected: int) -> Features | None:
    """The file's (features, labels) if it is complete, of this key and intact; else None."""
    if not path.is_file():
        return None
    try:
        blob = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as err:  # a truncated or foreign file fails in many ways
        return _rejected(path, f"unreadable: {type(err).__name__}")
    if not isinstance(blob, dict) or blob.get("key") != key:
        return _rejected(path, "written for another key (stale)")
    features, labels = blob.get("features"), blob.get("labels")
    if not (isinstance(features, torch.Tensor) and isinstance(labels, torch.Tensor)):
        return _rejected(path, "no feature or label tensors")
    if features.ndim < 2 or labels.ndim != 1 or not len(features) == len(labels) == expected:
        return _rejected(path, f"{len(labels)} items where the split has {expected}")
    if blob.get("checksum") != _checksum(features, labels):
        return _rejected(path, "checksum mismatch (corrupt)")
    return features, labels


def timed_pass(split: str, compute: Callable[[], Features], where: str) -> Features:
    """Run one feature pass and log its size, time and where the result goes."""
    start = time.perf_counter()
    features, labels = compute()
    log.info(
        "Feature pass: computed %s features %s in %.1f s; %s",
        split,
        _shape((features, labels)),
        time.perf_counter() - start,
        where,
    )
    return features, labels


def _shape(found: Features) -> str:
    features = found[0]  # (N, D) features, or (N, C, H, W) activations of a prefix
    return " x ".join(str(n) for n in (len(features), *features.shape[1:])).join("()")


def _rejected(path: Path, why: str) -> None:
    log.warning("Feature cache file %s is not usable (%s); recomputing it.", path, why)
    return None


def _atomic_save(blob: dict, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(blob, f), binary=True)


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # Windows: no lock; parallel jobs may then both compute
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
