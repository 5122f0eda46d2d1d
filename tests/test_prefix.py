"""mode=partial trains on the frozen prefix's activations, computed once: exact, never stale."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import open_dict
from PIL import Image
from sklearn.datasets import load_digits
from torch import nn

from tests.conftest import (
    QUIET,
    killed_and_resumed,
    read_checkpoint,
    run_cli,
    run_cli_on_fixtures,
    run_dirs,
    summary,
)
from transferlab.features import prefix
from transferlab.features.training import FeatureDataModule
from transferlab.models.scratch import cnn
from transferlab.pipeline import build_run
from transferlab.pipeline import train as train_pipeline

PARTIAL = ["mode=partial", "model.unfreeze=1", "epochs=2", "features.cache=disk", QUIET]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy shared CPU two lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def digit_folder(tmp_path) -> Path:
    """A 48-image folder of real digits (0, 1, 2), the test's own: tests change its files."""
    root = tmp_path / "digits"
    x, y = load_digits(n_class=3, return_X_y=True)
    for label in range(3):
        (root / str(label)).mkdir(parents=True)
        for i, pixels in enumerate(x[y == label][:16]):
            image = Image.fromarray((pixels.reshape(8, 8) * 255 / 16).astype(np.uint8))
            image.save(root / str(label) / f"{i}.png")
    return root


def folder(root: Path) -> list[str]:
    return [
        "data=image_folder",
        f"data.source.root={root}",
        "data.source.channels=1",
        "data.source.val_fraction=0.25",
        "data.source.test_fraction=0.25",
        "data.num_workers=0",
        "data.image_size=32",
    ]


