"""How a mode=feature_extract run trains its head: on features computed once, when it can.

With the backbone frozen in eval mode and no train-time augmentation, every epoch would
feed the head the same features, so they are computed in one pass per split (through the
`FeatureCache`, so a sweep computes them once in total) and Lightning trains the head on
them: same metrics, logs, checkpoints and early stopping. Otherwise the frozen backbone
runs on every batch, and the log says once why.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import warnings
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from transferlab import defaults, heads, modes
from transferlab.checks.augmentation import augmentation_active
from transferlab.data.balance import draw_weights
from transferlab.data.datamodule import EpochShuffle, ImageDataModule, Shard, rank_and_world
from transferlab.errors import UserError
from transferlab.features import cache as cache_io
from transferlab.features.extract import compute_features
from transferlab.features.heads import fit_head

log = logging.getLogger("transferlab")

SPLITS = ("train", "val", "test")
# Their code decides the numbers a feature pass yields, so their text is part of the key.
_CODE = (
    "data/sources.py",
    "data/digits.py",
    "data/torchvision_sets.py",
    "data/image_folder.py",
    "data/decode.py",
    "data/memory.py",
    "data/transforms.py",
    "features/extract.py",
)
_PACKAGES = ("torch", "torchvision", "timm", "numpy", "pillow", "scikit-learn")


def _plain(cfg) -> dict:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)


def why_not_cached(cfg: DictConfig) -> str | None:
    """Why the head cannot train on features computed once (None: it can)."""
    features = cfg.get("features") or {}
    if defaults.get(features, "features.cache") == "off":
        return "features.cache=off"
    if augmentation_active(_plain(cfg.get("augmentation") or {})):
        return "train-time augmentation is on, so each epoch's images differ (augmentation=none)"
    if defaults.get(cfg.model, "model.frozen_bn") == "train":
        return "model.frozen_bn=train lets BatchNorm statistics follow each batch"
    if cfg.trainer.get("fast_dev_run"):
        return "trainer.fast_dev_run runs a single batch"
    return None


def trains_on_features(cfg: DictConfig) -> bool:
    """Whether the head trains on features computed once (logged when it cannot and why)."""
    if not modes.of(cfg).feature_cache:
        return False
    if fits_head(cfg):
        return True  # scikit-learn fits the head on one pass of features, cached or not
    if why := why_not_cached(cfg):
        log.info("Feature cache off: the frozen backbone runs on every batch, because %s.", why)
        return False
    return True


def fits_head(cfg: DictConfig) -> bool:
    """head=svm|logreg: fitted by scikit-learn on the train features, not trained."""
    return modes.of(cfg).feature_cache and heads.of(cfg.get("head")).fitted_by_sklearn


def record_backbone_digest(module) -> str:
    """The frozen backbone's weights digest as they are now (a pure function of its
    tensors), recorded in the module's hparams: the feature cache keys on it, and a head
    saved without its backbone checks the one it is put back on."""
    digest = cache_io.state_digest(module.net.backbone)
    module.hparams["features"]["weights_digest"] = digest
    return digest


def cached_datamodule(
    cfg: DictConfig, module, images: ImageDataModule, trainer: L.Trainer
) -> L.LightningDataModule:
    """The datamodule the head trains on: cached features when the module reads them, else
    `images`. For head=svm|logreg it fits that head on the train features first."""
    if not modes.of(cfg).feature_cache:
        return images
    record_backbone_digest(module)  # of the weights as they are now: the cache key reads it
    if not module.feature_input:
        return images
    features = module.hparams["features"]
    cache = None if cfg.features.cache == "off" else feature_cache(cfg, module, features)
    if trainer.local_rank == 0:  # what fit would do first (data.source.download=true fetches)
        images.prepare_data()
    images.setup()
    splits = {s: split_features(cfg, module, images, s, cache) for s in SPLITS}
    balance = cfg.data.get("balance", "none")
    if fits_head(cfg):
        head = module.hparams["head"]
        fit_head(module.net.head, head, *splits["train"], cfg.seed, balance != "none")
        # Its training_step returns None on purpose: nothing is left to optimise.
        warnings.filterwarnings("ignore", message="`training_step` returned `None`")
    return FeatureDataModule(splits, batch_size=cfg.batch_size, seed=cfg.seed, balance=balance)


def feature_cache(
    cfg: DictConfig,
    module,
    features: Mapping,
    what: Mapping | None = None,
    memory: bool = False,
) -> cache_io.FeatureCache:
    """The cache of this run's features; `what` names other activations (a prefix's cut)."""
    root: Path | None = Path(cfg.features.cache_dir)
    if cfg.features.cache == "memory" or memory:
        root = None
    else:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            if cfg.features.cache == "disk":
                raise UserError(
                    f"features.cache=disk but features.cache_dir={root} cannot be created "
                    f"({err}). Point features.cache_dir at a writable folder, or use "
                    "features.cache=memory."
                ) from err
            log.warning("Cannot create %s (%s); keeping features in memory instead.", root, err)
            root = None
    key = {
        "format": cache_io.FORMAT,
        # The digest, not the weights file's path, identifies the weights: a moved file hits.
        "backbone": {k: module.hparams["model"].get(k) for k in ("_target_", "name")},
        "weights_digest": features["weights_digest"],
        "data": {"source": _plain(cfg.data.source), "seed": cfg.seed},
        "preprocess": module.hparams["preprocess"],
        "features": dict(what)
        if what is not None
        else {k: features.get(k) for k in ("layers", "pool", "l2norm", "batch_size")},
        "device": _device(cfg),
        "versions": _versions(),
    }
    return cache_io.FeatureCache(key, root)


def split_features(
    cfg: DictConfig,
    module,
    images: ImageDataModule,
    split: str,
    cache,
    backbone: torch.nn.Module | None = None,
    compute_with=compute_features,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A split's (features, labels) from `backbone` (default: the whole one), cached."""
    dataset = getattr(images, f"{split}_set")

    def compute():
        return compute_with(
            backbone if backbone is not None else module.net.backbone,
            images.loader(dataset, int(cfg.features.batch_size)),
            device=_device(cfg),
            prepare=images.eval_batch,  # what val, test and eval.py feed the model
        )

    if cache is None:
        return cache_io.timed_pass(split, compute, "not cached (features.cache=off)")
    # The transforms' repr names every step and parameter: a changed transform misses.
    item = getattr(dataset, "transform", None)
    fingerprint = f"{cache_io.dataset_fingerprint(dataset)}|{item!r}|{images.eval_batch!r}"
    return cache.get(split, fingerprint, compute, expected=len(dataset))


