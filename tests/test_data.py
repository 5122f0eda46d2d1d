"""The data package: sources, splits, transforms, augmentation and the DataModule."""

import logging
import pickle
import socket
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from transferlab.data import (
    BatchTransform,
    Digits,
    ImageDataModule,
    ImageFolderSource,
    Preprocess,
    TorchvisionSource,
    augmentation_active,
    item_transform,
)
from transferlab.data.preview import GAP, ROWS, preview_grid, tile_size
from transferlab.data.transforms import check_augmentation, random_ops
from transferlab.errors import UserError

CONF = Path(__file__).resolve().parents[1] / "conf"
BASIC = OmegaConf.to_container(OmegaConf.load(CONF / "augmentation" / "basic.yaml"))
NONE = OmegaConf.to_container(OmegaConf.load(CONF / "augmentation" / "none.yaml"))
HALF = Preprocess(image_size=16, channels=3, mean=(0.5,), std=(0.5,))


def build_transforms(pre: Preprocess, aug, train: bool):
    """One image through both stages as the pipeline runs them: a tensor as an in-memory
    set's image (random steps in the batch stage), a PIL image as an image file's."""
    opts = check_augmentation(aug)

    def run(image):
        if isinstance(image, torch.Tensor):
            random = random_ops(opts, None, pre.interpolation) if train else []
            return BatchTransform(pre, random)(image[None])[0]
        return BatchTransform(pre, [])(item_transform(pre, opts, train)(image)[None])[0]

    return run


def _indices(split) -> set[int]:
    return set(split.indices)


def _labels(split) -> list[int]:
    return [split.dataset.labels[i].item() for i in split.indices]


# --- digits ---------------------------------------------------------------------------


