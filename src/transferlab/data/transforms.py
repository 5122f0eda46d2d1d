"""Turn any source image into a normalised float tensor, with optional train-time augmentation.

The keys of the `augmentation` config group are the keyword arguments read here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode

from transferlab.errors import UserError

INTERPOLATIONS = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}
AUGMENTATION_OFF = {
    "crop_scale": None,
    "hflip": 0.0,
    "rotation": 0.0,
    "color_jitter": 0.0,
    "trivial_augment": False,
}


@dataclass
class Preprocess:
    """What every image becomes: `channels` x `image_size`² (None: native size), normalised."""

    image_size: int | None
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise UserError(f"channels must be 1 or 3, got {self.channels!r}.")
        size = self.image_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise UserError(
                f"data.image_size must be a positive whole number or null, got {size!r}. "
                "Fix: e.g. data.image_size=224, or null for the model's choice."
            )
        if self.interpolation not in INTERPOLATIONS:
            raise UserError(
                f"Unknown interpolation {self.interpolation!r}. Fix: use one of "
                f"{', '.join(INTERPOLATIONS)}."
            )
        self.mean = self._per_channel("mean", self.mean)
        self.std = self._per_channel("std", self.std)
        if min(self.std) <= 0:
            raise UserError(f"data.std must be positive, got {list(self.std)}.")

    def _per_channel(self, name: str, values: Any) -> tuple[float, ...]:
        values = (values,) if isinstance(values, int | float) else tuple(map(float, values))
        if len(values) == 1:
            return values * self.channels
        if len(values) != self.channels:
            raise UserError(
                f"data.{name} has {len(values)} values {list(values)} but images have "
                f"{self.channels} channel(s). Fix: give one value, or one per channel."
            )
        return values


def check_augmentation(aug: Mapping[str, Any] | None) -> dict[str, Any]:
    """The augmentation options with defaults filled in; unknown keys or bad values raise."""
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
    if not 0 <= opts["hflip"] <= 1:
        raise UserError(f"augmentation.hflip is a probability in [0, 1], got {opts['hflip']}.")
    for key in ("rotation", "color_jitter"):
        if opts[key] < 0:
            raise UserError(f"augmentation.{key} must be >= 0 (0 = off), got {opts[key]}.")
    return opts


def augmentation_active(aug: Mapping[str, Any] | None) -> bool:
    """True when any option would make two passes over the same image differ."""
    opts = check_augmentation(aug)
    return any(opts[k] for k in AUGMENTATION_OFF)


class RandomResizedCropKeepSize(torch.nn.Module):
    """RandomResizedCrop back to the input's own size, for when no target size is set."""

    def __init__(self, scale: tuple[float, float], interpolation: InterpolationMode) -> None:
        super().__init__()
        self.scale, self.interpolation = scale, interpolation

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        size = tuple(image.shape[-2:])
        crop = v2.RandomResizedCrop(size, self.scale, interpolation=self.interpolation)
        return crop(image)


def build_transforms(
    pre: Preprocess, augmentation: Mapping[str, Any] | None, train: bool
) -> v2.Compose:
    """PIL image or uint8 tensor -> float tensor (channels, S, S); augmented only if `train`."""
    opts = check_augmentation(augmentation)  # a typo fails for eval transforms too
    aug = opts if train else AUGMENTATION_OFF
    interpolation = INTERPOLATIONS[pre.interpolation]
    steps: list[Any] = [v2.ToImage(), v2.RGB() if pre.channels == 3 else v2.Grayscale(1)]
    steps += _geometry(pre.image_size, aug["crop_scale"], interpolation)
    if aug["hflip"]:
        steps.append(v2.RandomHorizontalFlip(aug["hflip"]))
    if aug["rotation"]:
        # Tensor rotation supports only nearest and bilinear.
        steps.append(v2.RandomRotation(aug["rotation"], interpolation=InterpolationMode.BILINEAR))
    if aug["color_jitter"]:
        s = aug["color_jitter"]
        steps.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s))
    if aug["trivial_augment"]:
        steps.append(v2.TrivialAugmentWide())
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(pre.mean, pre.std)]
    return v2.Compose(steps)


def _geometry(
    size: int | None, crop_scale: tuple[float, float] | None, interpolation: InterpolationMode
) -> list[Any]:
    if crop_scale is not None:
        if size is None:
            return [RandomResizedCropKeepSize(crop_scale, interpolation)]
        return [v2.RandomResizedCrop(size, crop_scale, interpolation=interpolation)]
    if size is None:
        return []
    # Shorter side to `size`, then the centre square: keeps the aspect ratio of non-square images.
    return [v2.Resize(size, interpolation=interpolation, antialias=True), v2.CenterCrop(size)]
