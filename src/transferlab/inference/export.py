"""export.py: a run's network as ONNX, TorchScript or timm-loadable safetensors + model.json.

The exported file needs no transferlab: model.json says how to prepare an image (size,
mean, std, interpolation, channels) and which class each output is. Each export is run
once on a blank batch and must give the checkpoint's logits (`export.check`).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from transferlab import heads
from transferlab.errors import UserError
from transferlab.extras import require
from transferlab.inference.formats import FORMATS
from transferlab.module import ClassifierModule, load_run

log = logging.getLogger("transferlab")

TOLERANCE = 1e-4


def model_card(module: ClassifierModule, fmt: str) -> dict[str, Any]:
    """What model.json records: everything a user needs to feed the file and read its output."""
    hp, pre = module.hparams, module.preprocess
    card = {
        "format": fmt,
        "file": FORMATS[fmt],
        "classes": list(hp["classes"]),
        "input_size": [pre.channels, pre.image_size, pre.image_size],
        "channels": pre.channels,
        "resize": "shorter side to image_size, then centre crop (antialiased)",
        "output": "logits" if heads.of(hp.get("head")).calibrated else "decision scores",
        **{k: v for k, v in asdict(pre).items() if k in ("mean", "std", "interpolation")},
        "pixel_range": "RGB (or grey) in [0, 1] before mean/std",
        "backbone": _backbone_name(module),
        "head": (hp.get("head") or {}).get("name", "linear"),
    }
    if fmt == "safetensors":
        card["timm"] = _timm_layout(module)["create_model"]
    return card


def _backbone_name(module: ClassifierModule) -> dict[str, str]:
    target = str(module.hparams["model"].get("_target_", ""))
    library = target.rsplit(".", 1)[-1].removesuffix("_classifier")  # timm | torchvision | ...
    arch = getattr(getattr(module.net.backbone, "pretrained_cfg", None), "get", lambda _: None)(
        "architecture"
    )
    return {"library": library, "name": arch or str(module.hparams["model"].get("name"))}


def _timm_layout(module: ClassifierModule) -> dict[str, Any]:
    """The timm model these tensors load into, and the head's name in it; else UserError."""
    net = module.net
    cfg = getattr(net.backbone, "pretrained_cfg", None)
    linears = [m for m in net.head.modules() if isinstance(m, nn.Linear)]
    if cfg is None or len(linears) != 1 or not cfg.get("classifier"):
        raise UserError(
            "format=safetensors writes tensors that timm.create_model loads, which needs a timm "
            f"backbone (model={module.hparams['model'].get('name')}) and a one-layer head "
            f"(this head has {len(linears)} linear layers). Fix: export with format=onnx or "
            "format=torchscript, which hold any network."
        )
    return {
        "classifier": cfg["classifier"],
        "linear": linears[0],
        "create_model": {
            "model_name": cfg["architecture"],
            "num_classes": linears[0].out_features,
            "in_chans": module.preprocess.channels if net.data_config else 3,
        },
    }


def _timm_state(module: ClassifierModule) -> dict[str, torch.Tensor]:
    layout = _timm_layout(module)
    state = {k: v.contiguous() for k, v in module.net.backbone.state_dict().items()}
    state[f"{layout['classifier']}.weight"] = layout["linear"].weight.detach().contiguous()
    state[f"{layout['classifier']}.bias"] = layout["linear"].bias.detach().contiguous()
    return state


def write(module: ClassifierModule, fmt: str, folder: Path, opset: int) -> Path:
    """The network of `module` in `fmt`, in `folder`; returns the file."""
    net, pre = module.net.eval(), module.preprocess
    example = torch.zeros(2, pre.channels, pre.image_size, pre.image_size)
    path = folder / FORMATS[fmt]
    if fmt == "onnx":
        require("onnx", "export", "format=onnx")
        torch.onnx.export(
            net,
            (example,),
            str(path),
            input_names=["images"],
            output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    elif fmt == "torchscript":
        with torch.no_grad():
            torch.jit.save(torch.jit.trace(net, example), str(path))
    else:
        from safetensors.torch import save_file

        save_file(_timm_state(module), str(path))
    return path


def check(module: ClassifierModule, fmt: str, path: Path) -> float:
    """Largest |logit difference| between the file and the checkpoint on a seeded batch."""
    pre = module.preprocess
    x = torch.randn(
        3, pre.channels, pre.image_size, pre.image_size, generator=torch.Generator().manual_seed(0)
    )
    with torch.inference_mode():
        want = module.net.eval()(x)
    if fmt == "onnx":
        ort = require("onnxruntime", "export", "format=onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    elif fmt == "torchscript":
        with torch.inference_mode():
            got = torch.jit.load(str(path))(x)
    else:
        import timm
        from safetensors.torch import load_file

        net = timm.create_model(**_timm_layout(module)["create_model"]).eval()
        net.load_state_dict(load_file(str(path)))
        with torch.inference_mode():
            got = net(x)
    return float((got - want).abs().max())


def run(cfg, output_dir: Path) -> dict[str, Any]:
    """The export command: the network file and model.json in the run folder."""
    start = time.perf_counter()
    fmt = str(cfg.format)
    module = load_run(Path(str(cfg.ckpt_path)).expanduser())
    if not module.preprocess.image_size:
        raise UserError("This checkpoint has no fixed input size, so no file can be traced for it.")
    card = model_card(module, fmt)
    path = write(module, fmt, output_dir, int(cfg.export.opset))
    (output_dir / "model.json").write_text(json.dumps(card, indent=2) + "\n")
    result: dict[str, Any] = {"metrics": {}, "epochs": 0, "export": str(path)}
    if cfg.export.check:
        diff = check(module, fmt, path)
        if diff > TOLERANCE:
            raise RuntimeError(f"The exported {fmt} file's logits differ by {diff:.2e} (> 1e-4).")
        result["metrics"]["export/max_abs_diff"] = diff
        log.info(
            "%s: logits within %.1e of the checkpoint's (max |diff| %.2e)", path, TOLERANCE, diff
        )
    log.info("Wrote %s and %s", path, output_dir / "model.json")
    result["wall_time_s"] = round(time.perf_counter() - start, 3)
    return result
