"""The checks each command runs on its composed config, in the order users meet mistakes."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from transferlab import input_size
from transferlab.checks import data, mode, model, options
from transferlab.errors import UserError
from transferlab.weights_files import tensor_headers


def validate_train(cfg: DictConfig) -> None:
    """Raise UserError on the first value that cannot work, in seconds not after a download."""
    _positive(cfg, "lr", float, "lr=1e-3")
    _positive(cfg, "epochs", int, "epochs=10")
    _positive(cfg, "batch_size", int, "batch_size=64")
    _no_missing(cfg)
    mode.check(cfg)
    options.check(cfg)
    model.weights_exist(cfg.model.get("weights"))
    model.known_name(cfg.model)
    data.image_folder(cfg.data)
    data.source_keys(cfg.data)
    if not (cfg.get("features") or {}).get("layers"):
        # features read from inner layers take smaller images than the full net
        model.large_enough(input_size.resolve(cfg), cfg.model)
    if cfg.model.get("weights"):
        model.weights_fit(Path(str(cfg.model.weights)).expanduser(), cfg.model)


def validate_eval(cfg: DictConfig) -> None:
    _positive(cfg, "batch_size", int, "batch_size=64")
    options.visualize(cfg.get("visualize"))
    ckpt = Path(str(cfg.ckpt_path)).expanduser()
    if not ckpt.is_file():
        raise UserError(
            f"ckpt_path={cfg.ckpt_path} is not a file. Point it at a run's checkpoint, e.g. "
            f"ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt."
        )
    header = tensor_headers.read_header(ckpt)  # a broken file is refused here
    if cfg.get("data"):
        data.image_folder(cfg.data)
        data.source_keys(cfg.data)
        have = data.class_count(cfg.data)
        want = header.hparams.get("num_classes") if header else None
        if have is not None and want is not None and have != want:
            raise data.other_class_count(want, cfg.data.source.get("_target_"), have, ckpt)


def _no_missing(cfg: DictConfig) -> None:
    """A top-level `???` left by an experiment (e.g. the checkpoint to transfer from)."""
    missing = sorted(str(k) for k in cfg if OmegaConf.is_missing(cfg, k))
    if missing:
        raise UserError(
            f"The chosen configs need a value for {', '.join(missing)}, which is ??? (no "
            f"default). Fix: give it on the command line, e.g. {missing[0]}=<value>; the "
            f"comment at the top of the experiment (or config) that sets it says what it is."
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
