"""The file index of an image folder: listed once, reused while unchanged, refreshed where
a file was added, removed or replaced; decode verdicts kept the same way."""

from __future__ import annotations

import os

import pytest
from PIL import Image

from tests.torchvision_files import write_image_folder
from transferlab.data import file_index, image_folder
from transferlab.data.file_index import FileIndex
from transferlab.data.image_folder import ImageFolderSource
from transferlab.features.cache import dataset_fingerprint


@pytest.fixture
def scans(monkeypatch) -> list[str]:
    """The directories the index lists (os.scandir) from now on."""
    listed: list[str] = []
    real = file_index._scan_dir

    def counting(path: str, old):
        listed.append(path)
        return real(path, old)

    monkeypatch.setattr(file_index, "_scan_dir", counting)
    return listed


def images(source: ImageFolderSource) -> set[str]:
    splits = source.splits(seed=0)
    return {f for split in splits for f in getattr(split, "dataset", split).files}


def test_an_unchanged_folder_is_listed_once_and_every_later_run_reuses_the_index(tmp_path, scans):
    write_image_folder(tmp_path / "tree")
    first = FileIndex.of(tmp_path / "tree", tmp_path / "index")
    assert len(scans) == 4  # the tree and its three class folders
    again = FileIndex.of(tmp_path / "tree", tmp_path / "index")
    assert len(scans) == 4 and again.dirs == first.dirs


def test_adding_removing_and_replacing_a_file_are_seen_on_the_next_run(tmp_path, scans):
    write_image_folder(tmp_path / "tree")
    source = ImageFolderSource(tmp_path / "tree", index_dir=tmp_path / "index")
    before = images(source)
    cat = (tmp_path / "tree" / "cat").resolve()
    Image.new("RGB", (9, 9), "red").save(cat / "new.png")
    assert images(source) == before | {f"{cat}/new.png"}
    assert scans[-1] == str(cat)  # only the changed folder was listed again
    (cat / "new.png").unlink()
    assert images(source) == before
    Image.new("RGB", (30, 30), "blue").save(tmp_path / "other.png")
    fingerprint = dataset_fingerprint(source.splits(seed=0)[0])
    os.replace(tmp_path / "other.png", cat / "0.png")  # how mv and rsync replace a file
    assert dataset_fingerprint(source.splits(seed=0)[0]) != fingerprint


def test_a_file_overwritten_in_place_is_caught_by_the_stat_sample(tmp_path):
    write_image_folder(tmp_path / "tree")
    source = ImageFolderSource(tmp_path / "tree", index_dir=tmp_path / "index")
    fingerprints = [dataset_fingerprint(split) for split in source.splits(seed=0)]
    image = tmp_path / "tree" / "cat" / "0.png"
    Image.new("RGB", (40, 40), (200, 30, 30)).save(image)  # same name, same folder mtime
    assert [dataset_fingerprint(split) for split in source.splits(seed=0)] != fingerprints


def test_the_listing_keeps_the_order_of_sorted_rglob_so_seeded_splits_stay_the_same(tmp_path):
    for rel in ["a/1.png", "a b/2.png", "a/b/3.png", "a/b.png", "a/B/4.png", "a-c/5.png"]:
        (tmp_path / "tree" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / "tree" / rel)
    index = FileIndex.of(tmp_path / "tree", tmp_path / "index")
    listed = [rel for rel, _, _ in index.files("")]
    tree = (tmp_path / "tree").resolve()
    assert listed == [str(p.relative_to(tree)) for p in sorted(tree.rglob("*")) if p.is_file()]


def test_skip_corrupt_decodes_each_file_once_and_only_new_ones_later(tmp_path, monkeypatch):
    write_image_folder(tmp_path / "tree")
    (tmp_path / "tree" / "dog" / "broken.png").write_bytes(b"not a png at all")
    decoded: list[str] = []
    readable = image_folder.readable

    def counting(path: str) -> bool:
        decoded.append(path)
        return readable(path)

    monkeypatch.setattr(image_folder, "readable", counting)
    source = ImageFolderSource(tmp_path / "tree", skip_corrupt=True, index_dir=tmp_path / "i")
    assert sum(map(len, source.splits(seed=0))) == 18 and len(decoded) == 19
    assert sum(map(len, source.splits(seed=0))) == 18 and len(decoded) == 19
    Image.new("RGB", (9, 9)).save(tmp_path / "tree" / "owl" / "new.png")
    assert sum(map(len, source.splits(seed=0))) == 19 and len(decoded) == 20


def test_an_index_of_another_format_or_folder_is_rebuilt_not_trusted(tmp_path):
    write_image_folder(tmp_path / "tree")
    tree = (tmp_path / "tree").resolve()
    path = file_index.index_path(tree, tmp_path / "index")
    path.parent.mkdir()
    path.write_text('{"format": 2, "tree": "/elsewhere", "dirs": {"": {"names": []}}}')
    assert len(list(FileIndex.of(tree, tmp_path / "index").files(""))) == 18
    path.write_text("{truncated")
    assert len(list(FileIndex.of(tree, tmp_path / "index").files(""))) == 18


def test_decode_verdicts_saved_by_another_process_meanwhile_are_not_decoded_again(tmp_path):
    write_image_folder(tmp_path / "tree")
    (tmp_path / "tree" / "dog" / "broken.png").write_bytes(b"not a png at all")
    rank0 = FileIndex.of(tmp_path / "tree", tmp_path / "index")  # two ranks read the index
    rank1 = FileIndex.of(tmp_path / "tree", tmp_path / "index")
    path = file_index.index_path(rank0.tree, tmp_path / "index")
    decoded: list[str] = []

    def decodes(file: str) -> bool:
        decoded.append(file)
        return image_folder.readable(file)

    assert rank0.check_decodes(list(rank0.files("")), decodes, path) == 19
    assert rank1.check_decodes(list(rank1.files("")), decodes, path) == 0
    verdicts = {rel: d["decodes"][i] for rel, d, i in rank1.files("")}
    assert verdicts["dog/broken.png"] is False and sum(verdicts.values()) == 18
