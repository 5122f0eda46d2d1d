"""best.ckpt and last.ckpt: each state written once, last.ckpt always the newest epoch."""

from __future__ import annotations

import os

import torch

from tests.conftest import QUIET, compose_cfg, logged
from transferlab.pipeline import train as train_pipeline
from transferlab.runs.checkpoints import AtomicCheckpointIO, link

RUN = [
    "mode=scratch",
    "data.image_size=12",
    QUIET,
    "callbacks.early_stopping=null",
    "callbacks.rich_progress_bar=null",
    "test=false",
]


def _load(path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _train(run, *overrides: str) -> None:
    train_pipeline(compose_cfg("train", [*RUN, *overrides], run), run)


def test_last_ckpt_shares_best_ckpts_file_only_when_both_hold_the_final_epoch(tmp_path):
    improving = tmp_path / "one_epoch"
    _train(improving, "epochs=1", "model=cnn")
    best, last = improving / "checkpoints/best.ckpt", improving / "checkpoints/last.ckpt"
    assert os.path.samefile(best, last)  # written once, linked
    assert _load(last)["epoch"] == 0 and _load(last)["global_step"] > 0

    # An MLP (no BatchNorm statistics) at lr=0 never changes, so best.ckpt stays at epoch 0.
    flat = tmp_path / "flat"
    _train(flat, "epochs=3", "lr=0.0", "model=mlp")
    best, last = flat / "checkpoints/best.ckpt", flat / "checkpoints/last.ckpt"
    assert len({float(acc) for acc in logged(flat, "val/acc")}) == 1
    assert not os.path.samefile(best, last)
    assert _load(best)["epoch"] == 0 and _load(last)["epoch"] == 2
    assert _load(last)["global_step"] == 3 * _load(best)["global_step"]
    assert sorted(p.name for p in (flat / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]


def test_a_new_best_replaces_best_ckpt_without_touching_an_older_linked_last_ckpt(tmp_path):
    io = AtomicCheckpointIO()
    best, last = tmp_path / "best.ckpt", tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 0}, best)
    link(best, last)
    io.save_checkpoint({"epoch": 1}, best)
    assert _load(best)["epoch"] == 1 and _load(last)["epoch"] == 0
    link(best, last)  # over an existing file
    assert os.path.samefile(best, last) and _load(last)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.ckpt", "last.ckpt"]
