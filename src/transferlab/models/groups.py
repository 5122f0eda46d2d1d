"""Layer groups of library backbones, input -> output over every parameter.

Freezing (`model.unfreeze`), gradual unfreezing and layer-wise learning rates all count in
these groups: timm's own coarse groups (stem, stages, blocks), torchvision's conv blocks
and fully connected layers.
"""

from __future__ import annotations

import bisect
import re

from torch import nn

from transferlab.models.classifier import LayerGroup
from transferlab.models.timm_lib import timm


def timm_groups(model: nn.Module, prefix: str = "backbone.") -> list[LayerGroup]:
    """timm's coarse layer groups (stem, stages/blocks...), input -> output, covering all params.

    Parameters the matcher leaves out (timm lumps them into one extra group, e.g. a
    MobileNetV3 `conv_head`) join the group of their nearest matched neighbour.
    """
    matcher = model.group_matcher(coarse=True)
    order = [n for n, _ in model.named_parameters()]
    groups = timm.models.group_parameters(model, matcher)
    group_of = {n: g for g, names in groups.items() for n in names}
    matched = [i for i, n in enumerate(order) if _matched(n, matcher)]
    if matched:
        for i, name in enumerate(order):
            group_of[name] = group_of[order[_nearest(matched, i)]]
    ids = sorted(set(group_of.values()))
    groups = [[n for n in order if group_of[n] == g] for g in ids]
    return [
        LayerGroup(label, [prefix + n for n in names])
        for label, names in zip(_group_names(groups), groups, strict=True)
    ]


def _nearest(matched: list[int], i: int) -> int:
    """The closest matched parameter in registration order, the earlier one on a tie."""
    at = bisect.bisect_left(matched, i)
    around = matched[max(at - 1, 0) : at + 1]
    return min(around, key=lambda j: (abs(j - i), j > i))


def _matched(name: str, matcher) -> bool:
    if callable(matcher):
        return True
    specs = []
    for spec in matcher.values():
        if isinstance(spec, (list, tuple)):
            specs += [s[0] for s in spec]
        elif spec is not None:
            specs.append(spec)
    return any(re.match(s, name) for s in specs)


def _group_names(groups: list[list[str]]) -> list[str]:
    """Each group named by the shortest module paths only it owns: 'layer1', 'conv1+bn1'."""
    owners: dict[str, set[int]] = {}
    for g, names in enumerate(groups):
        for name in names:
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                owners.setdefault(".".join(parts[:depth]), set()).add(g)
    labels = []
    for g, names in enumerate(groups):
        units: list[str] = []
        for name in names:
            parts = name.split(".")
            prefixes = (".".join(parts[:d]) for d in range(1, len(parts) + 1))
            unit = next(p for p in prefixes if owners[p] == {g})
            if unit not in units:
                units.append(unit)
        labels.append("+".join(units))
    return labels


def torchvision_groups(backbone: nn.Sequential, *, per_conv: bool) -> list[LayerGroup]:
    """conv1..conv5 (per_conv, AlexNet) or block1..block5 (VGG, split at pooling), fc6, fc7."""
    groups: list[LayerGroup] = []
    current: list[str] = []
    for index, layer in backbone.features.named_children():
        current += [f"backbone.features.{index}.{p}" for p, _ in layer.named_parameters()]
        ends = isinstance(layer, nn.Conv2d) if per_conv else isinstance(layer, nn.MaxPool2d)
        if ends and current:
            groups.append(
                LayerGroup(f"{'conv' if per_conv else 'block'}{len(groups) + 1}", current)
            )
            current = []
    for index, layer in backbone.classifier.named_children():
        if isinstance(layer, nn.Linear):
            params = [f"backbone.classifier.{index}.{p}" for p, _ in layer.named_parameters()]
            groups.append(LayerGroup(f"fc{len(groups) + 1}", params))
    return groups