def prefix_of(cfg, tmp_path, caplog, change=None) -> tuple[FeatureDataModule, str, tuple]:
    """The prefix datamodule of `cfg`, what the log said, and (module, images datamodule)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="transferlab"):
        module, images, trainer = build_run(cfg, tmp_path)
        assert module.cut is not None, caplog.text
        if change is not None:
            change(module)
        datamodule = prefix.cached_datamodule(cfg, module, images, trainer)
    return datamodule, caplog.text, (module, images)


def computed(text: str) -> int:
    return text.count("Feature pass: computed")


# --- which path a run takes ----------------------------------------------------------


def test_the_cut_is_the_first_trainable_layer_and_the_tail_gives_the_networks_output(
    digit_folder, cfg_factory, tmp_path, caplog
):
    cfg = cfg_factory(*PARTIAL, *folder(digit_folder))
    datamodule, text, (module, images) = prefix_of(cfg, tmp_path, caplog)
    cut = module.cut
    assert "Prefix cache on: the frozen backbone up to blocks.5" in text
    trainable = {n for n, p in module.net.named_parameters() if p.requires_grad}
    assert cut.first_step_of(trainable) == cut.at  # nothing trainable before, all after
    activations, _ = datamodule.sets["test"].tensors
    batch = next(iter(images.loader(images.test_set, 8)))[0]
    module.eval()
    with torch.no_grad():
        whole = module.net(images.eval_batch(batch))
        tail = module(activations[:8])
    torch.testing.assert_close(tail, whole, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        (["augmentation=basic"], "augmentation is on"),
        (["model.frozen_bn=train"], "model.frozen_bn=train"),
        (["features.cache=off"], "features.cache=off"),
        (["model.unfreeze=8"], "the backbone's first layer trains"),
        (["mode=gradual"], "mode=gradual unfreezes groups during the run, so a group inside"),
    ],
    ids=["augmentation", "frozen_bn=train", "cache off", "every group trains", "gradual"],
)
def test_runs_that_cannot_cache_the_prefix_read_images_and_the_log_says_why(
    overrides, why, digit_folder, cfg_factory, tmp_path, caplog
):
    cfg = cfg_factory(*PARTIAL, *folder(digit_folder), *overrides)
    with caplog.at_level(logging.INFO, logger="transferlab"):
        module, _, _ = build_run(cfg, tmp_path)
    assert module.cut is None
    assert caplog.text.count("Prefix cache off") == 1 and why in caplog.text, caplog.text


def test_a_trainable_first_group_or_a_training_dropout_ends_the_prefix():
    net = cnn(num_classes=3, in_chans=1, channels=(4, 8))
    for name, param in net.named_parameters():  # block1 trains, block2 frozen behind it
        param.requires_grad_(name.startswith("backbone.block1"))
    cut, why = prefix.find_cut(net.backbone)
    assert cut is None and "first layer trains" in why
    frozen, dropout, trainable = nn.Linear(4, 4), nn.Dropout(0.5), nn.Linear(4, 2)
    frozen.requires_grad_(False)
    cut, _ = prefix.find_cut(nn.Sequential(frozen, dropout, trainable))
    assert cut.at == 1  # the dropout draws anew each epoch: it runs in the tail
    assert prefix.find_cut(nn.Sequential(frozen, dropout.eval(), trainable))[0].at == 2


def test_auto_keeps_activations_in_memory_only_within_the_share_and_one_process(cfg_factory):
    cfg = cfg_factory(*PARTIAL[:-2], "features.memory_share=0.1")
    tenth = prefix.total_ram() // 10
    assert prefix.keep_in_memory(cfg, tenth - 1, world_size=1)
    assert not prefix.keep_in_memory(cfg, tenth + 1, world_size=1)  # over the share: disk
    assert not prefix.keep_in_memory(cfg, 1, world_size=2)  # DDP ranks share the disk copy
    assert prefix.keep_in_memory(cfg_factory("features.cache=memory"), 2**60, world_size=1)


# --- never stale --------------------------------------------------------------------


def _scale_stem(module) -> None:
    with torch.no_grad():
        module.net.backbone.conv_stem.weight.mul_(1.01)


@pytest.mark.parametrize("change", ["weights", "data.mean=[0.4]", "data.image_size=40", "image"])
def test_changed_weights_preprocessing_or_image_file_never_reuse_a_stale_prefix(
    change, digit_folder, cfg_factory, tmp_path, caplog
):
    cfg = cfg_factory(*PARTIAL, *folder(digit_folder))
    _, text, _ = prefix_of(cfg, tmp_path, caplog)
    assert computed(text) == 3
    _, text, _ = prefix_of(cfg, tmp_path, caplog)
    assert computed(text) == 0 and text.count("Feature cache hit") == 3  # unchanged: reused
    if change == "weights":
        _, text, _ = prefix_of(cfg, tmp_path, caplog, change=_scale_stem)
        assert computed(text) == 3
    elif change == "image":  # another picture under the same name: its split only
        picture = digit_folder / "1" / "3.png"
        Image.new("L", (8, 8), 200).save(picture)
        _, text, _ = prefix_of(cfg, tmp_path, caplog)
        assert computed(text) == 1 and text.count("Feature cache hit") == 2
    else:
        _, text, _ = prefix_of(
            cfg_factory(*PARTIAL, *folder(digit_folder), change), tmp_path, caplog
        )
        assert computed(text) == 3 and "Feature cache hit" not in text


def test_float16_store_halves_memory_and_stays_close(digit_folder, cfg_factory, tmp_path, caplog):
    full, _, _ = prefix_of(cfg_factory(*PARTIAL, *folder(digit_folder)), tmp_path, caplog)
    half_cfg = cfg_factory(*PARTIAL, *folder(digit_folder), "features.dtype=float16")
    half, _, (module, _) = prefix_of(half_cfg, tmp_path, caplog)
    a, b = full.sets["train"].tensors[0], half.sets["train"].tensors[0]
    assert b.dtype == torch.float16 and b.element_size() * 2 == a.element_size()
    torch.testing.assert_close(b.float(), a, rtol=2e-3, atol=2e-3)
    module.eval()
    with torch.no_grad():
        torch.testing.assert_close(module(b[:8]), module(a[:8]), rtol=1e-2, atol=1e-2)


def test_an_unfreeze_sweep_shares_its_shallowest_cut(digit_folder, cfg_factory, tmp_path):
    one, two = (
        build_run(cfg_factory(*PARTIAL, *folder(digit_folder), f"model.unfreeze={k}"), tmp_path)[0]
        for k in (1, 2)
    )
    assert two.cut.at < one.cut.at
    assert prefix.shared_base(one.cut, one.net, [1, 2]) == two.cut.at
    assert prefix.shared_base(one.cut, one.net, []) == one.cut.at  # not in a sweep


# --- whole runs ---------------------------------------------------------------------


def _final_run(cfg, out: Path) -> tuple[dict, dict]:
    out.mkdir()
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
    metrics = train_pipeline(cfg, out)["metrics"]
    return metrics, torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


def test_training_on_the_cached_prefix_matches_training_on_images(
    digit_folder, cfg_factory, tmp_path
):
    runs = {}
    for cache in ("off", "memory"):
        cfg = cfg_factory(*PARTIAL, *folder(digit_folder), f"features.cache={cache}", "epochs=3")
        runs[cache] = _final_run(cfg, tmp_path / cache)
    (off, off_state), (cached, cached_state) = runs["off"], runs["memory"]
    assert off["test/acc"] == cached["test/acc"] and off["val/acc"] == cached["val/acc"]
    assert off["train/loss"] == pytest.approx(cached["train/loss"], abs=1e-4)
    assert off_state.keys() == cached_state.keys()
    for name, tensor in off_state.items():
        if tensor.is_floating_point():
            torch.testing.assert_close(cached_state[name], tensor, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_a_killed_cached_partial_run_resumes_bit_identical(cnn_run, tmp_path):
    run = [
        "model=cnn",
        "mode=partial",
        "model.unfreeze=1",
        f"model.weights={cnn_run / 'checkpoints' / 'best.ckpt'}",
        "data.image_size=24",
        "data.source.limit=300",
        "epochs=5",
        "trainer.deterministic=true",
        "callbacks.early_stopping=null",
        QUIET,
    ]
    reference, killed = killed_and_resumed(*run, cwd=tmp_path)
    assert "Prefix cache on" in (killed / "train.log").read_text()
    a, b = (read_checkpoint(r, "last.ckpt")["state_dict"] for r in (reference, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert summary(killed)["status"] == "completed"


@pytest.mark.slow
def test_vgg16_seed_004_sweep_runs_through_the_prefix_cache_at_224_px(
    dataset_files, vgg16_weights, tmp_path
):
    quick = ["seed=0", "epochs=1", "batch_size=4", "data.source.limit=20"]
    quick += ["data.source.eval_limit=20", QUIET]
    proc = run_cli_on_fixtures(
        "train.py",
        "-m",
        "experiment=vgg16_unfreeze_last_1_2_3",
        *quick,
        cwd=tmp_path,
        files=dataset_files,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    jobs = sorted(run_dirs(tmp_path / "logs", "train/multiruns/*/*"))
    logs = [(job / "train.log").read_text() for job in jobs]
    assert len(jobs) == 3 and {summary(j)["status"] for j in jobs} == {"completed"}
    assert all("Prefix cache on" in text for text in logs)
    assert "up to features.23" in logs[2]  # unfreeze=3: block5 trains, block4's pool is cached
    # The first job computes the sweep's shared block4 output from images (3 splits) and its
    # own cut from that (3); the others read the shared one and compute only their own.
    assert [computed(text) for text in logs] == [6, 3, 0]
    assert all(text.count("Feature cache hit") == 3 for text in logs[1:])
    for job in jobs:
        assert (
            read_checkpoint(job, "best.ckpt")["hyper_parameters"]["preprocess"]["image_size"] == 224
        )


@pytest.mark.slow
def test_a_cli_unfreeze_sweep_shares_its_prefix(tmp_path, digit_folder):
    proc = run_cli(
        "train.py", "-m", *PARTIAL, "model.unfreeze=1,2", *folder(digit_folder), cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    logs = [
        (j / "train.log").read_text() for j in run_dirs(tmp_path / "logs", "train/multiruns/*/*")
    ]
    assert [computed(text) for text in logs] == [6, 0]  # unfreeze=2's cut is the shared one
    assert "runs on from the sweep's shared" in logs[0]
