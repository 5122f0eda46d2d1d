"""Is the input pipeline faster than the training step? Loader vs step, in one run.

    python benchmarks/input_pipeline.py [--size 224] [--batch 32] [--steps 3] [--batches 20]

For each in-memory set (sklearn digits, 8 px greyscale; a CIFAR-shaped set, 32 px RGB,
random pixels: only the shape matters for speed) and each augmentation, it times the
train loader alone plus the device stage the training step would get (uint8 batch ->
resized, normalised, augmented float batch at --size px): images/s. It then times the
training step (forward, backward, SGD step) of AlexNet and EfficientNet-Lite0 at --size px,
and prints loader/step ratios (the goal: >= 3 on CPU). For contrast it also times the
previous per-image path: every image resized and normalised on its own in the loader.
Run it as `make` runs training, with GLIBC_TUNABLES set (see the Makefile): at 224 px the
glibc allocator otherwise dominates the step time.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, Subset
from torchvision.transforms import v2

from transferlab.data import Digits, ImageDataModule, Preprocess
from transferlab.data.sources import TensorImages
from transferlab.data.transforms import resize_steps
from transferlab.models import build_model

CONF = Path(__file__).resolve().parents[1] / "conf"
AUGMENTATIONS = {
    "none": {},
    "basic": OmegaConf.to_container(OmegaConf.load(CONF / "augmentation/basic.yaml")),
    "randaugment": {"crop_scale": [0.8, 1.0], "hflip": "auto", "policy": "randaugment"},
    "augmix+erasing+mixup": {"policy": "augmix", "random_erasing": 0.25, "mixup": 0.2},
}


class CifarShaped:
    """10,000 random 32x32 RGB uint8 images in 10 classes, held like CIFAR-10 would be."""

    channels, image_size = 3, 32

    def __init__(self) -> None:
        self.classes = [str(c) for c in range(10)]

    def prepare(self) -> None:
        """Nothing to fetch."""

    def splits(self, seed: int):
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (10_000, 3, 32, 32), dtype=torch.uint8, generator=g)
        data = TensorImages(images, torch.arange(10_000) % 10)
        return (
            Subset(data, range(8000)),
            Subset(data, range(8000, 9000)),
            Subset(data, range(9000, 10_000)),
        )


def loader_rate(source, pre: Preprocess, aug: dict, batch: int, batches: int) -> float:
    """Images/s of the train loader plus the training device stage."""
    dm = ImageDataModule(source, pre, augmentation=aug, batch_size=batch)
    loader = dm.train_dataloader()
    seen, start = 0, time.perf_counter()
    for i, (images, labels) in enumerate(loader):
        x, _ = dm.prepare_batch(images, labels, train=True)
        seen += len(x)
        if i + 1 == batches:
            break
    return seen / (time.perf_counter() - start)


def per_image_rate(source, pre: Preprocess, batch: int, batches: int) -> float:
    """Images/s of the previous path: each image resized and normalised alone, then stacked."""
    steps = [v2.RGB(), *resize_steps(pre.image_size, pre.interpolation)]
    steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(pre.mean, pre.std)]
    one = v2.Compose(steps)
    loader = DataLoader(source.splits(0)[0], batch_size=batch, collate_fn=list)
    seen, start = 0, time.perf_counter()
    for i, items in enumerate(loader):
        x = torch.stack([one(image) for image, _ in items])
        seen += len(x)
        if i + 1 == batches:
            break
    return seen / (time.perf_counter() - start)


def step_rate(name: str, size: int, batch: int, steps: int) -> float:
    """Images/s of one training step (forward, backward, SGD) at `size` px."""
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / f"model/{name}.yaml"))
    net = build_model(cfg, num_classes=10, in_chans=3, image_size=size, fetch_weights=False)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9)
    x, y = torch.randn(batch, 3, size, size), torch.arange(batch) % 10
    for i in range(steps + 1):  # the first step warms allocators and kernels up
        if i == 1:
            start = time.perf_counter()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch threads: {torch.get_num_threads()}, images {args.size} px, batch {args.batch}")
    print(f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}")
    models = ("alexnet", "efficientnet_lite0")
    # Steps are timed before and after the loaders and averaged: on a shared machine the
    # load drifts, and both timings are printed so the drift shows.
    before = {m: step_rate(m, args.size, args.batch, args.steps) for m in models}
    pre = Preprocess(args.size, 3, (0.5,), (0.5,))
    rows = []
    for label, source in (("digits 8px", Digits()), ("cifar-shaped 32px", CifarShaped())):
        rate = per_image_rate(source, pre, args.batch, args.batches)
        rows.append((label, "previous path: per-image resize+normalise", rate))
        for name, aug in AUGMENTATIONS.items():
            rate = loader_rate(source, pre, aug, args.batch, args.batches)
            rows.append((label, f"loader+device stage, {name}", rate))
    after = {m: step_rate(m, args.size, args.batch, args.steps) for m in models}
    steps = {m: (before[m] + after[m]) / 2 for m in models}
    for m in models:
        drift = f"(before {before[m]:.1f}, after {after[m]:.1f})"
        print(f"train step {m:<18} {steps[m]:7.1f} img/s {drift}")
    for label, what, rate in rows:
        ratios = "  ".join(f"{rate / s:7.1f}x {m}" for m, s in steps.items())
        print(f"{label:<18} {what:<42} {rate:7.1f} img/s = {ratios}")


if __name__ == "__main__":
    main()
