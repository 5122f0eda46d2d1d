"""Checks on a composed config that run before torch is imported or anything is built."""

from __future__ import annotations

import difflib
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from transferlab.errors import UserError

# Config keys whose values must never be printed or sent to a logger.
SECRET_KEY = re.compile(r"key|token|password|secret", re.IGNORECASE)

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

    _weights_file(model.get("weights"))
    _timm_name(model)
    _image_folder(cfg.data)


def validate_eval(cfg: DictConfig) -> None:
    _positive(cfg, "batch_size", int, "batch_size=64")
    ckpt = Path(str(cfg.ckpt_path)).expanduser()
    if not ckpt.is_file():
        raise UserError(
            f"ckpt_path={cfg.ckpt_path} is not a file. Point it at a run's checkpoint, e.g. "
            f"ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt."
        )
    if cfg.get("data"):
        _image_folder(cfg.data)


def unknown_timm_model(name: str, known: list[str]) -> UserError:
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.6)
    hint = f"Close names: {', '.join(close)}. " if close else ""
    return UserError(
        f"Unknown timm model {name!r}. {hint}Pick a name from timm.list_models() "
        f"(e.g. model=timm model.name={close[0] if close else 'resnet18'}), or "
        "model=efficientnet_lite0 for offline ImageNet weights."
    )


def _timm_name(model: DictConfig) -> None:
    """Check a timm name against the list shipped for this timm version, before importing it."""
    if not str(model.get("_target_", "")).endswith("timm_classifier"):
        return
    name = str(model.get("name")).split(".")[0]  # "resnet18.a1_in1k": the tag is timm's business
    header, *known = (Path(__file__).parent / "models" / "timm_models.txt").read_text().split()
    try:
        installed = f"timm=={version('timm')}"
    except PackageNotFoundError:
        return
    if header == installed and name not in known and name != "efficientnet_lite0":
        raise unknown_timm_model(name, known)


def _weights_file(weights) -> None:
    if weights and not Path(str(weights)).expanduser().is_file():
        raise UserError(
            f"model.weights={weights} does not exist. Give a .pth/.pt/.safetensors file or a "
            f"run's checkpoint, e.g. model.weights=logs/train/runs/<run>/checkpoints/best.ckpt, "
            f"or model.weights=null."
        )


def _image_folder(data: DictConfig) -> None:
    """A class-per-subfolder tree must exist and hold at least two classes."""
    source = data.get("source") or {}
    if not str(source.get("_target_", "")).endswith("ImageFolderSource"):
        return
    if OmegaConf.is_missing(source, "root"):
        raise UserError(
            "data=image_folder needs the folder of images: add data.source.root=<folder> "
            "(one subfolder per class, or train/, val/, test/ splits of that)."
        )
    root = Path(str(source.get("root"))).expanduser()
    if not root.is_dir():
        raise UserError(
            f"data.source.root={source.get('root')} is not a folder. Point it at a folder with "
            f"one subfolder per class (or train/, val/, test/ splits of that), e.g. "
            f"data.source.root=/data/flowers."
        )
    tree = root / "train" if (root / "train").is_dir() else root
    classes = [p.name for p in tree.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if len(classes) < 2:
        raise UserError(
            f"{tree} holds {len(classes)} class folder(s) {classes}: a classifier needs at "
            f"least two. Put each class's images in its own subfolder, e.g. {tree}/cat/1.jpg "
            f"and {tree}/dog/1.jpg."
        )


def _positive(cfg: DictConfig, key: str, kind: type, example: str) -> None:
    value = cfg.get(key)
    try:
        ok = kind(value) > 0 and kind(value) == float(value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        what = "a positive number" if kind is float else "a whole number of at least 1"
        raise UserError(f"{key}={value} is not valid: {key} must be {what}, e.g. {example}.")


def mask_secrets(node: Any) -> Any:
    """A copy of a plain config with the values of secret-looking keys replaced by ***."""
    if isinstance(node, dict):
        return {
            k: "***"
            if SECRET_KEY.search(str(k)) and v not in (None, "") and not isinstance(v, dict | list)
            else mask_secrets(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [mask_secrets(v) for v in node]
    return node
