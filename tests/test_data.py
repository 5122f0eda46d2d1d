"""The DataModule: loaders, the batch stage, seeded shuffles, pickling, worker pools."""

import pickle
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from tests.conftest import HALF
from tests.torchvision_files import write_image_folder
from transferlab.cli import CONF_DIR
from transferlab.data import Digits, ImageDataModule, ImageFolderSource
from transferlab.errors import UserError

BASIC = OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "augmentation" / "basic.yaml"))


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
