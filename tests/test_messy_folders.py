"""Folders as real disks hold them: every odd file gets the behaviour a user expects, the
pixels reach the network as the file means them, and the log says what was kept and why."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from skimage import data as photos

from tests.conftest import QUIET, run_cli, run_dirs, summary
from transferlab.data import ImageDataModule, Preprocess
from transferlab.data.datamodule import _workers
from transferlab.data.decode import open_image
from transferlab.data.image_folder import ImageFiles, ImageFolderSource
from transferlab.errors import UserError

NATIVE = Preprocess(image_size=None, channels=3, mean=(0.5,), std=(0.5,))


def write_messy_folder(root: Path) -> None:
    """Two classes with names a user might give, and what real disks leave beside images."""
    photo = Image.fromarray(photos.chelsea()).resize((60, 40))
    for name in ("black cat", "Ælfrīc's owl"):
        (root / name / "2024" / "summer").mkdir(parents=True)
        for i in range(5):
            photo.rotate(15 * i).save(root / name / f"{i}.JPG")
        photo.save(root / name / "2024" / "summer" / "deep.png")
        (root / name / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (root / name / "._0.JPG").write_bytes(b"\0\5\26\7 AppleDouble")
        (root / name / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
        (root / name / "notes.txt").write_text("shot on a phone")
        (root / name / "empty.jpg").write_bytes(b"")
    (root / "empty class").mkdir()
    (root / "empty class" / ".DS_Store").write_bytes(b"x")
    (root / "__MACOSX").mkdir()
    (root / "README.md").write_text("my photos")


def _without_empty_class(root: Path) -> None:
    (root / "empty class" / ".DS_Store").unlink()
    (root / "empty class").rmdir()


def test_a_messy_folder_keeps_the_images_and_says_in_one_block_what_it_skipped(tmp_path, caplog):
    write_messy_folder(tmp_path)
    _without_empty_class(tmp_path)
    source = ImageFolderSource(tmp_path, val_fraction=0.2, test_fraction=0.2)
    with caplog.at_level(logging.INFO, logger="transferlab"):
        splits = source.splits(seed=0)
    assert source.classes == ["black cat", "Ælfrīc's owl"]
    assert sum(map(len, splits)) == 12  # 5 upper-case .JPG + 1 nested .png per class
    (block,) = [r.getMessage() for r in caplog.records if "kept 12 images" in r.getMessage()]
    assert "2 in nested subfolders" in block
    assert "skipped 6 hidden or system file(s)" in block  # .DS_Store, ._0.JPG, Thumbs.db
    assert "skipped 2 file(s) that are not images by extension (.txt x2)" in block
    assert "skipped 2 empty (0-byte) file(s)" in block
    assert "skipped 1 file(s) beside the class folders" in block and "To change it" in block
    images = [image for split in splits for image, _ in split]
    assert all(image.mode == "RGB" for image in images)


def test_an_empty_class_folder_is_refused_with_the_fix(tmp_path):
    write_messy_folder(tmp_path)
    with pytest.raises(UserError, match=r"empty class holds no images.*remove it"):
        ImageFolderSource(tmp_path).splits(seed=0)


@pytest.mark.slow
def test_a_messy_folder_trains_end_to_end_without_a_traceback(tmp_path):
    write_messy_folder(tmp_path / "photos")
    _without_empty_class(tmp_path / "photos")
    good = tmp_path / "photos" / "black cat" / "0.JPG"
    (tmp_path / "photos" / "black cat" / "cut.jpg").write_bytes(good.read_bytes()[:300])
    common = ["data=image_folder", f"data.source.root={tmp_path / 'photos'}", "model=cnn"]
    common += ["mode=scratch", "epochs=1", "data.image_size=16", "data.num_workers=1", QUIET]
    proc = run_cli("train.py", *common, cwd=tmp_path)
    assert proc.returncode == 2 and "cut.jpg" in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Fix:" in proc.stderr
    proc = run_cli("train.py", *common, "data.skip_corrupt=true", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = sorted(run_dirs(tmp_path / "logs", "train/runs/*"))[-1]
    assert summary(run)["status"] == "completed"
    log = (run / "train.log").read_text()
    assert "kept 12 images in 2 classes" in log and "dropped 1 unreadable image(s)" in log


def _jpeg_with_orientation(path: Path, orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation  # 6: the camera was turned; viewers rotate 90° clockwise
    Image.fromarray(photos.astronaut()[::8, ::4]).save(path, exif=exif, quality=95)


def _network_input(folder: Path, name: str) -> np.ndarray:
    """The uint8 pixels of `name` as the loader hands them to the device stage."""
    dm = ImageDataModule(ImageFolderSource(folder, 0.0, 0.0), NATIVE, num_workers=0)
    dm.setup()
    train = dm.train_set
    index = next(i for i, f in enumerate(train.dataset.files) if f.endswith(name))
    return train[index][0].permute(1, 2, 0).numpy()


@pytest.fixture
def two_classes(tmp_path) -> Path:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (6, 6), "white").save(tmp_path / name / "plain.png")
    return tmp_path


def test_an_exif_rotated_jpeg_reaches_the_network_as_exif_transpose_turns_it(two_classes):
    _jpeg_with_orientation(two_classes / "a" / "portrait.jpg", 6)
    seen = _network_input(two_classes, "portrait.jpg")
    with Image.open(two_classes / "a" / "portrait.jpg") as raw:
        expected = np.asarray(ImageOps.exif_transpose(raw).convert("RGB"))
        assert raw.size == (128, 64) and expected.shape == (128, 64, 3)  # turned upright
    assert np.array_equal(seen, expected)


def test_a_cmyk_jpeg_reaches_the_network_as_its_rgb_conversion(two_classes):
    cmyk = Image.fromarray(photos.coffee()[::8, ::8]).convert("CMYK")
    cmyk.save(two_classes / "a" / "print.jpg")
    seen = _network_input(two_classes, "print.jpg")
    with Image.open(two_classes / "a" / "print.jpg") as raw:
        assert raw.mode == "CMYK"
        assert np.array_equal(seen, np.asarray(raw.convert("RGB")))


def test_a_16_bit_png_is_scaled_to_8_bits_not_clipped(two_classes):
    photo = photos.camera()[::8, ::8].astype(np.uint16) * 257  # 0..65535, a real photo
    Image.fromarray(photo).save(two_classes / "a" / "deep.png")
    with Image.open(two_classes / "a" / "deep.png") as raw:
        assert raw.mode.startswith("I") and np.asarray(raw.convert("RGB")).mean() > 250
    seen = _network_input(two_classes, "deep.png")
    assert np.array_equal(seen[..., 0], photos.camera()[::8, ::8])  # not all white
    assert 80 < seen.mean() < 160


def test_a_palette_image_with_transparency_loads_as_rgb_without_a_warning(two_classes):
    palette = Image.fromarray(photos.chelsea()[::8, ::8]).convert("P")
    palette.save(two_classes / "a" / "icon.png", transparency=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        image = open_image(two_classes / "a" / "icon.png", "RGB")
    assert image.mode == "RGB" and image.size == palette.size


def test_a_jpeg_decodes_at_reduced_scale_only_when_the_target_size_allows(tmp_path):
    Image.fromarray(photos.astronaut()).save(tmp_path / "big.jpg")  # 512 x 512
    assert open_image(tmp_path / "big.jpg", "RGB").size == (512, 512)
    assert open_image(tmp_path / "big.jpg", "RGB", draft_size=64).size == (64, 64)
    assert open_image(tmp_path / "big.jpg", "RGB", draft_size=200).size == (256, 256)
    assert open_image(tmp_path / "big.jpg", "RGB", draft_size=300).size == (512, 512)


def test_the_datamodule_drafts_for_the_crop_a_training_image_may_get(two_classes):
    size = Preprocess(image_size=32, channels=3, mean=(0.5,), std=(0.5,))
    crop = {"crop_scale": [0.25, 1.0]}
    dm = ImageDataModule(ImageFolderSource(two_classes, 0.0, 0.0), size, crop, num_workers=0)
    dm.setup()
    assert dm.train_set.dataset.draft_size == 64  # a quarter of the area: half the side
    off = ImageDataModule(ImageFolderSource(two_classes, 0.0, 0.0), size, jpeg_draft=False)
    off.setup()
    assert off.train_set.dataset.draft_size is None


def test_a_bad_image_read_in_a_loader_worker_is_a_user_error_without_its_traceback(tmp_path):
    (tmp_path / "cut.jpg").write_bytes(b"\xff\xd8\xff\xe0 not the rest of a jpeg")
    loader = torch.utils.data.DataLoader(
        ImageFiles([tmp_path / "cut.jpg"], [0], "RGB"), num_workers=1, collate_fn=list
    )
    with pytest.raises(UserError) as err:
        next(iter(loader))
    assert str(err.value).startswith(f"Cannot read image {tmp_path / 'cut.jpg'}")
    assert "Traceback" not in str(err.value)


def test_auto_workers_use_every_core_shared_among_the_ranks_of_the_machine(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _: set(range(64)), raising=False)
    assert _workers("auto") == 63
    assert _workers("auto", ranks_here=4) == 15
    assert _workers(3, ranks_here=4) == 3
