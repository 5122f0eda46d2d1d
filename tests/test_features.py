"""Feature extraction: the cache, multi-layer features, classical heads, slim checkpoints."""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from hydra.utils import instantiate
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC
from torch import nn

from tests.conftest import QUIET, run_cli, run_cli_on_fixtures, run_dirs, summary
from tests.torchvision_files import (
    FixtureFiles,
    md5_checks_skipped,
    write_cifar10,
    write_flowers102,
    write_flowers_splits,
    write_image_folder,
    write_mnist,
)
from transferlab.checks.options import check as check_config
from transferlab.data import TorchvisionSource
from transferlab.data.packaged import Mnist
from transferlab.errors import UserError
from transferlab.features import cache as cache_io
from transferlab.features.extract import LayerFeatures, compute_features, read_layers
from transferlab.features.heads import fit_head
from transferlab.features.training import (
    FeatureDataModule,
    cached_datamodule,
    record_backbone_digest,
)
from transferlab.models.scratch import cnn
from transferlab.module import ClassifierModule
from transferlab.pipeline import build_module, build_run
from transferlab.pipeline import train as train_pipeline

LAYERS = "features.layers=[blocks.4,blocks.5,blocks.6]"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors gain nothing from threads, and on a busy shared CPU two lose a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> list[str]:
    """Overrides for a 48-image folder of real digits (0, 1, 2): feature passes take no time."""
    root = tmp_path_factory.mktemp("digit_folder")
    x, y = load_digits(n_class=3, return_X_y=True)
    for label in range(3):
        (root / str(label)).mkdir()
        for i, pixels in enumerate(x[y == label][:16]):
            image = Image.fromarray((pixels.reshape(8, 8) * 255 / 16).astype(np.uint8))
            image.save(root / str(label) / f"{i}.png")
    return [
        "mode=feature_extract",
        "epochs=1",
        QUIET,
        "data=image_folder",
        f"data.source.root={root}",
        "data.source.channels=1",
        "data.source.val_fraction=0.25",
        "data.source.test_fraction=0.25",
        "data.num_workers=0",
        "data.image_size=32",
    ]


def prepare(cfg, tmp_path):
    """Module, image datamodule and trainer of a config, as pipeline.train builds them."""
    return build_run(cfg, tmp_path)


