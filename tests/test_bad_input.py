"""Bad input stops in seconds with one clear paragraph, exit code 2, and a failed summary."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli, run_dirs, summary

QUIET = "extras.print_config=false"


def _one_class_tree(tmp_path):
    (tmp_path / "only" / "cats").mkdir(parents=True, exist_ok=True)
    return tmp_path / "only"


CASES = {
    "negative lr": (["lr=-1"], "lr=-1"),
    "zero epochs": (["epochs=0"], "epochs=0"),
    "zero batch": (["batch_size=0"], "batch_size=0"),
    "unknown mode": (["mode.name=frozen"], "Unknown mode 'frozen'"),
    "random features": (["model=cnn", "mode=feature_extract"], "meaningless"),
    "missing weights": (["model.weights=/no/such/file.pth"], "does not exist"),
    "unknown timm model": (["model=timm", "model.name=resnet17"], "Close names: resnet18"),
    "image too small": (["model=alexnet", "mode=scratch", "data.image_size=16"], "too small"),
    "unfreeze too far": (["mode=partial", "model.unfreeze=9"], "8 layer groups"),
    "no image folder": (["data=image_folder"], "data.source.root=<folder>"),
    "missing folder": (["data=image_folder", "data.source.root=/no/such/dir"], "not a folder"),
    "one class": (["data=image_folder", "data.source.root={one_class}"], "at least two"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_exits_2_with_its_message_and_no_traceback(case, tmp_path):
    overrides, message = CASES[case]
    overrides = [o.format(one_class=_one_class_tree(tmp_path)) for o in overrides]
    proc = run_cli("train.py", *overrides, QUIET, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert summary(run)["status"] == "failed" and message in summary(run)["error"]


def test_eval_of_a_missing_checkpoint_exits_2(tmp_path):
    proc = run_cli("eval.py", "ckpt_path=/no/such/best.ckpt", QUIET, cwd=tmp_path)
    assert proc.returncode == 2 and "ckpt_path=/no/such/best.ckpt" in proc.stderr


def test_a_diverging_loss_stops_the_run_with_a_clear_message(tmp_path):
    proc = run_cli(
        "train.py",
        "model=cnn",
        "mode=scratch",
        "optimizer=sgd",
        "lr=1e8",
        "model.batchnorm=false",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "diverged" in proc.stderr and "lr is 100000000.0" in proc.stderr
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert summary(run)["status"] == "failed"


def test_secret_looking_values_are_masked_in_the_printed_config(tmp_path):
    proc = run_cli(
        "train.py", "debug=fdr", "+wandb_api_key=abc123secret", "+note.token=t0k", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = run_dirs(tmp_path / "logs", "debug/runs/*")
    printed = proc.stdout + (run / "config_tree.log").read_text()
    assert "abc123secret" not in printed and "t0k" not in printed
    assert "wandb_api_key" in printed and "***" in printed


def test_the_early_timm_name_check_never_rejects_a_real_timm_model():
    import timm
    from omegaconf import OmegaConf

    from transferlab import config

    target = "transferlab.models.backbones.timm_classifier"
    for name in timm.list_models():  # stale list after a timm upgrade: the check stands aside
        config._timm_name(OmegaConf.create({"_target_": target, "name": name}))
