"""Precision and speed options that run on CPU: bf16-mixed, gradient accumulation,
channels_last, gradient clipping, torch.compile (slow: ~35 s)."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import QUIET, read_checkpoint, run_cli, run_dirs, summary

RUN = ["model=cnn", "mode=scratch", "epochs=2", QUIET]


def test_bf16_mixed_with_accumulation_and_channels_last_trains_on_cpu(tmp_path, cnn_run):
    proc = run_cli(
        "train.py",
        *RUN,
        "trainer.precision=bf16-mixed",
        "trainer.accumulate_grad_batches=2",
        "model.channels_last=true",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    assert summary(run)["metrics"]["test/acc"] > 0.6
    plain = read_checkpoint(cnn_run, "last.ckpt")["global_step"]
    ckpt = read_checkpoint(run, "last.ckpt")
    # One optimizer step per two batches (an odd epoch ends with a step of its own).
    assert ckpt["global_step"] in (plain // 2, plain // 2 + 2)
    conv = next(v for v in ckpt["state_dict"].values() if v.dim() == 4 and v.shape[1] > 1)
    assert conv.dtype == torch.float32  # mixed precision keeps float32 master weights
    assert conv.is_contiguous(memory_format=torch.channels_last)
    assert not conv.is_contiguous()


def test_gradient_clipping_holds_sgd_steps_down(tmp_path):
    proc = run_cli(
        "train.py",
        *RUN,
        "optimizer=sgd",
        "lr=0.05",
        "trainer.gradient_clip_val=1e-6",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    # Steps of at most lr * 1e-6 leave the random network untrained (unclipped: ~0.9).
    assert summary(run)["metrics"]["val/acc"] < 0.4


@pytest.mark.slow
def test_compile_trains_and_keeps_plain_checkpoint_keys(tmp_path, cnn_run):
    proc = run_cli("train.py", *RUN, "compile=true", "model.ema=0.99", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    assert summary(run)["status"] == "completed"
    # Compiled in place: no "_orig_mod." in the keys, so eval.py and model.weights= read it.
    compiled, plain = (read_checkpoint(r, "last.ckpt")["state_dict"] for r in (run, cnn_run))
    assert compiled.keys() == plain.keys()