def _device(cfg: DictConfig) -> str:
    accelerator = str(cfg.trainer.get("accelerator", "auto"))
    return "cuda" if accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available() else "cpu"


def _versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "absent"
    root = Path(__file__).resolve().parents[1]
    found["transferlab code"] = hashlib.sha256(
        b"".join((root / rel).read_bytes() for rel in _CODE)
    ).hexdigest()
    return found


class FeatureDataModule(L.LightningDataModule):
    """(features, label) batches of each split; train shuffled per (seed, epoch) like images."""

    def __init__(
        self,
        splits: Mapping[str, tuple[torch.Tensor, torch.Tensor]],
        batch_size: int,
        seed: int,
        balance: str = "none",
    ) -> None:
        super().__init__()
        self.sets = {split: TensorDataset(*tensors) for split, tensors in splits.items()}
        self.batch_size, self.seed, self.balance = batch_size, seed, balance

    def train_labels(self) -> torch.Tensor:
        return self.sets["train"].tensors[1]

    def train_dataloader(self) -> DataLoader:
        weights = draw_weights(self.train_labels()) if self.balance == "sampler" else None
        sampler = EpochShuffle(
            len(self.sets["train"]), self.seed, *rank_and_world(self.trainer), weights=weights
        )
        return DataLoader(self.sets["train"], batch_size=self.batch_size, sampler=sampler)

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader("test")

    def _eval_loader(self, split: str) -> DataLoader:
        sampler = Shard(len(self.sets[split]), *rank_and_world(self.trainer))
        return DataLoader(self.sets[split], batch_size=self.batch_size, sampler=sampler)
