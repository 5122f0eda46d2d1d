"""Preprocessing and augmentation: the item and batch stages, policies, mixing, preview."""

from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from tests.conftest import HALF
from tests.torchvision_files import write_image_folder
from transferlab.checks.augmentation import POLICY_NAMES, augmentation_active, check_augmentation
from transferlab.cli import CONF_DIR
from transferlab.data import (
    BatchTransform,
    Digits,
    ImageDataModule,
    ImageFolderSource,
    Preprocess,
    item_transform,
)
from transferlab.data.preview import GAP, ROWS, preview_grid, tile_size
from transferlab.data.transforms import POLICIES, random_ops
from transferlab.errors import UserError

CONF = Path(CONF_DIR)
BASIC = OmegaConf.to_container(OmegaConf.load(CONF / "augmentation" / "basic.yaml"))
NONE = OmegaConf.to_container(OmegaConf.load(CONF / "augmentation" / "none.yaml"))


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


def test_the_policy_names_checked_before_torch_are_the_policies_transforms_builds():
    assert tuple(POLICIES) == POLICY_NAMES