def test_digits_splits_cover_all_1797_images_without_overlap():
    train, val, test = Digits().splits(seed=0)
    assert len(train) + len(val) + len(test) == 1797
    assert len(val) == pytest.approx(0.15 * 1797, abs=2)
    parts = [_indices(s) for s in (train, val, test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_digits_splits_hold_every_class_in_proportion():
    splits = Digits().splits(seed=0)
    overall = np.bincount(splits[0].dataset.labels.numpy(), minlength=10) / 1797
    for split in splits:
        counts = np.bincount(_labels(split), minlength=10)
        assert counts.min() > 0
        # stratified: within rounding of the overall share (a random split is off by ~5-10)
        assert np.abs(counts - overall * len(split)).max() < 1.5


def test_digits_split_is_fixed_by_the_seed():
    a, b, c = (Digits().splits(seed=s)[1] for s in (1, 1, 2))
    assert _indices(a) == _indices(b)
    assert _indices(a) != _indices(c)


def test_digits_items_are_uint8_tensors_scaled_to_full_range():
    image, label = Digits().splits(seed=0)[0][0]
    assert image.dtype == torch.uint8 and image.shape == (1, 8, 8)
    assert isinstance(label, int)
    assert max(int(x.max()) for x, _ in Digits().splits(seed=0)[2]) == 255


def test_loaders_yield_uint8_batches_that_the_batch_stage_preprocesses():
    dm = ImageDataModule(Digits(), HALF, batch_size=8)
    dm.prepare_data()
    dm.setup("fit")
    images, y = next(iter(dm.train_dataloader()))
    assert images.shape == (8, 1, 8, 8) and images.dtype == torch.uint8  # 4x less to move
    x, labels = dm.prepare_batch(images, y, train=True)
    assert x.shape == (8, 3, 16, 16) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and labels is y
    assert dm.num_classes == 10 and dm.classes == [str(d) for d in range(10)]
    assert len(next(iter(dm.test_dataloader()))[0]) == 8


def test_datamodule_setup_is_idempotent_and_shuffle_is_seeded():
    dm = ImageDataModule(Digits(), HALF, batch_size=16, seed=3)
    dm.setup()
    train_set = dm.train_set
    dm.setup("test")
    assert dm.train_set is train_set
    first = [next(iter(dm.train_dataloader()))[1] for _ in range(2)]
    assert torch.equal(first[0], first[1])
    other = ImageDataModule(Digits(), HALF, batch_size=16, seed=4)
    assert not torch.equal(first[0], next(iter(other.train_dataloader()))[1])


def test_shuffle_order_depends_only_on_seed_and_epoch_so_resumes_match():
    dm = ImageDataModule(Digits(), HALF, batch_size=16, seed=3)
    loader = dm.train_dataloader()
    orders = []
    for epoch in (0, 1, 1):
        loader.sampler.set_epoch(epoch)
        orders.append(list(loader.sampler))
    assert orders[0] != orders[1] and orders[1] == orders[2]
    fresh = dm.train_dataloader().sampler  # a resumed run builds a new loader
    fresh.set_epoch(1)
    assert list(fresh) == orders[1]
    assert sorted(orders[0]) == list(range(len(dm.train_set)))


def test_datamodule_survives_pickling_for_ddp():
    dm = ImageDataModule(Digits(), HALF, augmentation=BASIC, batch_size=4)
    dm.setup()
    clone = pickle.loads(pickle.dumps(dm))
    images, labels = next(iter(clone.val_dataloader()))
    assert clone.prepare_batch(images, labels, train=True)[0].shape == (4, 3, 16, 16)


def test_in_memory_splits_are_one_tensor_sliced_a_batch_at_a_time():
    dm = ImageDataModule(Digits(), HALF, batch_size=16, num_workers=4)
    loader = dm.test_dataloader()
    assert dm.in_memory and loader.num_workers == 0  # no processes to slice a tensor
    base_train = Digits().splits(seed=dm.seed)[2]
    images, labels = next(iter(loader))
    assert torch.equal(images, torch.stack([base_train[i][0] for i in range(16)]))
    assert labels.tolist() == [base_train[i][1] for i in range(16)]


def test_image_files_keep_a_persistent_worker_pool(tmp_path):
    _write_tree(tmp_path)
    dm = ImageDataModule(ImageFolderSource(tmp_path), HALF, batch_size=4, num_workers="auto")
    loader = dm.train_dataloader()
    assert not dm.in_memory and loader.num_workers >= 1 and loader.persistent_workers
    images, _ = next(iter(loader))
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8


def test_bad_num_workers_is_a_user_error_naming_the_value():
    with pytest.raises(UserError, match=r"num_workers.*'many'"):
        ImageDataModule(Digits(), HALF, num_workers="many")


@pytest.mark.parametrize("policy", ["trivialaugment", "randaugment", "autoaugment", "augmix"])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_policy_draws_per_image_and_leaves_eval_batches_alone(policy, channels):
    pre = Preprocess(image_size=16, channels=channels, mean=(0.5,), std=(0.5,))
    dm = ImageDataModule(Digits(), pre, augmentation={"policy": policy}, batch_size=64)
    images, labels = next(iter(dm.train_dataloader()))
    same = images[:1].expand(32, -1, -1, -1)  # one digit 32 times: draws must differ
    torch.manual_seed(0)
    x, _ = dm.prepare_batch(same, labels[:32], train=True)
    assert x.shape == (32, channels, 16, 16)
    assert len({tuple(v.flatten().tolist()) for v in x}) > 8
    evaluated = dm.prepare_batch(same, labels[:32], train=False)[0]
    assert torch.equal(evaluated, evaluated[:1].expand_as(evaluated))


def test_random_erasing_erases_per_image_after_normalisation():
    dm = ImageDataModule(Digits(), HALF, augmentation={"random_erasing": 1.0}, batch_size=8)
    white = torch.full((8, 1, 8, 8), 255, dtype=torch.uint8)
    x, _ = dm.prepare_batch(white, torch.zeros(8, dtype=torch.int64), train=True)
    erased = x == 0  # erased value 0; white normalises to 1
    assert all(e.any() for e in erased) and len({tuple(e.flatten().tolist()) for e in erased}) > 1


@pytest.mark.parametrize("key", ["mixup", "cutmix"])
def test_mixup_and_cutmix_give_soft_targets_that_sum_to_one(key):
    dm = ImageDataModule(Digits(), HALF, augmentation={key: 1.0}, batch_size=16)
    images, labels = next(iter(dm.train_dataloader()))
    x, soft = dm.prepare_batch(images, labels, train=True)
    assert soft.shape == (16, 10) and torch.allclose(soft.sum(1), torch.ones(16))
    assert (soft.gather(1, labels[:, None]) > 0).all()  # each image keeps its own class
    plain, hard = dm.prepare_batch(images, labels, train=False)
    assert hard is labels and not torch.equal(x, plain)


def test_preview_of_image_files_shows_an_unaugmented_column_then_fresh_draws(tmp_path):
    _write_tree(tmp_path)
    dm = ImageDataModule(ImageFolderSource(tmp_path), HALF, {"policy": "augmix"}, num_workers=0)
    torch.manual_seed(0)
    first = preview_grid(dm, draws=4)
    torch.manual_seed(1)
    second = preview_grid(dm, draws=4)
    tile = tile_size(16) + GAP
    assert first.shape == (GAP + ROWS * tile, GAP + 5 * tile, 3)  # ROWS x (eval + 4 draws)
    assert np.array_equal(first[:, :tile], second[:, :tile])  # the eval view
    assert not np.array_equal(first[:, tile:], second[:, tile:])  # the draws


def test_hflip_auto_flips_photos_but_not_digits():
    assert check_augmentation({"hflip": "auto"}, [str(d) for d in range(10)])["hflip"] == 0
    assert check_augmentation({"hflip": "auto"}, ["cat", "dog"])["hflip"] == 0.5
    assert check_augmentation({"hflip": 0.5}, [str(d) for d in range(10)])["hflip"] == 0.5


@pytest.mark.parametrize(
    ("option", "fragment"),
    [({"policy": "randaug"}, "randaugment"), ({"random_erasing": 2}, "random_erasing")],
)
def test_unknown_policy_or_bad_probability_is_a_user_error(option, fragment):
    with pytest.raises(UserError, match=fragment):
        check_augmentation(option)


# --- transforms -------------------------------------------------------------------------


def test_normalisation_maps_constant_images_to_exact_values():
    tf = build_transforms(HALF, None, train=False)
    white = tf(torch.full((1, 8, 8), 255, dtype=torch.uint8))
    black = tf(torch.zeros((1, 8, 8), dtype=torch.uint8))
    assert torch.allclose(white, torch.ones(3, 16, 16))
    assert torch.allclose(black, -torch.ones(3, 16, 16))


def test_grey_image_becomes_three_equal_channels():
    grey = Image.fromarray(np.arange(100, dtype=np.uint8).reshape(10, 10), mode="L")
    out = build_transforms(Preprocess(10, 3, (0.0,), (1.0,)), None, train=False)(grey)
    assert out.shape == (3, 10, 10)
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])
    assert out[0, 0, 1].item() == pytest.approx(1 / 255)


