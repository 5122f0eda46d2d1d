"""What predict.py and export.py check before torch loads (after checks.commands' own)."""

from __future__ import annotations

from omegaconf import DictConfig

from transferlab.checks.commands import checkpoint, positive
from transferlab.errors import UserError
from transferlab.inference.formats import FORMATS
from transferlab.inference.inputs import list_inputs


def validate_predict(cfg: DictConfig) -> None:
    checkpoint(cfg)
    positive(cfg.predict, "batch_size", int, "predict.batch_size=64")
    positive(cfg.predict, "top_k", int, "predict.top_k=5")
    list_inputs(str(cfg.input))  # a wrong path is refused here, not after torch loads


def validate_export(cfg: DictConfig) -> None:
    checkpoint(cfg)
    if cfg.format not in FORMATS:
        raise UserError(
            f"format={cfg.format} is not one export.py writes. Fix: format=onnx (onnxruntime), "
            "format=torchscript (torch.jit.load) or format=safetensors (timm.create_model)."
        )
