"""The checks each command runs on its composed config, in the order users meet mistakes."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from transferlab import input_size
from transferlab.checks import data, mode, model, options
from transferlab.errors import UserError
from transferlab.extras import missing
from transferlab.weights_files import tensor_headers


def validate_train(cfg: DictConfig) -> None:
    """Raise UserError on the first value that cannot work, in seconds not after a download."""
    positive(cfg, "lr", float, "lr=1e-3")
    positive(cfg, "epochs", int, "epochs=10")
    positive(cfg, "batch_size", int, "batch_size=64")
    _no_missing(cfg)
    mode.check(cfg)
    options.check(cfg)
    model.weights_exist(cfg.model.get("weights"))
    model.known_name(cfg.model)
    data.image_folder(cfg.data)
    data.source_keys(cfg.data)
    data.folds(cfg.data)
    if not (cfg.get("features") or {}).get("layers"):
        # features read from inner layers take smaller images than the full net
        model.large_enough(input_size.resolve(cfg), cfg.model)
    if cfg.model.get("weights"):
        model.weights_fit(Path(str(cfg.model.weights)).expanduser(), cfg.model)


def checkpoint(cfg: DictConfig) -> tuple[Path, tensor_headers.TensorFile | None]:
    """ckpt_path must be a readable checkpoint; its header (hparams) when torch-free."""
    _no_missing(cfg)
    ckpt = Path(str(cfg.ckpt_path)).expanduser()
    if not ckpt.is_file():
        raise UserError(
            f"ckpt_path={cfg.ckpt_path} is not a file. Point it at a run's checkpoint, e.g. "
            f"ckpt_path=logs/train/runs/<run>/checkpoints/best.ckpt."
        )
    return ckpt, tensor_headers.read_header(ckpt)  # a broken file is refused here


def validate_eval(cfg: DictConfig) -> None:
    positive(cfg, "batch_size", int, "batch_size=64")
    options.visualize(cfg.get("visualize"))
    pictures = cfg.get("visualize") or {}
    if pictures.get("enabled") and pictures.get("gradcam") and not find_spec("pytorch_grad_cam"):
        raise missing("pytorch_grad_cam", "viz", "eval.py visualize=true (its Grad-CAM heatmaps)")
    ckpt, header = checkpoint(cfg)
    if cfg.get("data"):
        data.image_folder(cfg.data)
        data.source_keys(cfg.data)
        have = data.class_count(cfg.data)
        want = header.hparams.get("num_classes") if header else None
        if have is not None and want is not None and have != want:
            raise data.other_class_count(want, cfg.data.source.get("_target_"), have, ckpt)
        names = data.class_names(cfg.data)
        if names is not None and header and header.hparams.get("classes"):
            data.class_order(list(header.hparams["classes"]), names, ckpt)
        data.eval_split(cfg.data, (cfg.get("eval") or {}).get("split"))


def _no_missing(cfg: DictConfig) -> None:
    """A top-level `???` left by an experiment (e.g. the checkpoint to transfer from)."""
    missing = sorted(str(k) for k in cfg if OmegaConf.is_missing(cfg, k))
    if not missing:
        return
    where = "the comment at the top of the experiment (or config) that sets it says what it is"
    if source := cfg.get("source_run"):  # a transfer experiment's own run to start from
        command = " ".join(["python train.py", *map(str, source)])
        where = f"it is the checkpoints/best.ckpt of the run `{command}`, which comes first"
    raise UserError(
        f"The chosen configs need a value for {', '.join(missing)}, which is ??? (no "
        f"default). Fix: give it on the command line, e.g. {missing[0]}=<value>; {where}."
    )


def positive(cfg: DictConfig, key: str, kind: type, example: str) -> None:
    value = cfg.get(key)
    try:
        ok = kind(value) > 0 and kind(value) == float(value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        what = "a positive number" if kind is float else "a whole number of at least 1"
        raise UserError(f"{key}={value} is not valid: {key} must be {what}, e.g. {example}.")
