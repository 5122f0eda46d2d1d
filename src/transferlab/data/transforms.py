"""Images to normalised float tensors, with optional train-time augmentation.

Two stages (see docs/guide.md, *Input pipeline*): a per-item stage that yields uint8 CxHxW
tensors of one size so they can be batched (nothing at all for in-memory tensor sets;
decode, channels and resize for image files), and a batch stage on the training device
(`BatchTransform`: channels, resize, normalise, random erasing). Random policies are drawn
per image wherever images are still single: for in-memory sets at their native size on the
device, for image files in the loader's workers. The keys of the `augmentation` config
group are the keyword arguments read here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode

from transferlab.errors import UserError

log = logging.getLogger("transferlab")

INTERPOLATIONS = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}
POLICIES = {
    "none": None,
    "trivialaugment": v2.TrivialAugmentWide,
    "randaugment": v2.RandAugment,
    "autoaugment": v2.AutoAugment,
    "augmix": v2.AugMix,
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

    @classmethod
    def following(cls, data: Mapping[str, Any], net) -> Preprocess:
        """Data options win (image_size, mean, std); the rest follows the network's weights
        (`net.data_config`: timm's input size, mean, std, interpolation)."""
        channels, height, _ = net.data_config["input_size"]
        return cls(
            image_size=data.get("image_size") or height,
            channels=channels,
            mean=data.get("mean") or net.data_config["mean"],
            std=data.get("std") or net.data_config["std"],
            interpolation=net.data_config.get("interpolation", "bilinear"),
        )

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


class RandomResizedCropKeepSize(nn.Module):
    """RandomResizedCrop back to the input's own size, for when no target size is set."""

    def __init__(self, scale: tuple[float, float], interpolation: InterpolationMode) -> None:
        super().__init__()
        self.scale, self.interpolation = scale, interpolation

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        size = tuple(image.shape[-2:])
        crop = v2.RandomResizedCrop(size, self.scale, interpolation=self.interpolation)
        return crop(image)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, interpolation={self.interpolation}"


def random_ops(opts: Mapping[str, Any], crop_to: int | None, interpolation: str) -> list[Any]:
    """The per-image random steps (uint8 in, uint8 out); `crop_to=None` keeps the size."""
    mode = INTERPOLATIONS[interpolation]
    steps: list[Any] = []
    if opts["crop_scale"] is not None:
        if crop_to is None:
            steps.append(RandomResizedCropKeepSize(opts["crop_scale"], mode))
        else:
            steps.append(v2.RandomResizedCrop(crop_to, opts["crop_scale"], interpolation=mode))
    if opts["hflip"]:
        steps.append(v2.RandomHorizontalFlip(opts["hflip"]))
    if opts["rotation"]:
        # Tensor rotation supports only nearest and bilinear.
        steps.append(v2.RandomRotation(opts["rotation"], interpolation=InterpolationMode.BILINEAR))
    if opts["color_jitter"]:
        s = opts["color_jitter"]
        steps.append(v2.ColorJitter(brightness=s, contrast=s, saturation=s))
    if policy := POLICIES[opts["policy"]]:
        steps.append(policy())
    return steps


def resize_steps(size: int | None, interpolation: str) -> list[Any]:
    """Shorter side to `size`, then the centre square: keeps non-square images' aspect ratio."""
    if size is None:
        return []
    mode = INTERPOLATIONS[interpolation]
    return [v2.Resize(size, interpolation=mode, antialias=True), v2.CenterCrop(size)]


def item_transform(pre: Preprocess, opts: Mapping[str, Any], train: bool) -> v2.Compose:
    """One image file's PIL image -> uint8 tensor (channels, S, S), in a loader worker.

    Files differ in size, so they are resized (or randomly cropped) here to be batched;
    in training the per-image augmentation is drawn here too, in parallel workers.
    """
    steps: list[Any] = [v2.ToImage(), v2.RGB() if pre.channels == 3 else v2.Grayscale(1)]
    if train:
        crop = opts["crop_scale"] is not None
        steps += ([] if crop else resize_steps(pre.image_size, pre.interpolation)) + random_ops(
            opts, pre.image_size, pre.interpolation
        )
    else:
        steps += resize_steps(pre.image_size, pre.interpolation)
    return v2.Compose(steps)


class BatchTransform(nn.Module):
    """A uint8 (N, C, H, W) batch -> normalised float (N, channels, S, S), where it lies.

    Channels, resize and normalisation are batched ops. The per-image `random` steps run at
    the images' native size before the resize, one draw per image (a v2 transform given a
    whole batch draws once for all of it); at 8-32 px they cost a fraction of what they
    would at 224. Random erasing comes after normalisation, also per image.
    """

    def __init__(self, pre: Preprocess, random: Sequence[Any], erasing: float = 0.0) -> None:
        super().__init__()
        self.channels = pre.channels
        self.random = v2.Compose(list(random)) if random else None
        resize = resize_steps(pre.image_size, pre.interpolation)
        self.resize = v2.Compose(resize) if resize else nn.Identity()
        self.normalize = v2.Compose(
            [v2.ToDtype(torch.float32, scale=True), v2.Normalize(pre.mean, pre.std)]
        )
        self.erase = v2.RandomErasing(erasing) if erasing else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] > self.channels:
            images = _channels(images, self.channels)
        if self.random is not None:
            # Grey images go through the policy before becoming RGB: a third of the work.
            images = _each(self.random, images)
        x = self.normalize(_channels(self.resize(images), self.channels))
        return _each(self.erase, x) if self.erase is not None else x


def _each(transform: nn.Module, images: torch.Tensor) -> torch.Tensor:
    if images.device.type != "cpu":
        return torch.stack([transform(image) for image in images])
    # On one small image, waking intra-op threads costs more than the op: measured on 2
    # cores, a 32 px rotation took 16.6 ms with 2 threads and 0.15 ms with 1.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.stack([transform(image) for image in images])
    finally:
        torch.set_num_threads(threads)


def _channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1)
    return v2.functional.rgb_to_grayscale(images, num_output_channels=1)


def batch_mix(opts: Mapping[str, Any], num_classes: int) -> v2.Transform | None:
    """MixUp and/or CutMix (one of them per batch when both are set), or None."""
    mixes = [
        cls(alpha=float(opts[key]), num_classes=num_classes)
        for key, cls in (("mixup", v2.MixUp), ("cutmix", v2.CutMix))
        if opts[key]
    ]
    if not mixes:
        return None
    return mixes[0] if len(mixes) == 1 else v2.RandomChoice(mixes)
