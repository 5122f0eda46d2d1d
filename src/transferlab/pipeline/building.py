"""Config -> datamodule, module and trainer: `train` and `evaluate` both build through these
functions, so a checkpoint is always evaluated the way it was trained."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.loggers import CSVLogger, Logger
from omegaconf import DictConfig, OmegaConf

from transferlab import input_size, modes
from transferlab.checks.model import too_small
from transferlab.data.datamodule import ImageDataModule
from transferlab.data.transforms import Preprocess
from transferlab.features import prefix
from transferlab.features import training as feature_training
from transferlab.models.classifier import Classifier
from transferlab.models.measure_facts import check_built
from transferlab.module import ClassifierModule
from transferlab.runs import distributed, resume
from transferlab.runs.checkpoints import AtomicCheckpointIO
from transferlab.runs.loggers import instantiate_logger
from transferlab.runs.timing import RunTimer

log = logging.getLogger("transferlab")

# Lightning adds its own console handler; Hydra's root handlers already print and keep
# train.log, so without this every Lightning line appears twice.
for _name in ("lightning", "lightning.pytorch", "lightning.fabric"):
    logging.getLogger(_name).handlers.clear()


def to_dict(cfg: Any) -> Any:
    return OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg


def build_module(cfg: DictConfig, source) -> ClassifierModule:
    """The LightningModule for this config, pretrained weights loaded and policy applied."""
    mode = modes.of(cfg)
    if mode.weights == "expected" and not modes.starts_from_weights(cfg):
        log.warning(
            "model=%s has no pretrained weights or model.weights file: mode=%s trains it from "
            "random init, the same as mode=scratch.",
            cfg.model.get("name"),
            mode.name,
        )
    model = to_dict(cfg.model)
    if mode.ignores_weights and model.get("weights"):
        # A transfer sweep's baseline arm (mode=finetune,feature_extract,scratch) shares
        # the experiment's model.weights; scratch means random init, so it is not loaded.
        log.info(
            "mode=%s: random init; model.weights=%s is not loaded.", mode.name, model["weights"]
        )
        model["weights"] = None
    size = input_size.resolve(cfg)
    # The checkpoint's preprocessing records the size decided here, not the config's null.
    data = {**to_dict(cfg.data), "seed": cfg.seed, "image_size": size.pixels}
    module = ClassifierModule(
        model=model,
        mode=to_dict(cfg.mode),
        optimizer=to_dict(cfg.optimizer),
        scheduler=to_dict(cfg.get("scheduler")) or None,
        num_classes=len(source.classes),
        in_chans=source.channels,
        image_size=size.pixels,
        label_smoothing=cfg.get("label_smoothing", 0.0),
        features=to_dict(cfg.get("features")),
        head=to_dict(cfg.get("head")),
        distill=to_dict(cfg.get("distill")) if mode.teacher else None,
        classes=list(source.classes),
        data=data,
        fetch_weights=True,
        feature_input=feature_training.trains_on_features(cfg),
    )
    check_built(cfg.model, module.net)  # under other timm/torchvision releases
    module.train_behind(prefix.plan(cfg, module.net))
    # The checkpoint records how inputs were prepared, so eval.py prepares them the same way.
    log.info(size.describe(module.preprocess.image_size))
    _check_input_size(module.net, module.preprocess, cfg.model.get("name"), size.origin)
    return module


def _check_input_size(net: Classifier, pre: Preprocess, name: str | None, origin: str = "") -> None:
    """One forward pass on a blank image now, rather than a cryptic conv error mid-epoch."""
    if not pre.image_size:
        return
    flags = {m: m.training for m in net.modules()}
    net.eval()  # no BatchNorm statistics may move
    try:
        with torch.inference_mode():
            net(torch.zeros(1, pre.channels, pre.image_size, pre.image_size))
    except RuntimeError as err:
        raise too_small(pre.image_size, name, str(err).splitlines()[0], origin) from None
    finally:
        for module, training in flags.items():
            module.training = training


def build_datamodule(
    data_cfg: dict | DictConfig,
    source,
    preprocess: Preprocess,
    batch_size: int,
    seed: int,
    augmentation: dict | None = None,
) -> ImageDataModule:
    return ImageDataModule(
        source=source,
        preprocess=preprocess,
        augmentation=augmentation,
        batch_size=batch_size,
        num_workers=data_cfg.get("num_workers", "auto"),
        pin_memory=data_cfg.get("pin_memory", "auto"),
        seed=seed,
        balance=data_cfg.get("balance", "none"),
        folds=data_cfg.get("folds", 5),
        fold=data_cfg.get("fold"),
        jpeg_draft=data_cfg.get("jpeg_draft", True),
    )


def build_trainer(cfg: DictConfig, output_dir: Path, extra: list | None = None) -> L.Trainer:
    """Trainer with the configured callbacks (then `extra`) and loggers; CSV is always on."""
    distributed.install()
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    if cfg.get("mode"):  # eval.py's config has none
        callbacks += modes.callbacks(cfg)
    if ema := (cfg.get("model") or {}).get("ema"):
        from transferlab.averaging import EMA

        callbacks.append(EMA(decay=float(ema)))
    callbacks.append(RunTimer())  # time/epoch_s and start-up, after the others' epoch work
    callbacks += extra or []  # last, as before: eval.py's pictures record the test pass
    csv_logger = CSVLogger(save_dir=str(output_dir), name="", version="csv")
    if cfg.get("ckpt_path") and (output_dir / "csv" / "metrics.csv").is_file():
        resume.reload_csv_rows(csv_logger, cfg.ckpt_path)  # resuming in place
    loggers: list[Logger] = [csv_logger]
    for node in (cfg.get("logger") or {}).values():
        if node and (logger := instantiate_logger(node, cfg)) is not None:
            loggers.append(logger)
    # head=svm|logreg is fitted before fit: one epoch logs, checkpoints and validates it
    fitted = cfg.get("mode") and feature_training.fits_head(cfg)
    overrides = {"max_epochs": 1} if fitted else {}
    return instantiate(
        cfg.trainer,
        **overrides,
        callbacks=callbacks,
        logger=loggers,
        plugins=[AtomicCheckpointIO()],
        _convert_="partial",
    )


def _metrics(trainer: L.Trainer) -> dict[str, float]:
    return {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}


def build_run(
    cfg: DictConfig, output_dir: Path
) -> tuple[ClassifierModule, ImageDataModule, L.Trainer]:
    """Module, image datamodule and trainer of a training config, in dependency order."""
    source = instantiate(cfg.data.source)
    module = build_module(cfg, source)
    datamodule = build_datamodule(
        cfg.data,
        source,
        module.preprocess,
        cfg.batch_size,
        cfg.seed,
        augmentation=to_dict(cfg.get("augmentation")),
    )
    return module, datamodule, build_trainer(cfg, output_dir)
