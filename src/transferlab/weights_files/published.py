"""Weights files in the layouts their authors publish them in, understood without torch.

Training scripts of the PyTorch ImageNet example's era (CSAIL's Places365 models among
them) save `{"epoch", "arch", "state_dict", "best_prec1"}`, with DataParallel's `module`
in the name of every tensor it wrapped. The header check (`weights_files.tensor_headers`) and the
loader (`models.weights`) unwrap such files here alike, so both judge the same names. Caffe
and Keras files, which no torch loader reads, are named here with how to convert them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path

from transferlab.errors import UserError

# Where a state_dict sits inside a saved dict: Lightning and training scripts, then the
# {"model": ..., "optimizer": ...} of DeiT/timm-style training checkpoints.
NESTS = ("state_dict", "model")
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
CAFFE_SUFFIXES = (".caffemodel", ".prototxt")  # protobuf has no magic bytes to sniff
# torchvision < 0.3 named DenseNet layers `norm.1`, as CSAIL's densenet161 file has them;
# torchvision's own loader renames them to today's `norm1` with this pattern.
_OLD_DENSENET = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(\w+)$")
LOADABLE = (
    "model.weights= loads PyTorch state dicts (.pth/.pt/.pth.tar/.bin, also nested under "
    '"state_dict" as training scripts save them), safetensors files, and a transferlab '
    "run's .ckpt"
)


def unwrap(data: object, is_tensor: Callable[[object], bool]) -> tuple[object, list[str]]:
    """The state_dict inside a saved object, in today's names; and, for the log, what was done.

    `data` comes back as it is when it holds no nested or renamed state_dict (notes: []).
    """
    data, nest = _unnest(data, is_tensor)
    notes = [f'nested under "{nest}"'] if nest else []
    if not isinstance(data, dict):
        return data, notes
    if renamed := data_parallel_names(str(k) for k in data):
        data = {renamed.get(str(k), k): v for k, v in data.items()}
        notes.append(f"DataParallel 'module.' removed from {len(renamed)} names")
    if any(_OLD_DENSENET.match(str(k)) for k in data):
        data = {_OLD_DENSENET.sub(r"\1\2.\3", str(k)): v for k, v in data.items()}
        notes.append("DenseNet's old 'norm.1' names made 'norm1'")
    return data, notes


def _unnest(data: object, is_tensor: Callable[[object], bool]) -> tuple[object, str | None]:
    """The state_dict a saved dict holds under one of `NESTS`, and that key (None: not nested)."""
    if isinstance(data, dict) and not any(is_tensor(v) for v in data.values()):
        for key in NESTS:
            inner = data.get(key)
            if isinstance(inner, dict) and any(is_tensor(v) for v in inner.values()):
                return inner, key
    return data, None


def data_parallel_names(names: Iterable[str]) -> dict[str, str]:
    """New names of the tensors DataParallel wrapped ({} when it wrapped none).

    DataParallel holds nothing but `.module`, and scripts wrap a whole model
    (`module.conv1.weight`) or one top-level part (AlexNet/VGG's `features.module.0.weight`
    in the ImageNet example). So `module` is its mark only as the sole child of the root or
    of a top-level module; deeper, or beside siblings, it is a real submodule (timm's iFormer
    blocks have `mixer.module.*`) and keeps its name.
    """
    split = [name.split(".") for name in names]
    wrapped = {parent for depth in (0, 1) for parent in _sole_module_parents(split, depth)}
    new = [".".join(c for i, c in enumerate(p) if tuple(p[:i]) not in wrapped) for p in split]
    if len(set(new)) < len(new):
        return {}  # two tensors would get one name: not a DataParallel layout after all
    old = [".".join(p) for p in split]
    return {o: n for o, n in zip(old, new, strict=True) if o != n}


def _sole_module_parents(split: list[list[str]], depth: int) -> set[tuple[str, ...]]:
    """Parents at `depth` (0: the root) all of whose tensors lie under a child `module`."""
    below: dict[tuple[str, ...], list[list[str]]] = {}
    for parts in split:
        if len(parts) > depth:
            below.setdefault(tuple(parts[:depth]), []).append(parts)
    return {
        parent
        for parent, children in below.items()
        if all(p[depth] == "module" and len(p) > depth + 1 for p in children)
    }


def loaded(source: str, unwrapped: list[str], head: dict, num_classes: int) -> str:
    """The log line of a load: 'Loaded <file>; unwrapped: ...; classifier.6.weight/bias (365
    classes) replaced by a new 10-class head'. `head`: the dropped tensors' shapes by name."""
    parts = [f"Loaded {source}"]
    if unwrapped:
        parts.append(f"unwrapped: {', '.join(unwrapped)}")
    if head:
        by_module: dict[str, list[str]] = {}
        for key in head:
            owner, _, name = key.rpartition(".")
            by_module.setdefault(owner, []).append(name)
        names = ", ".join(f"{owner}.{'/'.join(n)}" for owner, n in by_module.items())
        classes = next((shape[0] for shape in head.values() if shape), "?")
        parts.append(f"{names} ({classes} classes) replaced by a new {num_classes}-class head")
    return "; ".join(parts)


def refuse_foreign(file: Path, head: bytes) -> None:
    """Raise UserError for a Caffe or Keras (HDF5) file, saying how to convert it.

    `head`: the file's first bytes (at least `len(HDF5_MAGIC)`), read by whoever opened it.
    """
    if file.suffix in CAFFE_SUFFIXES:
        what = (
            "a Caffe model (.caffemodel, protobuf)"
            if file.suffix == ".caffemodel"
            else "a Caffe network definition (.prototxt: its weights are in the .caffemodel)"
        )
        raise UserError(
            f"The weights file {str(file)!r} is {what}, "
            f"which torch cannot read; {LOADABLE}. Convert it first: with a Caffe-to-PyTorch "
            "converter such as caffemodel2pytorch or MMdnn, turn the .caffemodel (with its "
            "deploy .prototxt) into a state dict named as torchvision's network of the same "
            "architecture (for model=vgg16: features.0.weight ... classifier.3.bias), "
            "torch.save(state_dict, 'vgg16_places365.pth') and pass that file. Caffe nets "
            "read BGR pixels in 0-255: reverse conv1's input channels and rescale its weights "
            "for torchvision's normalised RGB input."
        )
    if head.startswith(HDF5_MAGIC):
        raise UserError(
            f"The weights file {str(file)!r} is a Keras HDF5 file, which torch cannot read; "
            f"{LOADABLE}. Convert it first: read each layer's weights with h5py, transpose "
            "conv kernels from HWIO to OIHW (kernel.transpose(3, 2, 0, 1)) and dense kernels "
            "from (in, out) to (out, in), name them as torchvision's network of the same "
            "architecture (for model=vgg16: features.0.weight ... classifier.3.bias; Keras "
            "flattens fc6's input channels-last, so reorder its columns to channels-first), "
            "torch.save(state_dict, 'vgg16_places365.pth') and pass that file."
        )
