"""Freeze policies: which layer groups train, the same meaning for every backbone."""

from __future__ import annotations

import logging

from torch import nn

from transferlab.checks.model import check_unfreeze
from transferlab.models.classifier import Classifier, LayerGroup

log = logging.getLogger("transferlab")


def set_trainable(net: Classifier, k: int) -> None:
    """Train the head and the last `k` backbone groups; freeze the rest."""
    k = check_unfreeze(k, [g.name for g in net.groups])
    trainable = {p for g in net.groups[len(net.groups) - k :] for p in g.param_names}
    for name, param in net.named_parameters():
        param.requires_grad_(name.startswith("head.") or name in trainable)


def eval_frozen_modules(net: nn.Module) -> None:
    """Put every module whose parameters are all frozen in eval mode.

    `model.train()` flips BatchNorm back to batch statistics and dropout back on, so a
    "frozen" backbone would still drift; call this after every `.train()`.
    """
    for module in net.modules():
        params = list(module.parameters())
        if params and not any(p.requires_grad for p in params):
            module.eval()


def group_table(net: Classifier) -> list[tuple[str, int, bool]]:
    """(group name, parameter count, trainable) for each backbone group, then the head."""
    params = dict(net.named_parameters())
    rows: list[tuple[str, int, bool]] = []
    groups = [*net.groups, LayerGroup("head", [n for n in params if n.startswith("head.")])]
    for g in groups:
        count = sum(params[n].numel() for n in g.param_names)
        rows.append((g.name, count, any(params[n].requires_grad for n in g.param_names)))
    return rows


def log_group_table(net: Classifier) -> None:
    lines = [f"{'group':<24}{'params':>12}  state"]
    for name, count, trainable in group_table(net):
        lines.append(f"{name:<24}{count:>12,}  {'trainable' if trainable else 'frozen'}")
    log.info("Layer groups (input to output):\n%s", "\n".join(lines))
