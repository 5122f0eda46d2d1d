"""A weights file, opened once: its tensor names, shapes and hparams read without torch.

A torch file is a zip whose `data.pkl` names each tensor's shape (or, in torch's legacy
format, a few pickles before the tensors' bytes); a safetensors file starts with a JSON
header. Reading only those takes milliseconds, so a wrong or broken file is refused before
torch loads. Unpickling here builds nothing but dicts, lists, numbers, strings and shapes:
any other class stops the reading (`None`: torch will judge the file).

`WeightsFile` keeps the file open from that first look until its one load (the loader in
`models.weights` gets the same handle), so a run opens its weights file once.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, ClassVar, TypeVar

from transferlab.errors import UserError
from transferlab.weights_files import published

# How ClassifierModule's state_dict names its `self.net` (and the backbone in it): defined
# here, torch-free, because the checks recognise a run's checkpoint by it before torch loads.
NET_PREFIX = "net."
BACKBONE_PREFIX = NET_PREFIX + "backbone."
_MEMO_SIZE = 8  # files kept open at once; a sweep's jobs reuse the same one or two
T = TypeVar("T")


@dataclass
class TensorFile:
    """Every tensor's shape by name (for a checkpoint: its `state_dict`), and its hparams."""

    shapes: dict[str, tuple[int, ...]]
    hparams: dict = field(default_factory=dict)

    @property
    def is_transferlab_checkpoint(self) -> bool:
        """A checkpoint written by a transferlab run: its network lives under NET_PREFIX."""
        return any(k.startswith(NET_PREFIX) for k in self.shapes)


class WeightsFile:
    """One weights file, opened once: its header for the checks, its bytes for one load."""

    _open: ClassVar[dict[Path, WeightsFile]] = {}  # by resolved path, oldest first

    def __init__(self, file: Path, stat: os.stat_result) -> None:
        self.path = file
        self._identity = _identity(stat)
        self._stream: IO[bytes] | None = None
        self._header: TensorFile | None = None
        self._header_read = False
        self._kept: Any = None

    @classmethod
    def of(cls, path: str | os.PathLike) -> WeightsFile:
        """The process's one object for this file (a new one once the file has changed)."""
        file = Path(path).expanduser()
        if not file.is_file():
            raise UserError(
                f"The weights file {str(path)!r} does not exist (looked at {file.absolute()}). "
                "Give an existing .pth/.pt/.safetensors/.ckpt file, e.g. "
                "model.weights=/path/to/resnet18.pth, or model.weights=null."
            )
        key, stat = file.resolve(), file.stat()
        known = cls._open.pop(key, None)
        if known is not None and known._identity != _identity(stat):
            known.release()
            known = None
        cls._open[key] = known or cls(file, stat)  # last: the most recently used
        while len(cls._open) > _MEMO_SIZE:
            cls._open.pop(next(iter(cls._open))).release()
        return cls._open[key]

    @property
    def header(self) -> TensorFile | None:
        """Tensor shapes and hparams; None when only torch can tell. UserError for a file no
        loader could read (truncated, not a tensor file, a Caffe or Keras file). Names are
        those after unwrapping a published layout (`published`)."""
        if not self._header_read:
            self._header = _parse(self._opened(), self.path)
            self._header_read = True
        return self._header

    def load(self, loader: Callable[[IO[bytes]], T], *, keep: bool = False) -> T:
        """`loader` run on the file's bytes from the handle opened for the header, then closed.

        `keep=True` keeps what it loaded for the next `load` (which returns it, once): the
        checkpoint test and the builder share one load of a file the header cannot tell.
        """
        if self._kept is not None:
            loaded = self._kept
            if not keep:
                self._kept = None
            return loaded
        stream = self._opened()
        stream.seek(0)
        try:
            loaded = loader(stream)
        finally:
            self._close()  # the tensors are the caller's now; nothing here holds their bytes
        if keep:
            self._kept = loaded
        return loaded

    def release(self) -> None:
        """Drop a kept load and close the file (the header, a few KB, stays known)."""
        self._kept = None
        self._close()

    def _opened(self) -> IO[bytes]:
        if self._stream is None:
            stream = open(self.path, "rb")  # noqa: SIM115 - open until the load closes it
            try:
                published.refuse_foreign(self.path, stream.read(len(published.HDF5_MAGIC)))
            except UserError:
                stream.close()
                raise
            self._stream = stream
        return self._stream

    def _close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None


def _identity(stat: os.stat_result) -> tuple[int, ...]:
    return stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns


def read_header(path: str | os.PathLike) -> TensorFile | None:
    """`WeightsFile.of(path).header`: the file's tensor shapes and hparams, torch-free."""
    return WeightsFile.of(path).header


class _Shape(tuple):
    """A tensor, as far as this reader cares."""


