"""Partial fine-tuning on activations computed once: the frozen prefix of the backbone.

When the first backbone groups stay frozen for the whole run (mode=partial), frozen layers
sit in eval mode and no augmentation is on (`training.why_not_cached`, the feature cache's
conditions), the activations entering the first trainable layer are a fixed function of
each image. They are computed once per split through the `FeatureCache` (keyed like
features, plus the cut) and every epoch runs only the trainable tail and the head.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from transferlab import compat, defaults, modes
from transferlab.data.datamodule import ImageDataModule
from transferlab.features import training
from transferlab.features.extract import compute_features

log = logging.getLogger("transferlab")

DTYPES = {"float32": torch.float32, "float16": torch.float16}


@dataclass
class BackboneCut:
    """A backbone as steps input -> output, cut before its first trainable step.

    `finish` turns the last step's output into the backbone's (timm's `forward_head`:
    pooling). The cut holds references only: state_dict keys stay those of the network.
    """

    steps: list[tuple[str, nn.Module]]
    finish: Callable[[torch.Tensor], torch.Tensor]
    at: int  # steps[:at] are the frozen prefix

    @property
    def after(self) -> str:
        """The module path whose output is cached."""
        return self.after_step(self.at)

    def after_step(self, stop: int) -> str:
        return self.steps[stop - 1][0]

    def part(self, start: int = 0, stop: int | None = None) -> nn.Module:
        """Frozen steps [start, stop) (default: the prefix) as one module for a feature pass;
        its layers stay the network's own."""
        stop = self.at if stop is None else stop
        return nn.Sequential(*(module for _, module in self.steps[start:stop])).eval()

    def first_step_of(self, param_names: set[str]) -> int:
        """Index of the first step holding one of `param_names` (the network's names)."""
        for i, (path, module) in enumerate(self.steps):
            if any(f"backbone.{path}.{n}" in param_names for n, _ in module.named_parameters()):
                return i
        return len(self.steps)

    def tail(self, x: torch.Tensor) -> torch.Tensor:
        for _, module in self.steps[self.at :]:
            x = module(x)
        return self.finish(x)


def _flat(path: str, module: nn.Module) -> list[tuple[str, nn.Module]]:
    if isinstance(module, nn.Sequential):
        return [
            s for name, child in module.named_children() for s in _flat(f"{path}{name}.", child)
        ]
    return [(path.rstrip("."), module)]


def backbone_steps(backbone: nn.Module) -> tuple[list, Callable] | None:
    """(steps, finish) of the backbones whose forward is a plain chain; None for others."""
    if isinstance(backbone, nn.Sequential):  # torchvision AlexNet/VGG, our CNN
        return _flat("", backbone), nn.Identity()
    # timm's EfficientNet family: forward_features = conv_stem, bn1, blocks, conv_head, bn2
    names = ("conv_stem", "bn1", "blocks", "conv_head", "bn2")
    if type(backbone).__name__ == "EfficientNet" and all(hasattr(backbone, n) for n in names):
        steps = [s for n in names for s in _flat(f"{n}.", getattr(backbone, n))]
        return steps, backbone.forward_head
    return None


def _fixed(module: nn.Module) -> bool:
    """Frozen, and computing the same output for the same input in every epoch."""
    if any(p.requires_grad for p in module.parameters()):
        return False
    stateful = compat.stateful_while_training()  # dropout draws, batch statistics
    return not any(m.training and isinstance(m, stateful) for m in module.modules())


def find_cut(backbone: nn.Module) -> tuple[BackboneCut | None, str]:
    """The longest fixed prefix of `backbone`, or None and why there is none."""
    found = backbone_steps(backbone)
    if found is None:
        return None, f"no cut is known for a {type(backbone).__name__} backbone"
    steps, finish = found
    at = 0
    while at < len(steps) and _fixed(steps[at][1]):
        at += 1
    if at == 0:
        return None, "the backbone's first layer trains, so no frozen prefix precedes it"
    return BackboneCut(steps, finish, at), ""


def plan(cfg: DictConfig, net: nn.Module) -> BackboneCut | None:
    """The cut a run trains behind, or None; the log says which path it takes and why."""
    mode = modes.of(cfg)
    if mode.unfreezes_during_run:
        log.info(
            "Prefix cache off: mode=%s unfreezes groups during the run, so a group inside "
            "each phase's prefix trains later; the frozen layers run on every batch.",
            mode.name,
        )
        return None
    if not mode.prefix_cache:
        return None
    if why := training.why_not_cached(cfg):
        log.info("Prefix cache off: the frozen layers run on every batch, because %s.", why)
        return None
    cut, why = find_cut(net.backbone)
    if cut is None:
        log.info("Prefix cache off: the frozen layers run on every batch, because %s.", why)
        return None
    log.info(
        "Prefix cache on: the frozen backbone up to %s (%d of %d steps) runs once per image; "
        "each epoch runs the last %d steps and the head.",
        cut.after,
        cut.at,
        len(cut.steps),
        len(cut.steps) - cut.at,
    )
    return cut


def dtype_of(cfg: DictConfig) -> torch.dtype:
    """features.dtype (checks.options refused any other than float32 and float16)."""
    return DTYPES[str(defaults.get(cfg.get("features"), "features.dtype"))]