def test_rgb_image_becomes_one_luminance_channel():
    red = Image.new("RGB", (12, 12), (255, 0, 0))
    out = build_transforms(Preprocess(6, 1, (0.0,), (1.0,)), None, train=False)(red)
    assert out.shape == (1, 6, 6)
    assert out.mean().item() == pytest.approx(0.299, abs=0.01)


def test_non_square_image_is_resized_and_centre_cropped_to_square():
    wide = torch.zeros((3, 20, 40), dtype=torch.uint8)
    assert build_transforms(HALF, None, train=False)(wide).shape == (3, 16, 16)


def test_basic_augmentation_varies_train_images_but_not_eval_images():
    torch.manual_seed(0)
    image = torch.randint(0, 256, (3, 32, 32), dtype=torch.uint8)
    train_tf, eval_tf = (build_transforms(HALF, BASIC, train=t) for t in (True, False))
    assert not torch.equal(train_tf(image), train_tf(image))
    assert torch.equal(eval_tf(image), eval_tf(image))


def test_crop_without_target_size_keeps_native_size():
    pre = Preprocess(None, 1, (0.5,), (0.5,))
    out = build_transforms(pre, {"crop_scale": [0.5, 1.0]}, train=True)(
        torch.zeros((1, 8, 8), dtype=torch.uint8)
    )
    assert out.shape == (1, 8, 8)


def test_augmentation_active_only_when_an_option_is_on():
    assert augmentation_active(BASIC)
    assert augmentation_active({"hflip": 0.5})
    assert not augmentation_active(NONE)
    assert not augmentation_active(None)


def test_unknown_augmentation_option_is_a_user_error():
    with pytest.raises(UserError, match="hflipp"):
        build_transforms(HALF, {"hflipp": 0.5}, train=False)


def test_mean_with_wrong_number_of_channels_is_a_user_error():
    with pytest.raises(UserError, match="3 values"):
        Preprocess(16, 1, (0.4, 0.5, 0.6), (0.2, 0.2, 0.2))


# --- image folders ----------------------------------------------------------------------


def _write_tree(root: Path, per_class: int = 6, classes=("cat", "dog", "owl")) -> None:
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            colour = (40 * c, 10 * i, 100)
            Image.new("RGB", (10 + i, 12), colour).save(root / name / f"{i}.png")


def test_flat_image_folder_is_split_by_fractions_with_every_class(tmp_path):
    _write_tree(tmp_path)
    source = ImageFolderSource(tmp_path, val_fraction=1 / 3, test_fraction=1 / 3)
    assert source.classes == ["cat", "dog", "owl"]
    splits = source.splits(seed=0)
    assert [len(s) for s in splits] == [6, 6, 6]
    for split in splits:
        assert sorted(split.labels) == [0, 0, 1, 1, 2, 2]
    files = [set(s.files) for s in splits]
    assert not (files[0] & files[1] or files[1] & files[2] or files[0] & files[2])
    dm = ImageDataModule(source, HALF, batch_size=4)
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 16, 16) and y.max() <= 2


