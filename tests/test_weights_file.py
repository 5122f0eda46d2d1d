"""A run opens its weights file once: the config checks read its header, the load reads the
rest from the same handle. Opens are counted by Python's `open` audit event, which every
open by Python code raises (builtins.open, io.open, os.open; torch.load and Lightning's
checkpoint loading open files that way too)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import timm
import torch
from omegaconf import OmegaConf

from tests.conftest import QUIET, compose_cfg
from transferlab.checks.commands import validate_eval, validate_train
from transferlab.models import build_model
from transferlab.module import load_run
from transferlab.pipeline import evaluate
from transferlab.pipeline import train as train_pipeline
from transferlab.weights_files.tensor_headers import NET_PREFIX, WeightsFile

TINY = [
    "data.image_size=12",
    "epochs=1",
    "test=false",
    "callbacks.early_stopping=null",
    "callbacks.rich_progress_bar=null",
    "callbacks.run_plots=null",
    QUIET,
]
_opened: list[str] | None = None  # while counting: every path opened


def _audit(event: str, args: tuple) -> None:
    if _opened is not None and event == "open" and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.path.realpath(os.fsdecode(args[0])))


sys.addaudithook(_audit)  # hooks stay for the process: _audit records only inside opens_of


@contextmanager
def opens_of(path: Path) -> Iterator[list[str]]:
    """The opens of `path` inside the block (the list fills when the block ends).

    A new mtime first: what earlier tests read of the file is forgotten, as in a new process.
    """
    global _opened
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    counted: list[str] = []
    _opened = []
    try:
        yield counted
    finally:
        seen, _opened = _opened, None
        counted += [p for p in seen if p == os.path.realpath(path)]


def _train(run: Path, *overrides: str) -> dict:
    cfg = compose_cfg("train", [*TINY, *overrides], run)
    validate_train(cfg)  # as train.py does: the checks read the header first
    return train_pipeline(cfg, run)


@pytest.fixture(scope="module")
def cnn_checkpoint(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cnn")
    return Path(_train(run, "model=cnn", "mode=scratch")["best_checkpoint"])


def test_the_counter_sees_the_open_inside_torch_load(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"w": torch.zeros(2)}, path)
    with opens_of(path) as opens:
        torch.load(path, weights_only=True)
    assert len(opens) == 1


def test_a_run_from_a_plain_state_dict_opens_it_once(tmp_path):
    name = "mobilenetv3_small_050"
    path = tmp_path / f"{name}.pth"
    torch.save(timm.create_model(name).state_dict(), path)
    overrides = ["model=timm", f"model.name={name}", f"model.weights={path}", "mode=finetune"]
    with opens_of(path) as opens:
        _train(tmp_path / "run", *overrides, "+trainer.limit_train_batches=2")
    assert len(opens) == 1


def test_a_run_from_a_runs_checkpoint_opens_it_once(cnn_checkpoint, tmp_path):
    with opens_of(cnn_checkpoint) as opens:
        _train(tmp_path / "run", "model=cnn", "mode=finetune", f"model.weights={cnn_checkpoint}")
    assert len(opens) == 1


def test_a_distillation_run_opens_its_teachers_checkpoint_once(cnn_checkpoint, tmp_path):
    teacher = [f"distill.teacher={cnn_checkpoint}", "+trainer.limit_train_batches=2"]
    with opens_of(cnn_checkpoint) as opens:
        _train(tmp_path / "run", "model=cnn", "mode=distill", *teacher)
    assert len(opens) == 1


def test_eval_opens_its_checkpoint_once(cnn_checkpoint, tmp_path):
    cfg = compose_cfg("eval", [f"ckpt_path={cnn_checkpoint}", QUIET], tmp_path)
    with opens_of(cnn_checkpoint) as opens:
        validate_eval(cfg)
        evaluate(cfg, tmp_path)
    assert len(opens) == 1


def test_a_checkpoint_only_torch_can_tell_is_loaded_once_for_the_test_and_the_load(
    cnn_checkpoint, tmp_path
):
    ckpt = torch.load(cnn_checkpoint, weights_only=True)
    hparams = ckpt["hyper_parameters"]
    ckpt["hyper_parameters"] = OmegaConf.create(hparams)  # a class the header reader refuses
    path = tmp_path / "omegaconf.ckpt"
    torch.save(ckpt, path)
    assert WeightsFile.of(path).header is None
    model = {**hparams["model"], "weights": str(path)}
    with opens_of(path) as opens:
        net = build_model(model, num_classes=10, in_chans=1, image_size=12, fetch_weights=True)
    assert len(opens) == 1
    for key, tensor in net.state_dict().items():
        assert torch.equal(tensor, ckpt["state_dict"][NET_PREFIX + key]), key


def test_a_changed_file_is_read_again(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"a": torch.zeros(2)}, path)
    assert WeightsFile.of(path).header.shapes == {"a": (2,)}
    torch.save({"a": torch.zeros(2), "b": torch.zeros(3, 1)}, path)
    os.utime(path, ns=(0, 1))  # a new mtime even where the clock is coarse
    assert WeightsFile.of(path).header.shapes == {"a": (2,), "b": (3, 1)}


def test_a_checkpoint_names_the_network_by_net_prefix(cnn_checkpoint):
    state = torch.load(cnn_checkpoint, weights_only=True)["state_dict"]
    module = load_run(cnn_checkpoint)
    assert {k for k in state if k.startswith(NET_PREFIX)} == {
        NET_PREFIX + k for k in module.net.state_dict()
    }
