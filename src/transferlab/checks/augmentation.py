"""Checks of the augmentation group: known options, values in range; defaults filled in."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from transferlab import datasets
from transferlab.errors import UserError

# The train-time policies data/transforms.py builds (a test keeps the two lists equal).
POLICY_NAMES = ("none", "trivialaugment", "randaugment", "autoaugment", "augmix")
AUGMENTATION_OFF = {
    "crop_scale": None,
    "hflip": 0.0,
    "rotation": 0.0,
    "color_jitter": 0.0,
    "policy": "none",
    "random_erasing": 0.0,
    "mixup": 0.0,
    "cutmix": 0.0,
}


def check_augmentation(
    aug: Mapping[str, Any] | None, classes: Sequence[str] | None = None
) -> dict[str, Any]:
    """The augmentation options with defaults filled in; unknown keys or bad values raise.

    `hflip: auto` flips half the images, except when the classes are the ten digits: a
    mirrored 2 or 5 reads as another glyph (give a number to force it).
    """
    given = dict(aug or {})
    if unknown := sorted(set(given) - set(AUGMENTATION_OFF)):
        raise UserError(
            f"Unknown augmentation option(s) {unknown}. Fix: use only "
            f"{', '.join(AUGMENTATION_OFF)} (see conf/augmentation/basic.yaml)."
        )
    opts = {**AUGMENTATION_OFF, **{k: v for k, v in given.items() if v is not None}}
    if opts["crop_scale"] is not None:
        scale = [float(s) for s in opts["crop_scale"]]
        if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
            raise UserError(
                f"augmentation.crop_scale must be [lo, hi] with 0 < lo <= hi <= 1 (fractions "
                f"of the image area), got {list(opts['crop_scale'])}. Fix: e.g. [0.8, 1.0]."
            )
        opts["crop_scale"] = tuple(scale)
    if opts["hflip"] == "auto":
        opts["hflip"] = 0.5 if datasets.flip_safe(classes) else 0.0
    for key in ("hflip", "random_erasing"):
        if isinstance(opts[key], str) or not 0 <= opts[key] <= 1:
            raise UserError(
                f"augmentation.{key} is a probability in [0, 1], got {opts[key]!r}. "
                f"Fix: e.g. augmentation.{key}=0.25 (0 = off)."
            )
    for key in ("rotation", "color_jitter", "mixup", "cutmix"):
        if isinstance(opts[key], str) or opts[key] < 0:
            raise UserError(f"augmentation.{key} must be >= 0 (0 = off), got {opts[key]!r}.")
    if opts["policy"] not in POLICY_NAMES:
        raise UserError(
            f"Unknown augmentation.policy={opts['policy']!r}. Fix: use one of "
            f"{', '.join(POLICY_NAMES)}, e.g. augmentation=randaugment."
        )
    return opts


def augmentation_active(aug: Mapping[str, Any] | None) -> bool:
    """True when any option would make two passes over the same image differ."""
    opts = check_augmentation(aug)
    return any(opts[k] for k in AUGMENTATION_OFF if k != "policy") or opts["policy"] != "none"
