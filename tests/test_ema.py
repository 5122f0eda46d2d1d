"""model.ema: validation, test and best.ckpt use the moving average of the weights."""

from __future__ import annotations

import torch

from tests.conftest import QUIET, read_checkpoint, run_cli, run_dirs, summary

# The same run as the cnn_run fixture, plus an average that barely moves from step one.
RUN = ["model=cnn", "mode=scratch", "epochs=2", QUIET]


def test_a_slow_ema_keeps_val_near_the_first_step_and_eval_reproduces_its_test_acc(
    tmp_path, cnn_run
):
    proc = run_cli("train.py", *RUN, "model.ema=0.9999", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    ema, raw = summary(run)["metrics"], summary(cnn_run)["metrics"]
    # Same seed and data: only the averaging differs. The raw weights learn digits in two
    # epochs; an average with decay 0.9999 over ~40 steps is still the first step's net.
    assert raw["val/acc"] > 0.8 and ema["val/acc"] < raw["val/acc"] - 0.3
    assert ema["test/acc"] < raw["test/acc"] - 0.3
    ckpt = read_checkpoint(run, "best.ckpt")
    assert "current_model_state" in ckpt  # the raw weights ride along for resuming
    assert not all(
        torch.equal(v, ckpt["current_model_state"][k]) for k, v in ckpt["state_dict"].items()
    )

    again = run_cli("eval.py", f"ckpt_path={run / 'checkpoints/best.ckpt'}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    (evaluated,) = run_dirs(tmp_path / "logs", "eval/runs/*")
    assert abs(summary(evaluated)["metrics"]["test/acc"] - ema["test/acc"]) < 1e-6


def test_an_ema_decay_outside_zero_one_is_refused_before_training(tmp_path):
    proc = run_cli("train.py", *RUN, "model.ema=1.5", cwd=tmp_path)
    assert proc.returncode == 2 and "model.ema=1.5" in proc.stderr and "0.999" in proc.stderr
