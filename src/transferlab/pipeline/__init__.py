"""The one place that turns a composed config into data, model and trainer, then runs them:
building (building.py), fit and test (here), testing a checkpoint (evaluation.py)."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
from hydra.utils import instantiate
from omegaconf import DictConfig

from transferlab import modes
from transferlab.features import prefix, slim
from transferlab.features import training as feature_training
from transferlab.finetune import freeze
from transferlab.pipeline.building import (
    _check_input_size,
    _metrics,
    build_datamodule,
    build_module,
    build_run,
    build_trainer,
    to_dict,
)
from transferlab.pipeline.evaluation import evaluate
from transferlab.runs import distributed, startup
from transferlab.runs.convergence import Convergence
from transferlab.runs.timing import RunTimer, job_started
from transferlab.search.pruning import TrialPruning

__all__ = [
    "_check_input_size",
    "build_datamodule",
    "build_module",
    "build_run",
    "build_trainer",
    "evaluate",
    "preview",
    "run_timed",
    "to_dict",
    "train",
]
log = logging.getLogger("transferlab")


def preview(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """preview=true: write plots/augmentation.png and train nothing."""
    from transferlab.data.preview import write_preview

    source = instantiate(cfg.data.source)
    module = build_module(cfg, source)
    pre = module.preprocess
    augmentation = to_dict(cfg.get("augmentation"))
    images = build_datamodule(cfg.data, source, pre, cfg.batch_size, cfg.seed, augmentation)
    path = write_preview(images, output_dir / "plots" / "augmentation.png")
    log.info("preview=true: wrote %s; no training.", path)
    return {"metrics": {}, "epochs": 0, "preview": str(path)}


def train(cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    """Fit and test as configured; returns the fields of summary.json."""
    started = job_started()
    L.seed_everything(cfg.seed, workers=True)
    if cfg.get("preview"):
        return preview(cfg, output_dir)
    module, images, trainer = build_run(cfg, output_dir)
    freeze.log_group_table(module.net)
    if cfg.get("compile"):
        module.net.compile()  # in place: state_dict keys and checkpoints stay as they are
    if module.cut is not None:
        datamodule = prefix.cached_datamodule(cfg, module, images, trainer)
    else:
        datamodule = feature_training.cached_datamodule(cfg, module, images, trainer)
    startup.gc_after_startup()
    metrics: dict[str, float] = {}
    extra: dict[str, Any] = {}
    if cfg.train and cfg.get("tune") and not cfg.get("ckpt_path"):
        from transferlab import tune  # a resumed run keeps the lr its start chose

        extra["lr_find"] = tune.find_lr(
            to_dict(cfg.tune), trainer, module, datamodule, output_dir / "plots"
        )
    if cfg.train:
        start = time.perf_counter()
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
        train_time_s = round(time.perf_counter() - start, 3)
        if (startup_s := RunTimer.of(trainer).startup_s(started)) is not None:
            # Imports, config checks, build and any feature pass: what a user waits through.
            extra["startup_s"] = startup_s
            log.info("Start-up to the first training batch: %.1f s", startup_s)
        if module.feature_input and cfg.features.get("save_backbone", True):
            _complete_checkpoints(module, trainer)
        metrics.update(_metrics(trainer))
        if (convergence := Convergence.of(trainer)) is not None:
            extra |= convergence.verdict(trainer)
        if (pruned := TrialPruning.pruned_epoch_of(trainer)) is not None:
            extra.update(status="pruned", pruned_after_epoch=pruned)
    if cfg.test:
        best = getattr(trainer.checkpoint_callback, "best_model_path", "") or None
        if cfg.train and best is None:
            log.warning("No best checkpoint was saved; testing the weights as they are now.")
        trainer.test(module, datamodule=datamodule, ckpt_path=best)
        metrics.update(_metrics(trainer))
    trainable, total = module.param_counts()
    return {
        "metrics": metrics,
        "params": {"trainable": trainable, "total": total},
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,  # optimizer steps: what a fair comparison equalises
        "train_time_s": train_time_s if cfg.train else 0.0,
        "best_checkpoint": getattr(trainer.checkpoint_callback, "best_model_path", None),
        **extra,
        **({"teacher": str(cfg.distill.teacher)} if modes.of(cfg).teacher else {}),
    }


def _complete_checkpoints(module, trainer: L.Trainer) -> None:
    folder = getattr(trainer.checkpoint_callback, "dirpath", None)
    if folder and trainer.is_global_zero:
        slim.complete_checkpoints(module, Path(folder))
    trainer.strategy.barrier("checkpoints complete")


def run_timed(fn, cfg: DictConfig, output_dir: Path) -> dict[str, Any]:
    start = time.perf_counter()
    with distributed.job_scope():
        result = fn(cfg, output_dir)
    result["wall_time_s"] = round(time.perf_counter() - start, 3)
    return result