def features_of(cfg, tmp_path, caplog) -> tuple[FeatureDataModule, str]:
    """The cached datamodule of `cfg` and what the log said about the feature pass."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="transferlab"):
        datamodule = cached_datamodule(cfg, *prepare(cfg, tmp_path))
    assert isinstance(datamodule, FeatureDataModule)
    return datamodule, caplog.text


def computed_splits(log_text: str) -> int:
    return log_text.count("Feature pass: computed")


# --- the cache ---------------------------------------------------------------------


def test_cache_hit_is_bit_identical_to_a_fresh_pass(tiny, cfg_factory, tmp_path, caplog):
    cfg = cfg_factory(*tiny)
    first, text = features_of(cfg, tmp_path, caplog)
    assert computed_splits(text) == 3
    module, images, trainer = prepare(cfg, tmp_path)
    with caplog.at_level(logging.INFO, logger="transferlab"):
        caplog.clear()
        hit = cached_datamodule(cfg, module, images, trainer)
    assert computed_splits(caplog.text) == 0 and caplog.text.count("Feature cache hit") == 3
    assert module.feature_input
    for split in ("train", "val", "test"):
        batches = images.loader(getattr(images, f"{split}_set"), cfg.features.batch_size)
        fresh, labels = compute_features(module.net.backbone, batches, prepare=images.eval_batch)
        cached_x, cached_y = hit.sets[split].tensors
        assert torch.equal(cached_x, fresh) and torch.equal(cached_y, labels)
        assert torch.equal(cached_x, first.sets[split].tensors[0])


@pytest.mark.parametrize(
    "change",
    ["weights", "data.mean=[0.4]", "data.image_size=40", LAYERS, "features.l2norm=true"],
)
def test_changed_weights_transform_or_layers_miss_the_cache(
    change, tiny, cfg_factory, tmp_path, caplog
):
    base = cfg_factory(*tiny)
    features_of(base, tmp_path, caplog)
    if change == "weights":
        module, images, trainer = prepare(base, tmp_path)
        with torch.no_grad():
            module.net.backbone.conv_stem.weight.mul_(1.01)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="transferlab"):
            cached_datamodule(base, module, images, trainer)
        text = caplog.text
    else:
        _, text = features_of(cfg_factory(*tiny, change), tmp_path, caplog)
    assert computed_splits(text) == 3, text
    assert "Feature cache hit" not in text


def test_truncated_cache_file_is_recomputed_not_read(tiny, cfg_factory, tmp_path, caplog):
    cfg = cfg_factory(*tiny)
    original, _ = features_of(cfg, tmp_path, caplog)
    (train_file,) = (tmp_path / "logs/cache/features").glob("*/train.pt")
    data = train_file.read_bytes()
    train_file.write_bytes(data[: len(data) // 2])
    again, text = features_of(cfg, tmp_path, caplog)
    assert f"Feature cache file {train_file} is not usable (unreadable" in text
    assert computed_splits(text) == 1  # train only; val and test were intact
    assert torch.equal(again.sets["train"].tensors[0], original.sets["train"].tensors[0])
    assert train_file.read_bytes() == data  # rewritten whole


def test_corrupt_or_stale_cache_files_are_rejected(tmp_path, caplog):
    features, labels = torch.randn(6, 4), torch.arange(6)
    cache = cache_io.FeatureCache({"backbone": "x"}, tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return features.clone(), labels.clone()

    cache.get("train", "fp", compute, expected=6)
    path = cache.path("train")
    blob = torch.load(path, weights_only=True)
    blob["features"][0, 0] += 1  # flipped values, old checksum
    torch.save(blob, path)
    with caplog.at_level(logging.WARNING, logger="transferlab"):
        got, _ = cache.get("train", "fp", compute, expected=6)
    assert "checksum mismatch" in caplog.text and torch.equal(got, features)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="transferlab"):
        cache.get("train", "other data", compute, expected=6)  # same file, another split key
    assert "stale" in caplog.text
    assert len(calls) == 3


def _fingerprints(source) -> list[str]:
    with md5_checks_skipped():
        return [cache_io.dataset_fingerprint(split) for split in source.splits(seed=0)]


def _another_flowers_split(folder: Path) -> None:
    """setid.mat rewritten with other image ids in each split; same mtime, same size."""
    setid, before = folder / "setid.mat", (folder / "setid.mat").stat()
    old = scipy.io.loadmat(setid)["trnid"]
    labels = scipy.io.loadmat(folder / "imagelabels.mat", squeeze_me=True)["labels"]
    write_flowers_splits(folder, labels, np.arange(len(labels), 0, -1))
    os.utime(setid, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not np.array_equal(scipy.io.loadmat(setid)["trnid"], old)


def test_a_torchvision_sets_fingerprint_follows_its_files_small_ones_by_content(tmp_path):
    flowers = TorchvisionSource("flowers102", tmp_path)
    folder = write_flowers102(tmp_path)
    before = _fingerprints(flowers)
    assert _fingerprints(flowers) == before and len(set(before)) == 3
    _another_flowers_split(folder)
    assert not set(_fingerprints(flowers)) & set(before)  # every split, though mtimes agree

    cifar = TorchvisionSource("cifar10", tmp_path)
    write_cifar10(tmp_path)
    before = _fingerprints(cifar)
    other = write_cifar10(tmp_path / "other", train_per_class=20) / "data_batch_3"
    shutil.copy(other, tmp_path / "cifar-10-batches-py" / "data_batch_3")
    assert not set(_fingerprints(cifar)) & set(before)


def test_mnist_from_torchvision_files_is_fingerprinted_by_its_pixels(tmp_path):
    raw = write_mnist(tmp_path, "MNIST", train_per_class=6_000, test_per_class=1_000)
    mnist = Mnist(tmp_path, tmp_path / "no_cache")
    before = _fingerprints(mnist)
    images = raw / "t10k-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[-1] ^= 0xFF  # one pixel of the last test image
    images.write_bytes(bytes(data))
    # Every split is a Subset of one tensor of all 70,000 images, hashed whole.
    assert not set(_fingerprints(Mnist(tmp_path, tmp_path / "no_cache"))) & set(before)


FEATURE_RUN = ["mode=feature_extract", "epochs=1", "data.image_size=32", "data.num_workers=0"]


def _feature_run(files: FixtureFiles, data: list[str], cwd: Path, task: str) -> tuple[int, int]:
    """(splits computed, splits read from the cache) by one train.py run on `files`."""
    proc = run_cli_on_fixtures(
        "train.py", *FEATURE_RUN, *data, QUIET, f"task_name={task}", cwd=cwd, files=files
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(cwd / "logs", f"{task}/runs/*")
    text = (run / "train.log").read_text()
    return computed_splits(text), text.count("Feature cache hit")


def _flowers_whose_split_changes(files: FixtureFiles) -> tuple[list[str], Callable]:
    folder = write_flowers102(files.data_dir)
    return ["data=flowers102"], lambda: _another_flowers_split(folder)


def _folder_whose_image_changes(files: FixtureFiles) -> tuple[list[str], Callable]:
    write_image_folder(files.image_folder)
    image = files.image_folder / "cat" / "0.png"

    def change() -> None:  # another picture under the same name
        Image.new("RGB", Image.open(image).size, (200, 30, 30)).save(image)

    return ["data=image_folder", f"data.source.root={files.image_folder}"], change


@pytest.mark.slow
@pytest.mark.parametrize(
    ("dataset", "changed"),
    [(_flowers_whose_split_changes, (3, 0)), (_folder_whose_image_changes, (1, 2))],
    ids=["flowers102 setid.mat", "image_folder one image"],
)
def test_the_feature_cache_misses_once_the_datasets_files_change(dataset, changed, tmp_path):
    files = FixtureFiles(tmp_path / "data", tmp_path / "torch")
    data, change = dataset(files)
    assert _feature_run(files, data, tmp_path, "first") == (3, 0)
    assert _feature_run(files, data, tmp_path, "unchanged") == (0, 3)
    change()
    assert _feature_run(files, data, tmp_path, "changed") == changed


def test_a_failed_write_leaves_no_cache_file(tmp_path):
    target = tmp_path / "train.pt"
    with pytest.raises(Exception):  # noqa: B017 - whatever torch.save raises
        cache_io._atomic_save({"not a tensor": lambda: None}, target)
    assert list(tmp_path.iterdir()) == []


def test_memory_cache_writes_no_files_and_hits_in_process(tiny, cfg_factory, tmp_path, caplog):
    cfg = cfg_factory(*tiny, "features.cache=memory", "seed=7")
    _, first = features_of(cfg, tmp_path, caplog)
    _, second = features_of(cfg, tmp_path, caplog)
    assert computed_splits(first) == 3 and second.count("Feature cache hit (memory)") == 3
    assert not (tmp_path / "logs/cache/features").exists()  # (the folder file index may be)


def test_augmentation_falls_back_to_a_frozen_forward_and_says_why(
    tiny, cfg_factory, tmp_path, caplog
):
    cfg = cfg_factory(*tiny, "augmentation=basic")
    with caplog.at_level(logging.INFO, logger="transferlab"):  # decided as the module is built
        module, images, trainer = prepare(cfg, tmp_path)
        datamodule = cached_datamodule(cfg, module, images, trainer)
    assert datamodule is images and not module.feature_input
    assert caplog.text.count("Feature cache off") == 1 and "augmentation" in caplog.text


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        (["head=svm", "mode=finetune"], "mode=feature_extract head=svm"),
        (["head=logreg", "mode=feature_extract", "augmentation=basic"], "augmentation=none"),
        (["mode=feature_extract", "features.cache=sometimes"], "features.cache=auto"),
        (["mode=finetune", "features.save_backbone=false"], "mode=finetune trains it"),
        (["mode=partial", "features.dtype=bfloat16"], "Choose float32 (exact) or float16"),
        (["mode=partial", "features.memory_share=2"], "between 0 and 1"),
    ],
)
def test_impossible_feature_options_are_refused(overrides, fragment, cfg_factory):
    with pytest.raises(UserError, match=re.escape(fragment)):
        check_config(cfg_factory(*overrides))


# --- multi-layer features ---------------------------------------------------------


def test_layer_features_pool_normalise_and_concatenate_the_chosen_layers():
    net = cnn(num_classes=3, in_chans=1, image_size=16, channels=(4, 6, 8)).eval()
    plain = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    x = torch.randn(5, 1, 16, 16)
    with torch.no_grad():
        maps2 = net.backbone.block2(net.backbone.block1(x))
        maps3 = net.backbone.block3(maps2)
    read_layers(net, {"layers": ["block2", "block3"], "l2norm": True}, head={})
    assert isinstance(net.backbone, LayerFeatures)
    assert net.num_features == 6 + 8 and net.head[-1].in_features == 14
    assert net.backbone.state_dict().keys() == plain.keys()  # checkpoints stay compatible
    with torch.no_grad():
        out = net.backbone(x)
    expected = torch.cat(
        [nn.functional.normalize(m.mean((2, 3)), dim=1) for m in (maps2, maps3)], dim=1
    )
    assert torch.allclose(out, expected, atol=1e-6)
    assert torch.allclose(out[:, :6].norm(dim=1), torch.ones(5))


def test_multi_layer_backbone_keeps_layer_groups_and_freezing(tiny, cfg_factory):
    cfg = cfg_factory(*tiny, LAYERS, "features.l2norm=true")
    module = build_module(cfg, instantiate(cfg.data.source))
    assert module.net.num_features == 112 + 192 + 320
    trainable = {n for n, p in module.net.named_parameters() if p.requires_grad}
    assert trainable == {"head.0.weight", "head.0.bias"}
    assert len(module.net.groups) == 8
    named = {n for n, _ in module.net.named_parameters()}
    assert all(p in named for g in module.net.groups for p in g.param_names)


def test_unknown_feature_layer_names_the_layers_there_are():
    net = cnn(num_classes=3, in_chans=1, image_size=16)
    with pytest.raises(UserError, match="block2"):
        read_layers(net, {"layers": ["blocks.4"]}, head={})


# --- classical heads --------------------------------------------------------------


@pytest.mark.parametrize("name", ["svm", "logreg"])
def test_classical_head_predicts_what_scikit_learn_predicts(name):
    x, y = load_digits(return_X_y=True)
    features, labels = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    head = nn.Sequential(nn.Linear(64, 10))
    cfg = {"name": name, "C": 0.5, "max_iter": 3000, "standardize": True}
    fit_head(head, cfg, features[:1200], labels[:1200], seed=0)
    clf = LinearSVC(C=0.5, max_iter=3000, random_state=0)
    if name == "logreg":
        clf = LogisticRegression(C=0.5, max_iter=3000, random_state=0)
    reference = make_pipeline(StandardScaler(), clf).fit(x[:1200].astype(np.float64), y[:1200])
    with torch.no_grad():
        ours = head(features[1200:]).argmax(1).numpy()
    assert (ours == reference.predict(x[1200:])).mean() >= 0.995
    if name == "logreg":
        probs = torch.softmax(head(features[1200:]).double(), 1).detach().numpy()
        assert np.allclose(probs, reference.predict_proba(x[1200:]), atol=1e-4)


def test_binary_logreg_head_gives_the_same_probabilities():
    x, y = load_digits(n_class=2, return_X_y=True)
    head = nn.Linear(64, 2)
    fit_head(head, {"name": "logreg", "standardize": False}, torch.tensor(x), torch.tensor(y), 0)
    reference = LogisticRegression(random_state=0).fit(x, y)
    probs = torch.softmax(head(torch.tensor(x, dtype=torch.float32)).double(), 1)
    assert np.allclose(probs.detach().numpy(), reference.predict_proba(x), atol=1e-4)


def test_classes_without_training_images_are_never_predicted_the_rest_as_scikit_learn():
    x, y = load_digits(return_X_y=True)
    seen = np.isin(y, [1, 4, 7])  # three of the ten classes have training images
    features = torch.tensor(x, dtype=torch.float32)
    head = nn.Linear(64, 10)
    fit_head(head, {"name": "svm", "standardize": False}, features[seen], torch.tensor(y[seen]), 0)
    reference = LinearSVC(random_state=0).fit(x[seen], y[seen])
    with torch.no_grad():
        ours = head(features).argmax(1).numpy()
    assert set(ours.tolist()) <= {1, 4, 7}
    assert (ours == reference.predict(x)).mean() >= 0.995


def test_classical_head_refuses_an_mlp_head():
    head = nn.Sequential(nn.Linear(8, 4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(UserError, match=r"model\.head\.hidden=\[\]"):
        fit_head(head, {"name": "svm"}, torch.randn(10, 8), torch.arange(10) % 2, 0)


# --- whole runs ---------------------------------------------------------------------


def test_cached_training_matches_training_on_images(tiny, cfg_factory, tmp_path):
    heads = {}
    for cache in ("off", "auto"):
        cfg = cfg_factory(*tiny, f"features.cache={cache}", "callbacks=none", "test=false")
        out = tmp_path / cache
        out.mkdir()
        heads[cache] = train_pipeline(cfg, out)
    off, auto = heads["off"]["metrics"], heads["auto"]["metrics"]
    assert off["train/loss"] == pytest.approx(auto["train/loss"], abs=1e-4)
    assert off["val/acc"] == pytest.approx(auto["val/acc"], abs=1e-6)


def test_cached_training_checkpoints_get_their_backbone_once_at_the_end(
    tiny, cfg_factory, tmp_path
):
    from transferlab.features import slim

    cfg = cfg_factory(*tiny, "epochs=2")
    result = train_pipeline(cfg, tmp_path)
    folder = Path(result["best_checkpoint"]).parent
    module = build_module(cfg, instantiate(cfg.data.source))
    backbone = {slim.PREFIX + k: v for k, v in module.net.backbone.state_dict().items()}
    for name in ("best.ckpt", "last.ckpt"):  # self-contained, as save_backbone=true promises
        state = torch.load(folder / name, weights_only=True)["state_dict"]
        assert all(torch.equal(state[k], v) for k, v in backbone.items()), name
    # ... but each epoch's save during fit left the frozen backbone out
    assert module.feature_input  # built to train its head on cached features
    digest = record_backbone_digest(module)
    assert digest == cache_io.state_digest(module.net.backbone)
    assert module.hparams["features"]["weights_digest"] == digest
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["state_dict"] and not set(backbone) & set(checkpoint["state_dict"])
    torch.save(checkpoint, folder / "mid_fit.ckpt")
    os.link(folder / "mid_fit.ckpt", folder / "z_mid_fit_last.ckpt")  # as best and last.ckpt
    slim.complete_checkpoints(module, folder)
    for name in ("mid_fit.ckpt", "z_mid_fit_last.ckpt"):
        state = torch.load(folder / name, weights_only=True)["state_dict"]
        assert all(torch.equal(state[k], v) for k, v in backbone.items()), name
    assert os.path.samefile(folder / "mid_fit.ckpt", folder / "z_mid_fit_last.ckpt")


def test_slim_checkpoint_restores_its_backbone_or_says_the_weights_moved(
    tiny, cfg_factory, tmp_path
):
    from transferlab.models import packaged_lite

    weights = tmp_path / "lite0.pth"
    torch.save(packaged_lite.timm_state_dict("efficientnet_lite0"), weights)
    cfg = cfg_factory(*tiny, f"model.weights={weights}", "features.save_backbone=false")
    result = train_pipeline(cfg, tmp_path)
    best = result["best_checkpoint"]
    state = torch.load(best, weights_only=True)["state_dict"]
    assert not any(k.startswith("net.backbone.") for k in state)
    restored = ClassifierModule.load_from_checkpoint(best, weights_only=True)
    full = build_module(cfg, instantiate(cfg.data.source))
    assert torch.equal(restored.net.backbone.conv_stem.weight, full.net.backbone.conv_stem.weight)

    shutil.move(weights, tmp_path / "elsewhere.pth")
    with pytest.raises(UserError, match="weights cannot be found again"):
        ClassifierModule.load_from_checkpoint(best, weights_only=True)
    changed = packaged_lite.timm_state_dict("efficientnet_lite0")
    changed["conv_stem.weight"] += 0.01
    torch.save(changed, weights)
    with pytest.raises(UserError, match="changed or moved"):
        ClassifierModule.load_from_checkpoint(best, weights_only=True)


@pytest.mark.slow
def test_svm_on_three_l2_normalised_blocks_runs_and_eval_reproduces_it(tiny, tmp_path):
    args = ["head=svm", LAYERS, "features.l2norm=true", *tiny]
    proc = run_cli("train.py", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    result = summary(run)
    assert result["status"] == "completed" and result["epochs"] == 1
    assert {"train/acc", "val/acc", "val/acc_best", "test/acc", "test/loss"} <= set(
        result["metrics"]
    )
    assert result["metrics"]["test/acc"] >= 0.9
    assert "test/ece" not in result["metrics"]  # SVM margins are no probabilities to calibrate
    assert "head=svm: LinearSVC" in (run / "train.log").read_text()
    proc = run_cli("eval.py", f"ckpt_path={run}/checkpoints/best.ckpt", QUIET, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (evaluated,) = run_dirs(tmp_path / "logs", "eval/runs/*")
    assert summary(evaluated)["metrics"]["test/acc"] == pytest.approx(
        result["metrics"]["test/acc"], abs=1e-6
    )


@pytest.mark.slow
def test_sweep_over_optimizers_and_lrs_computes_features_once(tiny, tmp_path):
    proc = run_cli("train.py", "-m", "optimizer=sgd,adam", "lr=1e-3,1e-2", *tiny, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = run_dirs(tmp_path / "logs", "train/multiruns/*/*")
    logs = [(job / "train.log").read_text() for job in jobs]
    assert len(jobs) == 4 and {summary(j)["status"] for j in jobs} == {"completed"}
    assert [computed_splits(text) for text in logs] == [3, 0, 0, 0]
    assert all(text.count("Feature cache hit") == 3 for text in logs[1:])
