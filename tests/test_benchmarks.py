"""The benchmark scripts run end to end (they print speed ratios; no test asserts a time)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_overhead_benchmark_times_both_loops_over_every_batch_of_a_real_run():
    script = ROOT / "benchmarks/overhead.py"
    small = ["model=cnn", "data.image_size=12", "extras.print_config=false"]
    out = subprocess.run(
        [sys.executable, str(script), "--epochs", "2", *small],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    epochs = re.findall(r"epoch (\d): transferlab ([\d.]+) s, plain loop ([\d.]+) s", out.stdout)
    assert [e[0] for e in epochs] == ["1", "2"]  # epoch 0 warms up, uncounted
    assert all(float(ours) > 0 and float(plain) > 0 for _, ours, plain in epochs)
    assert re.search(r"median ratio transferlab / plain over 2 epochs: \d+\.\d{3}", out.stdout)


@pytest.mark.slow
def test_image_files_benchmark_prints_both_throughput_ratios_and_the_startup_ratio(tmp_path):
    script = ROOT / "benchmarks/image_files.py"
    small = ["--images", "21", "--repeats", "1", "--workers", "1", "--batch", "8"]
    out = subprocess.run(
        [sys.executable, str(script), *small, "--files", "500", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ratios = re.findall(r"(\d+) px: .* ratio ours/torchvision (\d+\.\d+)x", out.stdout)
    assert [size for size, _ in ratios] == ["224", "64"] and all(float(r) > 0 for _, r in ratios)
    assert re.search(r"listing \(500 images\): first [\d.]+ s, second [\d.]+ s", out.stdout)
    assert re.search(r"ratio second/first listing \d+\.\d{3}", out.stdout)


def test_predict_benchmark_times_both_paths_over_the_same_files(folder_run):
    run, _ = folder_run
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks/predict.py"), "--ckpt",
         str(run / "checkpoints" / "best.ckpt"), "--images", "8", "--pairs", "1"],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert re.search(r"pair 0: transferlab [\d.]+ images/s, plain loop [\d.]+ images/s", out.stdout)
    assert re.search(r"median ratio transferlab / plain over 1 pairs: \d+\.\d{3}", out.stdout)
