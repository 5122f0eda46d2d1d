"""Checks of the mode group, from the mode table's row: weights it needs, what it unfreezes,
its teacher."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from transferlab import model_facts, modes
from transferlab.checks.model import check_unfreeze
from transferlab.errors import UserError
from transferlab.weights_files import tensor_headers


def check(cfg: DictConfig) -> modes.Mode:
    """The config's mode, or UserError on the first of its needs the config does not meet."""
    mode = modes.of(cfg)
    model = cfg.model
    if mode.trains == "unfreeze":
        if model.get("unfreeze") is None or int(model.unfreeze) < 0:
            raise UserError(
                f"mode={mode.name} trains the last model.unfreeze layer groups, but "
                f"model.unfreeze is {model.get('unfreeze')}. Give a count from 0 (head only) "
                f"upwards, e.g. model.unfreeze=2."
            )
        groups = model_facts.layer_groups(model)
        if groups is not None:
            check_unfreeze(model.unfreeze, groups)
    if mode.weights == "required" and not modes.starts_from_weights(cfg):
        raise UserError(
            f"mode={mode.name} freezes backbone layers, but model={model.get('name')} has no "
            f"pretrained weights (model.pretrained=false, model.weights=null): features of a "
            f"random network are meaningless. Use mode=scratch to train it from random init, "
            f"or give weights with model.pretrained=true or model.weights=<file>."
        )
    if mode.teacher:
        _teacher(cfg.distill)
    return mode


def _teacher(distill: DictConfig) -> None:
    example = "distill.teacher=logs/train/runs/<run>/checkpoints/best.ckpt"
    if OmegaConf.is_missing(distill, "teacher") or not distill.teacher:
        raise UserError(f"mode=distill needs the teacher's checkpoint: add {example}.")
    file = Path(str(distill.teacher)).expanduser()
    if not file.is_file():
        raise UserError(
            f"distill.teacher={distill.teacher} is not a file. Give a run's checkpoint, e.g. "
            f"{example}."
        )
    header = tensor_headers.read_header(file)
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
