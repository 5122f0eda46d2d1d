"""Tensor names, shapes and hyper-parameters of a weights file, read without torch.

A torch file is a zip whose `data.pkl` names each tensor's shape (or, in torch's legacy
format, a few pickles before the tensors' bytes); a safetensors file starts with a JSON
header. Reading only those takes milliseconds, so a wrong or broken file is
refused before torch loads. Unpickling here builds nothing but dicts, lists, numbers,
strings and shapes: any other class stops the reading (`None`: torch will judge the file).
"""

from __future__ import annotations

import collections
import json
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from transferlab import published
from transferlab.errors import UserError


@dataclass
class TensorFile:
    """Every tensor's shape by name (for a checkpoint: its `state_dict`), and its hparams."""

    shapes: dict[str, tuple[int, ...]]
    hparams: dict = field(default_factory=dict)

    @property
    def is_transferlab_checkpoint(self) -> bool:
        return any(k.startswith("net.") for k in self.shapes)


class _Shape(tuple):
    """A tensor, as far as this reader cares."""


class _Unsupported(Exception):
    """The pickle needs a class this reader does not build; torch.load decides instead."""


def _tensor(storage, offset, size, *args) -> _Shape:
    return _Shape(int(s) for s in size)


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


def read_header(path: str | Path) -> TensorFile | None:
    """The file's tensor shapes (and checkpoint hparams); None when only torch can tell.

    Raises UserError for a file no loader could read (truncated, not a tensor file, a Caffe
    or Keras file). Names are those after unwrapping a published layout (`published`).
    """
    file = Path(path).expanduser()
    try:
        published.refuse_foreign(file)
        if file.suffix == ".safetensors":
            return _safetensors_header(file)
        with open(file, "rb") as f:
            magic = f.read(4)
        if magic == b"PK\x03\x04":
            return _torch_zip(file)
        if magic[:1] == b"\x80":  # torch's legacy (pre-1.6) format: a bare pickle stream
            return _torch_legacy(file)
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


def _torch_zip(file: Path) -> TensorFile | None:
    with zipfile.ZipFile(file) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pickles:
            raise ValueError("a zip file without data.pkl")
        data = _ShapeUnpickler(archive.open(pickles[0])).load()
    return _tensor_file(data)


# The first of the pickles that torch's legacy format writes before the object itself.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C


def _torch_legacy(file: Path) -> TensorFile:
    """The legacy format: pickles of a magic number, a version, sys_info, then the object."""
    with open(file, "rb") as f:
        # latin1 reads the byte strings of Python 2 pickles (CSAIL's files of 2017 are such)
        if _ShapeUnpickler(f, encoding="latin1").load() != _LEGACY_MAGIC:
            raise ValueError("a pickle stream, but not one torch.save wrote")
        for _ in range(2):  # the format's version and the writer's sys_info
            _ShapeUnpickler(f, encoding="latin1").load()
        return _tensor_file(_ShapeUnpickler(f, encoding="latin1").load())


def _tensor_file(data: object) -> TensorFile:
    hparams = data.get("hyper_parameters") if isinstance(data, dict) else None
    state, _ = published.unwrap(data, lambda v: isinstance(v, _Shape))
    shapes = _shapes(state) if isinstance(state, dict) else {}
    return TensorFile(shapes, dict(hparams) if isinstance(hparams, dict) else {})


def _shapes(state: dict) -> dict[str, tuple[int, ...]]:
    return {str(k): tuple(v) for k, v in state.items() if isinstance(v, _Shape)}


def _safetensors_header(file: Path) -> TensorFile:
    size = file.stat().st_size
    with open(file, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise ValueError(f"a file of {size} bytes has no safetensors header")
        (length,) = struct.unpack("<Q", prefix)
        if length > size - 8:
            raise ValueError(f"header of {length} bytes in a file of {size}")
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    end = max((int(t["data_offsets"][1]) for t in header.values()), default=0)
    if 8 + length + end > size:
        raise ValueError(f"tensors end at byte {8 + length + end}, the file has {size}")
    return TensorFile({k: tuple(int(s) for s in t["shape"]) for k, t in header.items()})
