"""Checks of the options that shape training and evaluation: the scheduler's interval,
tune=lr_find, model.ema, the feature cache and head=, and eval.py's visualize.*."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from transferlab import defaults, heads, modes
from transferlab.checks.augmentation import augmentation_active
from transferlab.errors import UserError


def check(cfg: DictConfig) -> None:
    """Raise UserError on the first of these options that cannot work."""
    _scheduler(cfg.get("scheduler"))
    _tune(cfg)
    _ema(cfg.model.get("ema"))
    _features_and_head(cfg)


def _scheduler(scheduler) -> None:
    interval = (scheduler or {}).get("interval", "epoch")
    if interval not in ("step", "epoch"):
        raise UserError(
            f"scheduler.interval={interval} is not valid: a schedule is stepped after every "
            f"optimizer step or every epoch. Use scheduler.interval=step or "
            "scheduler.interval=epoch."
        )


def _tune(cfg: DictConfig) -> None:
    head = heads.of(cfg.get("head"))
    if cfg.get("tune") and not head.needs_optimizer:
        raise UserError(
            f"tune={cfg.tune.get('name')} searches a learning rate, but head={head.name} is fitted "
            f"by scikit-learn without one. Use head=linear with it, or leave tune out."
        )


def _ema(decay) -> None:
    try:
        ok = decay is None or 0.0 < float(decay) < 1.0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise UserError(
            f"model.ema={decay} is not valid: it is the decay of the weights' moving average, "
            f"between 0 and 1 (exclusive). Use e.g. model.ema=0.999, or model.ema=null for none."
        )


CACHE_MODES = ("auto", "memory", "disk", "off")


def _plain(node) -> dict:
    return (
        OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else dict(node)
    )


def _features_and_head(cfg: DictConfig) -> None:
    """Feature-cache and head= options that cannot work, alone or with the mode."""
    features, head = _plain(cfg.get("features") or {}), _plain(cfg.get("head") or {})
    mode = modes.of(cfg)
    if defaults.get(features, "features.cache") not in CACHE_MODES:
        raise UserError(
            f"Unknown features.cache={features.get('cache')!r}. Choose one of "
            f"{', '.join(CACHE_MODES)}, e.g. features.cache=auto."
        )
    if int(features.get("batch_size", 1)) < 1:
        raise UserError(
            f"features.batch_size={features.get('batch_size')} must be at least 1, "
            "e.g. features.batch_size=256."
        )
    if str(defaults.get(features, "features.dtype")) not in ("float32", "float16"):
        raise UserError(
            f"Unknown features.dtype={features.get('dtype')!r}. Choose float32 (exact) or "
            "float16 (half the memory of mode=partial's stored activations)."
        )
    if not 0 <= float(defaults.get(features, "features.memory_share")) <= 1:
        raise UserError(
            f"features.memory_share={features.get('memory_share')} must be a share of RAM "
            "between 0 and 1, e.g. features.memory_share=0.25 (0: always the disk cache)."
        )
    row = heads.of(head)
    name = row.name
    if row.fitted_by_sklearn and not mode.feature_cache:
        raise UserError(
            f"head={name} is fitted once on frozen backbone features, but mode={mode.name} "
            f"trains backbone layers. Use mode=feature_extract head={name}, or head=linear."
        )
    if row.fitted_by_sklearn and augmentation_active(_plain(cfg.get("augmentation") or {})):
        raise UserError(
            f"head={name} is fitted once on fixed features, so train-time augmentation cannot "
            f"apply. Use augmentation=none with it, or head=linear to train on augmented images."
        )
    if not defaults.get(features, "features.save_backbone") and not mode.feature_cache:
        raise UserError(
            f"features.save_backbone=false leaves the backbone out of checkpoints, but "
            f"mode={mode.name} trains it. Use it with mode=feature_extract only, or keep "
            "features.save_backbone=true."
        )
    frozen_bn = defaults.get(cfg.model, "model.frozen_bn")
    if not defaults.get(features, "features.save_backbone") and frozen_bn == "train":
        raise UserError(
            "features.save_backbone=false stores only the head, but model.frozen_bn=train lets "
            "BatchNorm statistics change during training, so the backbone must be saved. Use "
            "model.frozen_bn=eval, or features.save_backbone=true."
        )


EMBEDDINGS = ("tsne", "pca")


def visualize(opts) -> None:
    """eval.py's visualize.* values; layer names are checked against the model once built."""
    if not opts or not opts.get("enabled"):
        return
    if opts.get("embedding") not in EMBEDDINGS:
        raise UserError(
            f"visualize.embedding={opts.get('embedding')} is not a method here. Choose "
            f"{' or '.join(EMBEDDINGS)}, e.g. visualize.embedding=pca."
        )
    for key, least in (
        ("max_images", 1),
        ("feature_map_images", 1),
        ("gradcam", 0),
        ("embedding_max_points", 3),
    ):
        value = opts.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise UserError(
                f"visualize.{key}={value} is not valid: it must be a whole number of at least "
                f"{least}, e.g. visualize.{key}={max(least, 8)}."
            )
    layers = opts.get("layers")
    if layers is not None and not (
        OmegaConf.is_list(layers) and all(isinstance(x, str) for x in layers)
    ):
        raise UserError(
            f"visualize.layers={layers} is not a list of layer names. Give layer groups or "
            f"module paths in brackets, e.g. visualize.layers=[block1,block2], or null."
        )
