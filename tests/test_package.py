"""transferlab as a real package: a built wheel in a brand-new venv, run from an empty folder.

The new venv gets the wheel itself (not editable, no clone on sys.path); its dependencies
are borrowed from this environment's site-packages through a .pth file, so the test runs
offline. Everything transferlab reads comes from the wheel: configs, model facts.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

from tests.conftest import ROOT, run_dirs
from tests.lock_files import stack
from tests.torchvision_files import write_image_folder


def _run(args, cwd, timeout=900, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PROJECT_ROOT")}
    proc = subprocess.run(
        args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**clean, **env}
    )
    assert proc.returncode == 0, f"{args}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a new venv holding the wheel built from this clone."""
    tmp = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(tmp / "dist"), str(ROOT)], cwd=tmp)  # fmt: skip
    (wheel,) = (tmp / "dist").glob("transferlab-*.whl")
    _run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], cwd=tmp)
    python = tmp / "venv" / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                     cwd=tmp).stdout.strip())  # fmt: skip
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q",
          str(wheel)], cwd=tmp)  # fmt: skip
    return python.parent


def _pip_check_our_stack(python: Path, cwd: Path) -> None:
    """pip check, read for transferlab and what it pulls in: the dependencies are borrowed
    from this environment, whose unrelated packages (a CI image's own) may conflict."""
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "check"],
                          cwd=cwd, capture_output=True, text=True)  # fmt: skip
    ours = stack()
    broken = [line for line in proc.stdout.splitlines()
              if line.split() and canonicalize_name(line.split()[0]) in ours]  # fmt: skip
    assert "transferlab" in ours and not broken, "\n".join(broken)


@pytest.mark.slow
def test_installed_wheel_trains_predicts_and_exports_from_an_empty_folder(installed, tmp_path):
    work = tmp_path / "empty"
    work.mkdir()
    where = _run([installed / "python", "-c", "import transferlab; print(transferlab.__file__)"],
                 cwd=work).stdout  # fmt: skip
    assert str(installed.parent) in where and str(ROOT) not in where
    _pip_check_our_stack(installed / "python", work)
    quick = ["epochs=1", "data.source.limit=100", "data.source.eval_limit=60"]
    _run([installed / "transferlab", "train", *quick, "extras.print_config=false"], cwd=work)
    (run,) = run_dirs(work / "logs", "train/runs/*")
    assert json.loads((run / "summary.json").read_text())["status"] == "completed"
    ckpt = run / "checkpoints" / "best.ckpt"

    write_image_folder(tmp_path / "new")
    _run([installed / "transferlab", "predict", f"ckpt_path={ckpt}", f"input={tmp_path / 'new'}"],
         cwd=work)  # fmt: skip
    (out,) = run_dirs(work / "logs", "predict/runs/*")
    with open(out / "predictions.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 18

    _run([installed / "python", "-m", "transferlab", "export", f"ckpt_path={ckpt}",
          "format=onnx"], cwd=work)  # fmt: skip
    (exported,) = run_dirs(work / "logs", "export/runs/*")
    assert (exported / "model.onnx").is_file()
    # export checked onnxruntime's logits against the checkpoint's; its summary says by how much
    metrics = json.loads((exported / "summary.json").read_text())["metrics"]
    assert metrics["export/max_abs_diff"] <= 1e-4
