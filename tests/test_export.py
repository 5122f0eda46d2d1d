"""export.py: each format loads without transferlab and gives the checkpoint's logits."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from tests.conftest import QUIET, run_cli, run_dirs
from transferlab.module import load_run

# Loads an export with only its own library (and numpy/PIL-free inputs), never transferlab.
LOADERS = {
    "onnx": """
import onnxruntime as ort
s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
out = torch.from_numpy(s.run(None, {"images": x.numpy()})[0])
""",
    "torchscript": "out = torch.jit.load(path)(x)",
    "safetensors": """
import timm
from safetensors.torch import load_file
net = timm.create_model(**card["timm"]).eval()
net.load_state_dict(load_file(path))
out = net(x)
""",
}
PROGRAM = """
import json, sys, torch
folder, inputs, expected = sys.argv[1:]
card = json.load(open(folder + "/model.json"))
path = folder + "/" + card["file"]
x = torch.load(inputs)
with torch.inference_mode():
{loader}
assert "transferlab" not in sys.modules
print(float((out - torch.load(expected)).abs().max()))
"""


def _test_images(run, images):
    """The test images as the checkpoint prepares them, and its logits for them."""
    from transferlab.data.image_folder import ImageFolderSource
    from transferlab.inference.predict import loader

    module = load_run(run / "checkpoints" / "best.ckpt").eval()
    files = ImageFolderSource(images).splits(0)[2].files
    from transferlab.data.transforms import BatchTransform

    (batch, _), *_ = list(loader(files, module.preprocess, len(files), 0))
    x = BatchTransform(module.preprocess, [])(batch)
    with torch.inference_mode():
        return x, module.net(x)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript", "safetensors"])
def test_export_runs_without_transferlab_with_the_checkpoints_logits(fmt, folder_run, tmp_path):
    run, images = folder_run
    proc = run_cli(
        "export.py",
        f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}",
        f"format={fmt}",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out,) = run_dirs(tmp_path / "logs", "export/runs/*")
    card = json.loads((out / "model.json").read_text())
    assert card["classes"] == ["cat", "dog", "owl"] and card["input_size"] == [3, 32, 32]
    assert {"mean", "std", "interpolation", "channels", "backbone"} <= set(card)
    x, logits = _test_images(run, images)
    torch.save(x, tmp_path / "x.pt")
    torch.save(logits, tmp_path / "logits.pt")
    indented = "\n".join("    " + line for line in LOADERS[fmt].strip().splitlines())
    program = PROGRAM.format(loader=indented)
    paths = [str(out), str(tmp_path / "x.pt"), str(tmp_path / "logits.pt")]
    check = subprocess.run(
        [sys.executable, "-c", program, *paths], capture_output=True, text=True, timeout=300
    )
    assert check.returncode == 0, check.stderr[-3000:]
    assert float(check.stdout.split()[-1]) <= 1e-4


def test_an_unknown_format_is_refused_naming_the_three(folder_run, tmp_path):
    run, _ = folder_run
    proc = run_cli(
        "export.py", f"ckpt_path={run / 'checkpoints' / 'best.ckpt'}", "format=tflite", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "onnx" in proc.stderr and "torchscript" in proc.stderr and "safetensors" in proc.stderr
