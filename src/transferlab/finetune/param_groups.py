"""Optimizer parameter groups: discriminative learning rates, no decay on norms and biases."""

from __future__ import annotations

from transferlab.models.classifier import Classifier


def lr_scales(n_groups: int, backbone_lr_mult: float = 1.0, layer_decay: float | None = None):
    """lr multiplier of each backbone group (input to output); the head's is 1.

    With layer_decay d, group i of n gets mult * d**(n - i): the deeper, the closer to 1.
    """
    return [
        backbone_lr_mult * (layer_decay ** (n_groups - i) if layer_decay else 1.0)
        for i in range(n_groups)
    ]


def param_groups(
    net: Classifier,
    lr: float,
    weight_decay: float = 0.0,
    backbone_lr_mult: float = 1.0,
    layer_decay: float | None = None,
) -> list[dict]:
    """Every parameter, frozen ones included, in groups whose `lr` is already scaled.

    Frozen parameters sit in the optimizer from the start (their grad is None, so no
    optimizer touches them): unfreezing later only flips requires_grad, and schedulers and
    checkpoints see one fixed set of groups. The lr is set on the group itself because
    torch schedulers ignore side keys such as timm's `lr_scale`.
    """
    params = dict(net.named_parameters())
    named = [
        (g.name, g.param_names, s)
        for g, s in zip(
            net.groups, lr_scales(len(net.groups), backbone_lr_mult, layer_decay), strict=True
        )
    ]
    named.append(("head", [n for n in params if n.startswith("head.")], 1.0))
    groups = []
    for name, names, scale in named:
        decay = [params[n] for n in names if params[n].ndim > 1]
        no_decay = [params[n] for n in names if params[n].ndim <= 1]
        for suffix, plist, wd in (("", decay, weight_decay), ("/no_decay", no_decay, 0.0)):
            if plist:
                groups.append(
                    {"params": plist, "lr": lr * scale, "weight_decay": wd, "name": name + suffix}
                )
    return groups
