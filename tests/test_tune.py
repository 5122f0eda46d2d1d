"""tune=lr_find: Lightning's range test, its plot, its suggestion, and training with it."""

from __future__ import annotations

import math

from tests.conftest import QUIET, read_checkpoint, run_cli, run_dirs, summary


def test_lr_find_plots_a_finite_suggestion_and_apply_trains_with_it(tmp_path):
    proc = run_cli(
        "train.py",
        "model=cnn",
        "mode=scratch",
        "epochs=1",
        "tune=lr_find",
        "tune.num_training=40",
        "tune.apply=true",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    found = summary(run)["lr_find"]
    assert found["applied"] and math.isfinite(found["suggestion"])
    assert 1e-6 <= found["suggestion"] <= 1.0
    assert (run / "plots/lr_find.png").stat().st_size > 10_000
    hparams = read_checkpoint(run, "best.ckpt")["hyper_parameters"]
    assert hparams["optimizer"]["lr"] == found["suggestion"]  # eval.py sees what trained
    assert "lr finder suggests" in (run / "train.log").read_text()


def test_lr_find_runs_on_cached_features_of_a_frozen_backbone(tmp_path, cnn_run):
    proc = run_cli(
        "train.py",
        "model=cnn",
        "mode=feature_extract",
        f"model.weights={cnn_run / 'checkpoints/best.ckpt'}",
        "epochs=1",
        "tune=lr_find",
        "tune.num_training=40",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    log = (run / "train.log").read_text()
    assert "Feature cache off" not in log  # the head trained on features computed once
    found = summary(run)["lr_find"]
    assert not found["applied"] and math.isfinite(found["suggestion"])
    assert (run / "plots/lr_find.png").is_file()
