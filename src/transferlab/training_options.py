"""Checks, before torch loads, of the options that shape training itself: the scheduler's
interval, tune=lr_find, model.ema and mode=distill."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from transferlab import tensor_files
from transferlab.errors import UserError


def check(cfg: DictConfig) -> None:
    """Raise UserError on the first of these options that cannot work."""
    _scheduler(cfg.get("scheduler"))
    _tune(cfg)
    _ema(cfg.model.get("ema"))
    if cfg.mode.name == "distill":
        _distill(cfg.distill)


def _scheduler(scheduler) -> None:
    interval = (scheduler or {}).get("interval", "epoch")
    if interval not in ("step", "epoch"):
        raise UserError(
            f"scheduler.interval={interval} is not valid: a schedule is stepped after every "
            f"optimizer step or every epoch. Use scheduler.interval=step or "
            "scheduler.interval=epoch."
        )


def _tune(cfg: DictConfig) -> None:
    head = (cfg.get("head") or {}).get("name", "linear")
    if cfg.get("tune") and head != "linear":
        raise UserError(
            f"tune={cfg.tune.get('name')} searches a learning rate, but head={head} is fitted "
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


def _distill(distill: DictConfig) -> None:
    example = "distill.teacher=logs/train/runs/<run>/checkpoints/best.ckpt"
    if OmegaConf.is_missing(distill, "teacher") or not distill.teacher:
        raise UserError(f"mode=distill needs the teacher's checkpoint: add {example}.")
    file = Path(str(distill.teacher)).expanduser()
    if not file.is_file():
        raise UserError(
            f"distill.teacher={distill.teacher} is not a file. Give a run's checkpoint, e.g. "
            f"{example}."
        )
    header = tensor_files.read_header(file)
    if header is not None and not header.is_transferlab_checkpoint:
        raise UserError(
            f"distill.teacher={distill.teacher} holds bare weights, not a run's checkpoint: the "
            f"teacher's architecture and preprocessing come from a checkpoint that train.py "
            f"wrote. Train the teacher with train.py first and give {example}."
        )
    temperature, alpha = distill.get("temperature"), distill.get("alpha")
    if not (isinstance(temperature, int | float) and temperature > 0):
        raise UserError(
            f"distill.temperature={temperature} must be a positive number, e.g. "
            "distill.temperature=4."
        )
    if not (isinstance(alpha, int | float) and 0 <= alpha <= 1):
        raise UserError(
            f"distill.alpha={alpha} must lie in [0, 1] (the teacher's share of the loss), "
            "e.g. distill.alpha=0.5."
        )
