"""The input pipeline end to end: what the model sees in training, eval.py and the feature
cache; augmentation policies and MixUp/CutMix in real runs; the augmentation preview."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from PIL import Image

from tests.conftest import QUIET, run_cli, run_dirs, summary
from transferlab.data.preview import DRAWS, GAP, ROWS, tile_size
from transferlab.features.training import cached_datamodule
from transferlab.pipeline import build_run, evaluate
from transferlab.pipeline import train as train_pipeline

# 8x8 digits resized to 12 px on the device: the resize is part of what is compared.
CNN = ["model=cnn", "data.image_size=12", "epochs=1", QUIET, "callbacks=none"]


@contextlib.contextmanager
def model_inputs() -> Iterator[list[torch.Tensor]]:
    """Every float image batch given to an outermost nn.Module call (the model, or the backbone
    when features are computed), in call order."""
    seen: list[torch.Tensor] = []
    depth = [0]

    def enter(module, args):
        x = args[0] if args else None
        # All-zero batches are the shape probes models run when they are built.
        if (
            depth[0] == 0
            and isinstance(x, torch.Tensor)
            and x.ndim == 4
            and x.is_floating_point()
            and x.any()
        ):
            seen.append(x.detach().clone())
        depth[0] += 1

    def leave(module, args, output):
        depth[0] -= 1

    hooks = [
        torch.nn.modules.module.register_module_forward_pre_hook(enter),
        torch.nn.modules.module.register_module_forward_hook(leave),
    ]
    try:
        yield seen
    finally:
        for hook in hooks:
            hook.remove()


def test_val_eval_py_and_the_feature_cache_feed_the_model_identical_tensors(cfg_factory, tmp_path):
    cfg = cfg_factory(*CNN, "mode=scratch", "test=false", "callbacks=default")
    ckpt = train_pipeline(cfg, tmp_path / "run")["best_checkpoint"]

    module, images, trainer = build_run(cfg_factory(*CNN, "mode=scratch"), tmp_path / "val")
    with model_inputs() as val:
        trainer.validate(module, datamodule=images)
    with model_inputs() as test:
        evaluate(cfg_factory(f"ckpt_path={ckpt}", QUIET, name="eval"), tmp_path / "eval")

    frozen = cfg_factory(*CNN, "mode=feature_extract", f"model.weights={ckpt}")
    built = build_run(frozen, tmp_path / "features")
    with model_inputs() as cached:
        cached_datamodule(frozen, *built)
    n = [len(images.train_set), len(images.val_set), len(images.test_set)]
    features = torch.cat(cached).split(n)
    val, test = torch.cat(val), torch.cat(test)
    assert val.shape == (n[1], 1, 12, 12) and test.shape == (n[2], 1, 12, 12)
    assert torch.equal(val, features[1]) and torch.equal(test, features[2])


@pytest.mark.parametrize(
    "augmentation",
    ["augmentation.mixup=0.4", "augmentation.cutmix=1.0 augmentation=randaugment"],
)
def test_mixup_and_cutmix_runs_train_on_soft_targets_and_score_hard_labels(
    augmentation, cfg_factory, tmp_path
):
    cfg = cfg_factory(*CNN, "mode=scratch", "epochs=2", *augmentation.split())
    metrics = train_pipeline(cfg, tmp_path)["metrics"]
    assert metrics["test/acc"] > 0.5 and 0 < metrics["train/acc"] <= 1


@pytest.fixture(scope="module")
def cnn_weights(tmp_path_factory) -> str:
    """A checkpoint of a CNN trained one epoch on digits, for the frozen modes."""
    out = tmp_path_factory.mktemp("weights")
    proc = run_cli("train.py", *CNN[:-1], "mode=scratch", "test=false", cwd=out)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(out / "logs", "train/runs/*")
    return str(run / "checkpoints" / "best.ckpt")


@pytest.mark.parametrize("mode", ["feature_extract", "gradual"])
def test_frozen_modes_train_with_a_policy_and_erasing(mode, cnn_weights, cfg_factory, tmp_path):
    """Augmentation turns the feature cache off; the frozen backbone then runs every batch."""
    cfg = cfg_factory(
        *CNN,
        f"mode={mode}",
        f"model.weights={cnn_weights}",
        "augmentation=trivialaugment",
        "augmentation.random_erasing=0.3",
        "epochs=2",
    )
    assert train_pipeline(cfg, tmp_path)["metrics"]["test/acc"] > 0.5


def test_preview_writes_the_grid_of_draws_and_does_not_train(tmp_path):
    proc = run_cli(
        "train.py",
        "model=cnn",
        "mode=scratch",
        "augmentation=randaugment",
        "preview=true",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    result = summary(run)
    assert result["status"] == "completed" and result["preview"].endswith("augmentation.png")
    assert not (run / "checkpoints").exists() and result["metrics"] == {}
    grid = np.asarray(Image.open(run / "plots" / "augmentation.png"))
    tile = tile_size(8)  # digits for a scratch net: 8 px, enlarged to 64
    cols = 1 + DRAWS  # the eval view, then the training draws
    assert grid.shape == (GAP + ROWS * (tile + GAP), GAP + cols * (tile + GAP))
    tiles = [
        [
            grid[GAP + r * (tile + GAP) :][:tile, GAP + c * (tile + GAP) :][:, :tile]
            for c in range(cols)
        ]
        for r in range(ROWS)
    ]
    assert all(t.std() > 10 for row in tiles for t in row)  # no blank tile
    for row in tiles:  # each image drawn anew: draws differ from each other
        assert len({t.tobytes() for t in row[1:]}) > DRAWS // 2
    assert len({row[0].tobytes() for row in tiles}) == ROWS  # distinct images, not one
