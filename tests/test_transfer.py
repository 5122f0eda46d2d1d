"""Transfer learning end to end through the real command line, offline."""

from __future__ import annotations

import pytest
import torch
import torchvision
from PIL import Image

from tests.conftest import QUIET, logged, read_checkpoint, run_cli, run_dirs, summary
from transferlab.models.packaged_lite import timm_state_dict
from transferlab.weights_files.tensor_headers import BACKBONE_PREFIX

pytestmark = pytest.mark.slow


def ckpt_state(run, name="best.ckpt") -> dict[str, torch.Tensor]:
    return read_checkpoint(run, name)["state_dict"]


def backbone(state: dict, prefix=BACKBONE_PREFIX) -> dict[str, torch.Tensor]:
    return {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}


def test_lite0_feature_extract_reaches_90_percent_and_keeps_imagenet_weights(tmp_path):
    proc = run_cli(
        "train.py",
        "model=efficientnet_lite0",
        "mode=feature_extract",
        "epochs=5",
        "lr=1e-3",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert summary(run)["metrics"]["test/acc"] >= 0.90
    packaged = timm_state_dict("efficientnet_lite0")
    trained = backbone(ckpt_state(run))
    shared = [k for k in packaged if k in trained]
    # every backbone tensor, BatchNorm running statistics included, is bit-identical
    assert len(shared) == len(trained) > 290
    assert all(torch.equal(packaged[k], trained[k]) for k in shared)


def test_alexnet_without_cached_weights_fails_with_the_fix(tmp_path):
    # That it fails without retrying the hub is proven in test_backbones by counting DNS
    # look-ups; here, through the command line, the user gets the fix and exit code 2.
    proc = run_cli(
        "train.py",
        "model=alexnet",
        "mode=feature_extract",
        QUIET,
        cwd=tmp_path,
        env={"TORCH_HOME": str(tmp_path / "torch")},
    )
    assert proc.returncode == 2
    for needle in ("alexnet", "model.weights=", "efficientnet_lite0"):
        assert needle in proc.stderr
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert summary(run)["status"] == "failed"
    assert not list(run.glob("checkpoints/*.ckpt"))


def test_alexnet_trains_from_a_weights_file_with_those_exact_tensors(tmp_path):
    state = torchvision.models.alexnet().state_dict()
    torch.save(state, tmp_path / "alexnet.pth")
    proc = run_cli(
        "train.py",
        "model=alexnet",
        "mode=feature_extract",
        f"model.weights={tmp_path / 'alexnet.pth'}",
        "epochs=1",
        "batch_size=128",
        "callbacks.model_checkpoint.save_last=false",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    trained = backbone(ckpt_state(run))
    assert torch.equal(trained["features.0.weight"], state["features.0.weight"])
    assert torch.equal(trained["features.10.bias"], state["features.10.bias"])
    # fc6 and fc7 live in the backbone; fc8 (classifier.6) was replaced by the new head
    assert sum(torch.equal(t, state[k]) for k, t in trained.items() if k in state) == 14


def test_cnn_from_a_digits_run_transfers_every_non_head_tensor_to_image_folder(tmp_path):
    proc = run_cli("train.py", "model=cnn", "mode=scratch", "epochs=2", QUIET, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (source_run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    images = tmp_path / "images"
    for c, colour in enumerate(["red", "green", "blue"]):
        (images / f"class{c}").mkdir(parents=True)
        for i in range(8):
            Image.new("RGB", (20, 20), colour).save(images / f"class{c}" / f"{i}.png")
    proc = run_cli(
        "train.py",
        "model=cnn",
        "mode=feature_extract",
        "data=image_folder",
        f"data.source.root={images}",
        "data.image_size=16",
        "data.num_workers=0",
        f"model.weights={source_run}/checkpoints/best.ckpt",
        "epochs=1",
        "task_name=transfer",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "transfer/runs/*")
    source = backbone(ckpt_state(source_run))
    target = backbone(ckpt_state(run))
    assert source.keys() == target.keys()
    assert all(torch.equal(source[k], target[k]) for k in source)
    log = (run / "train.log").read_text()
    assert "head.0.weight" in log and "head.0.bias" in log


def test_scratch_arm_of_a_transfer_sweep_starts_from_random_init(tmp_path, cfg_factory, caplog):
    """`-m mode=finetune,feature_extract,scratch model.weights=<ckpt>`: scratch is the baseline."""
    from hydra.utils import instantiate

    from transferlab.pipeline import build_module

    proc = run_cli("train.py", "model=cnn", "mode=scratch", "epochs=1", QUIET, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (source_run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    weights = f"model.weights={source_run}/checkpoints/best.ckpt"
    source = backbone(ckpt_state(source_run))
    for mode, loaded in (("finetune", True), ("scratch", False)):
        cfg = cfg_factory("model=cnn", f"mode={mode}", weights)
        with caplog.at_level("INFO", logger="transferlab"):
            module = build_module(cfg, instantiate(cfg.data.source))
        state = module.net.backbone.state_dict()
        assert all(torch.equal(source[k], state[k]) for k in source) is loaded, mode
        assert (module.hparams.model["weights"] is None) is not loaded
    assert "mode=scratch: random init" in caplog.text


def test_feature_extract_of_a_random_network_is_refused_before_anything_runs(tmp_path):
    proc = run_cli("train.py", "model=cnn", "mode=feature_extract", QUIET, cwd=tmp_path)
    assert proc.returncode == 2
    assert "mode=scratch" in proc.stderr and "meaningless" in proc.stderr


def _digits_cnn(tmp_path):
    proc = run_cli(
        "train.py", "model=cnn", "mode=scratch", "epochs=1", "task_name=src", QUIET, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "src/runs/*")
    return run / "checkpoints" / "best.ckpt"


def _trainable_per_epoch(run) -> list[float]:
    return [float(v) for v in logged(run, "params/trainable")]


def test_gradual_unfreezes_on_schedule_under_ddp_sim(tmp_path):
    weights = _digits_cnn(tmp_path)
    proc = run_cli(
        "train.py",
        "model=cnn",
        f"model.weights={weights}",
        "mode=gradual",
        "trainer=ddp_sim",
        "epochs=4",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    counts = _trainable_per_epoch(run)
    assert len(counts) == 4 and counts == sorted(counts) and len(set(counts)) == 4
    assert summary(run)["status"] == "completed"


def test_gradual_run_resumed_after_its_first_unfreeze_ends_identical(tmp_path):
    weights = _digits_cnn(tmp_path)
    common = [
        "model=cnn",
        f"model.weights={weights}",
        "mode=gradual",
        "trainer.deterministic=true",
        "callbacks.early_stopping=null",
        QUIET,
    ]
    full = run_cli("train.py", *common, "epochs=4", "task_name=full", cwd=tmp_path)
    part = run_cli("train.py", *common, "epochs=2", "task_name=part", cwd=tmp_path)
    assert full.returncode == 0 and part.returncode == 0, (full.stderr + part.stderr)[-3000:]
    (part_run,) = run_dirs(tmp_path / "logs", "part/runs/*")
    resumed = run_cli(
        "train.py",
        *common,
        "epochs=4",
        "task_name=resumed",
        f"ckpt_path={part_run}/checkpoints/last.ckpt",
        cwd=tmp_path,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (full_run,) = run_dirs(tmp_path / "logs", "full/runs/*")
    (resumed_run,) = run_dirs(tmp_path / "logs", "resumed/runs/*")
    a, b = ckpt_state(full_run, "last.ckpt"), ckpt_state(resumed_run, "last.ckpt")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _trainable_per_epoch(resumed_run)[-1] == _trainable_per_epoch(full_run)[-1]