def test_split_folders_are_used_and_a_missing_test_folder_is_carved_from_train(tmp_path):
    _write_tree(tmp_path / "train", per_class=6)
    _write_tree(tmp_path / "val", per_class=2)
    source = ImageFolderSource(tmp_path, test_fraction=1 / 3, channels=1)
    assert source.classes == ["cat", "dog", "owl"]
    train, val, test = source.splits(seed=0)
    assert (len(train), len(val), len(test)) == (12, 6, 6)
    assert all(f.parent.parent.name == "val" for f in val.files)
    assert train[0][0].mode == "L"
    _write_tree(tmp_path / "test", per_class=1)
    assert [len(s) for s in source.splits(seed=0)] == [18, 6, 3]


def test_split_folders_with_different_classes_are_a_user_error(tmp_path):
    _write_tree(tmp_path / "train")
    _write_tree(tmp_path / "val", classes=("cat", "dog"))
    with pytest.raises(UserError, match="differ"):
        ImageFolderSource(tmp_path).splits(seed=0)


def test_missing_or_single_class_folder_is_a_user_error_naming_it(tmp_path):
    with pytest.raises(UserError, match="nowhere"):
        ImageFolderSource(tmp_path / "nowhere").prepare()
    _write_tree(tmp_path / "one", classes=("cat",))
    with pytest.raises(UserError, match="one"):
        ImageFolderSource(tmp_path / "one").prepare()


def test_corrupt_image_error_names_the_file_and_skip_corrupt_drops_it(tmp_path, caplog):
    _write_tree(tmp_path)
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png at all")
    source = ImageFolderSource(tmp_path, val_fraction=0.2, test_fraction=0.2)
    data = torch.utils.data.ConcatDataset(source.splits(seed=0))
    with pytest.raises(UserError, match=r"broken\.png"):
        [data[i] for i in range(len(data))]
    source.skip_corrupt = True
    with caplog.at_level(logging.WARNING):
        splits = source.splits(seed=0)
    assert sum(len(s) for s in splits) == 18
    assert "dropped 1" in caplog.text and "broken.png" in caplog.text


# --- torchvision datasets offline ---------------------------------------------------------


def test_missing_torchvision_dataset_offline_is_a_user_error_naming_its_folder(tmp_path):
    with pytest.raises(UserError, match="MNIST") as err:
        TorchvisionSource("mnist", root=tmp_path, download=False).prepare()
    assert str(tmp_path) in str(err.value) and "download=true" in str(err.value)


def test_download_without_network_fails_fast_with_a_user_error(tmp_path):
    start = time.monotonic()
    with pytest.raises(UserError, match="could not be downloaded"):
        TorchvisionSource("mnist", root=tmp_path, download=True).prepare()
    assert time.monotonic() - start < 15


@pytest.mark.timeout(30)  # without our socket timeout this download would hang for good
def test_download_from_an_unresponsive_network_times_out_quickly(tmp_path, monkeypatch):
    # A proxy that accepts connections but never answers: what a firewalled network looks like.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    proxy = f"http://127.0.0.1:{silent.getsockname()[1]}"
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(var, proxy)
    monkeypatch.setattr(TorchvisionSource, "download_timeout_s", 0.5)
    urllib.request.install_opener(None)  # urlopen reads the proxy variables once, then caches
    start = time.monotonic()
    try:
        with pytest.raises(UserError, match="timed out"):
            TorchvisionSource("mnist", root=tmp_path, download=True).prepare()
    finally:
        silent.close()
        urllib.request.install_opener(None)
    assert time.monotonic() - start < 5


def test_torchvision_sources_know_classes_without_loading(tmp_path):
    assert len(TorchvisionSource("flowers102", tmp_path).classes) == 102
    cifar = TorchvisionSource("cifar10", tmp_path)
    assert cifar.classes[0] == "airplane" and cifar.channels == 3 and cifar.image_size == 32
    with pytest.raises(UserError, match="imagenet"):
        TorchvisionSource("imagenet", tmp_path)


# --- configs ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((CONF / "data").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_data_config_builds_its_source(path, tmp_path):
    _write_tree(tmp_path / "images")
    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "data": OmegaConf.load(path)})
    if OmegaConf.is_missing(cfg.data.source, "root"):
        cfg.data.source.root = str(tmp_path / "images")
    assert {"source", "image_size", "mean", "std", "num_workers", "pin_memory"} <= set(cfg.data)
    source = instantiate(cfg.data.source)
    assert len(source.classes) >= 2 and source.channels in (1, 3)
