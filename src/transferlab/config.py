"""Checks on a composed config that run before torch is imported or anything is built."""

from __future__ import annotations

from omegaconf import DictConfig

from transferlab.errors import UserError

MODES = ("scratch", "finetune", "feature_extract", "partial", "gradual")


def validate_train(cfg: DictConfig) -> None:
    """Raise UserError on the first value that cannot work, in seconds not after a download."""
    _positive(cfg, "lr", float, "lr=1e-3")
    _positive(cfg, "epochs", int, "epochs=10")
    _positive(cfg, "batch_size", int, "batch_size=64")
    mode = cfg.mode.name
    if mode not in MODES:
        raise UserError(
            f"Unknown mode {mode!r}. Choose one of {', '.join(MODES)}, e.g. mode=finetune."
        )
    model = cfg.model
    if mode == "partial" and (model.get("unfreeze") is None or int(model.unfreeze) < 0):
        raise UserError(
            f"mode=partial trains the last model.unfreeze layer groups, but model.unfreeze is "
            f"{model.get('unfreeze')}. Give a count from 0 (head only) upwards, "
            f"e.g. model.unfreeze=2."
        )
    if mode in ("feature_extract", "partial", "gradual") and not (
        model.get("pretrained") or model.get("weights")
    ):
        raise UserError(
            f"mode={mode} freezes backbone layers, but model={model.get('name')} has no "
            f"pretrained weights (model.pretrained=false, model.weights=null): features of a "
            f"random network are meaningless. Use mode=scratch to train it from random init, "
            f"or give weights with model.pretrained=true or model.weights=<file>."
        )


def validate_eval(cfg: DictConfig) -> None:
    _positive(cfg, "batch_size", int, "batch_size=64")


def _positive(cfg: DictConfig, key: str, kind: type, example: str) -> None:
    value = cfg.get(key)
    try:
        ok = kind(value) > 0 and kind(value) == float(value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        what = "a positive number" if kind is float else "a whole number of at least 1"
        raise UserError(f"{key}={value} is not valid: {key} must be {what}, e.g. {example}.")
