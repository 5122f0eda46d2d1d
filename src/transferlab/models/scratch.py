"""Networks trained from random init: a block CNN and an MLP, both as `Classifier`s."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn

from transferlab.errors import UserError
from transferlab.models.classifier import Classifier, LayerGroup, build_head
from transferlab.models.classifier import activation as activation_module

INITS = ("default", "kaiming", "xavier")


def _init_weights(net: nn.Module, init: str, act: str) -> None:
    if init not in INITS:
        raise UserError(
            f"Unknown weight init {init!r}. Choose one of {INITS}, e.g. model.init=kaiming."
        )
    if init == "default":
        return
    # kaiming's gain needs the nonlinearity name; tanh/gelu/elu fall back to relu's gain.
    nonlinearity = act if act in ("relu", "leaky_relu", "tanh") else "relu"
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            if init == "kaiming":
                nn.init.kaiming_normal_(m.weight, nonlinearity=nonlinearity)
            else:
                nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain(nonlinearity))
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _groups(backbone: nn.Sequential, names: Sequence[str]) -> list[LayerGroup]:
    """One group per named child of the backbone that owns parameters."""
    groups = []
    for name in names:
        params = [
            f"backbone.{name}.{p}" for p, _ in backbone.get_submodule(name).named_parameters()
        ]
        groups.append(LayerGroup(name, params))
    return groups


def _no_pretrained(name: str, pretrained: bool) -> None:
    if pretrained:
        raise UserError(
            f"model={name} has no pretrained weights: it is trained from scratch. Use "
            f"mode=scratch, or start from an earlier run with model.weights=<run>/checkpoints/"
            f"best.ckpt, or pick a pretrained backbone such as model=efficientnet_lite0."
        )


def _scratch_config(in_chans: int, image_size: int | None) -> dict:
    size = image_size or 0
    return {
        "input_size": (in_chans, size, size) if size else (in_chans, None, None),
        "mean": (0.5,) * in_chans,
        "std": (0.5,) * in_chans,
        "interpolation": "bilinear",
    }


def cnn(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int | None = None,
    channels: Sequence[int] = (32, 64, 128),
    kernel_size: int = 3,
    activation: str = "relu",
    batchnorm: bool = True,
    dropout: float = 0.0,
    pool: str = "max",
    init: str = "default",
    head: dict | None = None,
    name: str = "cnn",
    pretrained: bool = False,
    weights: str | None = None,
) -> Classifier:
    """Conv blocks (conv, [BN], activation, pool, [dropout]) then global average pooling.

    Each block is one layer group, so `model.unfreeze=k` trains the last k blocks.
    """
    _no_pretrained(name, pretrained)
    if pool not in ("max", "avg", "none"):
        raise UserError(f"Unknown pooling {pool!r}. Choose max, avg or none, e.g. model.pool=max.")
    blocks: dict[str, nn.Module] = {}
    width = in_chans
    for i, out in enumerate(channels):
        layers: list[nn.Module] = [
            nn.Conv2d(width, out, kernel_size, padding=kernel_size // 2, bias=not batchnorm)
        ]
        if batchnorm:
            layers.append(nn.BatchNorm2d(out))
        layers.append(activation_module(activation))
        if pool != "none":
            # ceil_mode keeps 1x1 maps alive when a small image meets many blocks.
            pool_cls = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
            layers.append(pool_cls(2, ceil_mode=True))
        if dropout > 0:
            layers.append(nn.Dropout2d(dropout))
        blocks[f"block{i + 1}"] = nn.Sequential(*layers)
        width = out
    names = list(blocks)
    backbone = nn.Sequential(OrderedDict(blocks))
    backbone.add_module("pool", nn.AdaptiveAvgPool2d(1))
    backbone.add_module("flatten", nn.Flatten())
    head_net = build_head(width, num_classes, **_head_kwargs(head))
    _init_weights(backbone, init, activation)
    _init_weights(head_net, init, activation)
    return Classifier(
        backbone, head_net, width, _groups(backbone, names), _scratch_config(in_chans, image_size)
    )


def mlp(
    *,
    num_classes: int,
    in_chans: int,
    image_size: int | None,
    hidden: Sequence[int] = (256, 128),
    activation: str = "relu",
    dropout: float = 0.0,
    init: str = "default",
    head: dict | None = None,
    name: str = "mlp",
    pretrained: bool = False,
    weights: str | None = None,
) -> Classifier:
    """Flatten then fully connected layers; each hidden layer is one layer group."""
    _no_pretrained(name, pretrained)
    if not image_size:
        raise UserError(
            "model=mlp needs a fixed input size, but the dataset's images vary in size and "
            "data.image_size is null. Set data.image_size=<pixels>, e.g. data.image_size=32."
        )
    layers: dict[str, nn.Module] = {"flatten": nn.Flatten()}
    width = in_chans * image_size * image_size
    for i, units in enumerate(hidden):
        parts: list[nn.Module] = [nn.Linear(width, units), activation_module(activation)]
        if dropout > 0:
            parts.append(nn.Dropout(dropout))
        layers[f"fc{i + 1}"] = nn.Sequential(*parts)
        width = units
    backbone = nn.Sequential(OrderedDict(layers))
    head_net = build_head(width, num_classes, **_head_kwargs(head))
    _init_weights(backbone, init, activation)
    _init_weights(head_net, init, activation)
    names = [n for n in layers if n != "flatten"]
    return Classifier(
        backbone, head_net, width, _groups(backbone, names), _scratch_config(in_chans, image_size)
    )


def _head_kwargs(head: dict | None) -> dict:
    head = dict(head or {})
    return {
        "hidden": head.get("hidden", ()),
        "dropout": head.get("dropout", 0.0),
        "activation_name": head.get("activation", "relu"),
    }
