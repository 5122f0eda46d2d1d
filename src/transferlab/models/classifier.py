"""The uniform network interface every freeze policy and feature extractor relies on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
}


def activation(name: str) -> nn.Module:
    """An activation module by config name."""
    if name not in ACTIVATIONS:
        from transferlab.errors import UserError

        raise UserError(
            f"Unknown activation {name!r}. Choose one of {sorted(ACTIVATIONS)}, "
            f"e.g. model.activation=relu."
        )
    return ACTIVATIONS[name]()


@dataclass
class LayerGroup:
    """Backbone parameters that freeze and unfreeze together, named by parameter path."""

    name: str
    param_names: list[str] = field(default_factory=list)


class Classifier(nn.Module):
    """backbone (image -> pooled features) followed by head (features -> logits).

    `groups` lists the backbone's layer groups from input to output, so "unfreeze the
    last k groups" means the same for a scratch CNN, AlexNet or any timm model.
    `data_config` says how inputs must be prepared (size, mean, std, interpolation).
    """

    def __init__(
        self,
        backbone: nn.Module,
        head: nn.Module,
        num_features: int,
        groups: Sequence[LayerGroup],
        data_config: dict,
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_features = num_features
        self.groups = list(groups)
        self.data_config = dict(data_config)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def build_head(
    in_features: int,
    num_classes: int,
    hidden: Sequence[int] = (),
    dropout: float = 0.0,
    activation_name: str = "relu",
) -> nn.Sequential:
    """Linear head, or an MLP head with `hidden` units and dropout before each linear layer."""
    layers: list[nn.Module] = []
    width = in_features
    for units in hidden:
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers += [nn.Linear(width, units), activation(activation_name)]
        width = units
    if dropout > 0:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def permute_outputs(net: Classifier, order: list[int]) -> None:
    """Reorder the logits in place: output j becomes the old output `order[j]`."""
    last = [m for m in net.head.modules() if isinstance(m, nn.Linear)][-1]
    index = torch.as_tensor(order)
    with torch.no_grad():
        last.weight.copy_(last.weight[index].clone())
        last.bias.copy_(last.bias[index].clone())