class _Unsupported(Exception):
    """The pickle needs a class this reader does not build; torch.load decides instead."""


def _tensor(storage, offset, size, *args) -> _Shape:
    return _Shape(int(s) for s in size)


# Names that torch.save writes into a file's pickle, answered with our own stand-ins: they
# are the file format's words, nothing here touches torch's private functions (not compat).
_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("torch", "Size"): tuple,
    ("torch._utils", "_rebuild_tensor"): _tensor,  # torch < 0.4 legacy files
    ("torch._utils", "_rebuild_tensor_v2"): _tensor,
    ("torch._utils", "_rebuild_parameter"): lambda data, *args: data,
    ("torch._utils", "_rebuild_parameter_with_state"): lambda data, *args: data,
}


class _ShapeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _GLOBALS:
            return _GLOBALS[module, name]
        if module == "torch" and name.endswith("Storage"):
            return name  # storages only feed the _rebuild_tensor functions, which ignore them
        raise _Unsupported(f"{module}.{name}")

    def persistent_load(self, pid):
        return None  # the storage itself: the tensor's bytes are never read


def _parse(stream: IO[bytes], file: Path) -> TensorFile | None:
    stream.seek(0)
    try:
        if file.suffix == ".safetensors":
            return _safetensors_header(stream)
        magic = stream.read(4)
        stream.seek(0)
        if magic == b"PK\x03\x04":
            return _torch_zip(stream)
        if magic[:1] == b"\x80":  # torch's legacy (pre-1.6) format: a bare pickle stream
            return _torch_legacy(stream)
        raise ValueError("neither a zip (torch.save) nor a pickle stream")
    except _Unsupported:
        return None
    except (OSError, ValueError, EOFError, KeyError, TypeError, AttributeError) as err:
        raise unreadable(file, err) from None  # json, struct and pickle errors are among these
    except (pickle.UnpicklingError, zipfile.BadZipFile) as err:
        raise unreadable(file, err) from None


def unreadable(file: Path, err: BaseException) -> UserError:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return UserError(
        f"Could not read the weights file {str(file)!r}: {reason}. The file is truncated or "
        "not a tensor file. Only tensor files load (weights_only=True; pickled Python objects "
        "are refused for safety): save model.state_dict() with torch.save or safetensors and "
        "pass that file."
    )


def _torch_zip(stream: IO[bytes]) -> TensorFile | None:
    with zipfile.ZipFile(stream) as archive:  # closing the archive leaves `stream` open
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise ValueError("a zip file without data.pkl")
        data = _ShapeUnpickler(archive.open(pickles[0])).load()
    return describe(data)


# The first of the pickles that torch's legacy format writes before the object itself.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _torch_legacy(stream: IO[bytes]) -> TensorFile:
    """The legacy format: pickles of a magic number, a version, sys_info, then the object."""
    # latin1 reads the byte strings of Python 2 pickles (CSAIL's files of 2017 are such)
    if _ShapeUnpickler(stream, encoding="latin1").load() != _LEGACY_MAGIC:
        raise ValueError("a pickle stream, but not one torch.save wrote")
    for _ in range(2):  # the format's version and the writer's sys_info
        _ShapeUnpickler(stream, encoding="latin1").load()
    return describe(_ShapeUnpickler(stream, encoding="latin1").load())


def describe(
    data: object,
    is_tensor: Callable[[object], bool] = lambda v: isinstance(v, _Shape),
    shape: Callable[[Any], tuple[int, ...]] = tuple,
) -> TensorFile:
    """The TensorFile of a file's object: as this reader builds it, or (given `is_tensor`
    and `shape` for torch tensors) as torch.load does, so both are judged alike."""
    hparams = data.get("hyper_parameters") if isinstance(data, dict) else None
    state, _ = published.unwrap(data, is_tensor)
    items = state.items() if isinstance(state, dict) else ()
    shapes = {str(k): shape(v) for k, v in items if is_tensor(v)}
    return TensorFile(shapes, dict(hparams) if isinstance(hparams, dict) else {})


def _safetensors_header(stream: IO[bytes]) -> TensorFile:
    size = os.fstat(stream.fileno()).st_size
    prefix = stream.read(8)
    if len(prefix) < 8:
        raise ValueError(f"a file of {size} bytes has no safetensors header")
    (length,) = struct.unpack("<Q", prefix)
    if length > size - 8:
        raise ValueError(f"header of {length} bytes in a file of {size}")
    header = json.loads(stream.read(length))
    header.pop("__metadata__", None)
    end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
    if 8 + length + end > size:
        raise ValueError(f"tensors end at byte {8 + length + end}, the file has {size}")
    return TensorFile({k: tuple(int(s) for s in t["shape"]) for k, t in header.items()})