def bytes_per_image(
    cut: BackboneCut, images: ImageDataModule, dtype: torch.dtype, stop: int | None = None
) -> int:
    """Memory of one image's stored activations after `stop` steps (default: the prefix)."""
    stop = cut.at if stop is None else stop
    first, _ = next(iter(images.loader(images.train_set, 1)))
    with torch.inference_mode():
        out = cut.part(0, stop)(images.eval_batch(first))
    return out.numel() * torch.empty(0, dtype=dtype).element_size()


def total_ram() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def parallel_jobs() -> bool:
    """Whether this job's sweep runs its jobs in other processes (joblib, submitit...)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return False
    launcher = str((HydraConfig.get().get("launcher") or {}).get("_target_", ""))
    return bool(launcher) and not launcher.endswith("BasicLauncher")


def keep_in_memory(cfg: DictConfig, needed: int, world_size: int) -> bool:
    """features.cache=auto: in this process when all splits fit features.memory_share of
    RAM and no other process needs them; else the disk cache, which parallel jobs and DDP
    ranks share under its lock."""
    chosen = str(defaults.get(cfg.features, "features.cache"))
    if chosen in ("memory", "disk"):
        return chosen == "memory"
    share = float(defaults.get(cfg.features, "features.memory_share"))
    budget = share * total_ram()
    others = f"{world_size} DDP processes" if world_size > 1 else ""
    others = others or ("parallel sweep jobs" if parallel_jobs() else "")
    fits = needed <= budget and not others
    log.info(
        "Prefix cache: %.1f MB of activations, %s %.0f%% of RAM (%.1f GB)%s: %s.",
        needed / 1e6,
        "within" if needed <= budget else "over",
        share * 100,
        budget / share / 1e9,
        f", shared by {others}" if others else "",
        "kept in memory" if fits else f"on disk under {cfg.features.cache_dir}",
    )
    return fits


def sweep_unfreeze() -> list[int]:
    """The model.unfreeze values of the multirun this job belongs to ([] outside one)."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode

    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return []
    saved = Path(HydraConfig.get().sweep.dir) / "multirun.yaml"  # what the sweeper ran
    if not saved.is_file():
        return []
    hydra = OmegaConf.load(saved).hydra
    given = [
        *hydra.overrides.task,
        *(f"{k}={v}" for k, v in (hydra.sweeper.get("params") or {}).items()),
    ]
    values: list[str] = []
    for override in OverridesParser.create().parse_overrides(given):
        if override.key_or_group == "model.unfreeze":
            sweep = override.is_sweep_override()
            values += override.sweep_string_iterator() if sweep else [str(override.value())]
    return [int(v) for v in values if str(v).isdigit()]


def shared_base(cut: BackboneCut, net, values: list[int]) -> int:
    """Steps of the prefix every job of a `model.unfreeze` sweep shares: the shallowest cut
    among them, computed from images once; each job runs on from it to its own cut."""
    groups = net.groups
    firsts = [
        cut.first_step_of({n for g in groups[len(groups) - k :] for n in g.param_names})
        for k in values
        if 0 < k <= len(groups)
    ]
    base = min([cut.at, *firsts])
    return base if base > 0 else cut.at


def cached_datamodule(
    cfg: DictConfig, module, images: ImageDataModule, trainer: L.Trainer
) -> training.FeatureDataModule:
    """Each split's activations at `module.cut` (cached), as (activation, label) batches.

    In a `model.unfreeze` sweep they run on from the sweep's shared base (cached too)."""
    cut, dtype = module.cut, dtype_of(cfg)
    if trainer.local_rank == 0:
        images.prepare_data()
    images.setup()
    base = shared_base(cut, module.net, sweep_unfreeze())
    stops = sorted({base, cut.at})
    per_image = sum(bytes_per_image(cut, images, dtype, stop) for stop in stops)
    sizes = sum(len(getattr(images, f"{s}_set")) for s in training.SPLITS)
    memory = keep_in_memory(cfg, sizes * per_image, trainer.world_size)
    digest = training.record_backbone_digest(module)

    def cache_at(stop: int):
        what = {"prefix_steps": stop, "dtype": str(dtype), "batch_size": cfg.features.batch_size}
        what["prefix_after"] = cut.after_step(stop)
        features = {"weights_digest": digest}
        return training.feature_cache(cfg, module, features, what=what, memory=memory)

    def stored(backbone, batches, device, prepare):
        found, labels = compute_features(backbone, batches, device=device, prepare=prepare)
        return found.to(dtype), labels

    def split(name: str):
        found = training.split_features(
            cfg, module, images, name, cache_at(base), cut.part(0, base), stored
        )
        if base == cut.at:
            return found

        def run_on(backbone, _images, device, prepare):
            batches = DataLoader(TensorDataset(*found), batch_size=cfg.features.batch_size)
            return stored(backbone, batches, device, prepare=lambda x: x.float())

        log.info("Prefix cache: %s runs on from the sweep's shared %s", name, cut.after_step(base))
        return training.split_features(
            cfg, module, images, name, cache_at(cut.at), cut.part(base), run_on
        )

    splits = {name: split(name) for name in training.SPLITS}
    return training.FeatureDataModule(splits, batch_size=cfg.batch_size, seed=cfg.seed)
