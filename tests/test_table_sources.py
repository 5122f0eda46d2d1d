"""data=csv, data=hf and data=torchvision data.source.name=<any set>: each read from files in
its library's own on-disk format, with its own splits, offline; train.py, rank.py and the
study read them."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from tests.conftest import QUIET, compose_cfg, run_cli, run_cli_on_fixtures, run_dirs, summary
from tests.table_files import digit_images, write_digits_csv, write_hf_digits
from tests.torchvision_files import (
    FixtureFiles,
    md5_checks_skipped,
    write_cifar100,
    write_eurosat,
    write_stl10,
)
from transferlab.data.csv_table import CsvSource
from transferlab.data.memory import in_memory
from transferlab.data.torchvision_sets import TorchvisionSource
from transferlab.errors import UserError

# Small runs: 8 px digits, the tiny CNN, one epoch, no worker processes.
QUICK = ("model=cnn", "mode=scratch", "epochs=1", "data.num_workers=0", QUIET)


def _rows_with_splits() -> list[tuple[int, str, str]]:
    """60 digits 0-2: 36 train, 12 'valid' and 12 'test', each split holding all 3 classes."""
    _, target = digit_images()
    rows, seen = [], {0: 0, 1: 0, 2: 0}
    for i, digit in enumerate(target.tolist()):
        if digit in seen and seen[digit] < 20:
            split = ("train", "train", "train", "valid", "test")[seen[digit] % 5]
            rows.append((i, f"digit {digit}", split))
            seen[digit] += 1
    return rows


# --- CSV ----------------------------------------------------------------------------------


def test_csv_source_reads_its_split_column_and_paths_relative_to_the_csv(tmp_path):
    file = write_digits_csv(tmp_path / "set", _rows_with_splits())
    source = CsvSource(file, split_column="split", channels=1)
    source.prepare()
    train, val, test = source.splits(seed=0)
    assert source.classes == ["digit 0", "digit 1", "digit 2"]
    assert (len(train), len(val), len(test)) == (36, 12, 12)
    image, label = val[0]
    assert image.size == (8, 8) and image.mode == "L" and label in (0, 1, 2)
    assert all(Path(f).is_relative_to(tmp_path / "set" / "images") for f in train.files)


def test_csv_without_a_split_column_is_carved_stratified_and_seeded(tmp_path):
    rows = [(i, str(t), None) for i, t in enumerate(digit_images()[1][:200].tolist())]
    file = write_digits_csv(tmp_path, rows)
    assert CsvSource(file).classes == [str(d) for d in range(10)]  # numbers sort as numbers
    first, again = CsvSource(file).splits(seed=3), CsvSource(file).splits(seed=3)
    assert [len(s) for s in first] == [139, 31, 30]  # sklearn rounds the val share up
    assert [s.files for s in first] == [s.files for s in again]


def test_csv_mistakes_are_user_errors_naming_the_fix(tmp_path):
    file = write_digits_csv(tmp_path, [(0, "0", "train"), (1, "1", "holdout")])
    with pytest.raises(UserError, match=r"no column 'filename'.*path, label, split"):
        _ = CsvSource(file, path_column="filename").classes
    with pytest.raises(UserError, match=r"'holdout'.*none of train, val or test"):
        CsvSource(file, split_column="split").splits(seed=0)
    (tmp_path / "images" / "0.png").unlink()
    with pytest.raises(UserError, match=r"1 image.*do not exist.*0.png"):
        CsvSource(file).prepare()
    with pytest.raises(UserError, match="does not exist"):
        _ = CsvSource(tmp_path / "nope.csv").classes


# --- Hugging Face datasets ----------------------------------------------------------------


def test_hf_dataset_saved_to_disk_keeps_its_own_splits_and_class_names(tmp_path):
    pytest.importorskip("datasets")
    from transferlab.data.hf_datasets import HuggingFaceSource

    folder = write_hf_digits(tmp_path / "hf", {"train": 60, "validation": 20, "test": 20})
    source = HuggingFaceSource(str(folder), image_column="img", label_column="digit")
    train, val, test = source.splits(seed=0)
    assert source.classes == [f"digit {d}" for d in range(10)]
    assert (len(train), len(val), len(test)) == (60, 20, 20)
    image, label = test[0]
    assert image.mode == "RGB" and image.size == (8, 8)
    assert label == int(digit_images()[1][80])  # test holds the rows after train and val

    only_train = write_hf_digits(tmp_path / "one", {"train": 200})
    carved = HuggingFaceSource(str(only_train), image_column="img", label_column="digit")
    assert [len(s) for s in carved.splits(seed=0)] == [139, 31, 30]


def test_hf_offline_refuses_an_uncached_hub_name_at_once(tmp_path):
    pytest.importorskip("datasets")
    from transferlab.data.hf_datasets import HuggingFaceSource

    started = time.monotonic()
    with pytest.raises(UserError, match=r"could not be loaded.*download=true"):
        HuggingFaceSource("nobody/no-such-set", cache_dir=str(tmp_path)).prepare()
    assert time.monotonic() - started < 10  # online retries take ~25 s


def test_hf_without_the_datasets_package_names_the_pip_command(monkeypatch, tmp_path):
    from transferlab.data.hf_datasets import HuggingFaceSource

    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets raises ImportError
    with pytest.raises(UserError, match=r"pip install 'transferlab\[hf\]'"):
        HuggingFaceSource(str(tmp_path)).prepare()


# --- any torchvision set ------------------------------------------------------------------


def test_any_torchvision_set_by_class_name_with_its_own_split_convention(tmp_path):
    write_cifar100(tmp_path)  # train=True/False
    write_stl10(tmp_path)  # split="train"/"test"
    write_eurosat(tmp_path)  # no splits: val and test carved
    with md5_checks_skipped():
        cifar = TorchvisionSource("CIFAR100", tmp_path)
        assert len(cifar.classes) == 100 and cifar.channels == 3
        assert [len(s) for s in cifar.splits(seed=0)] == [900, 100, 200]
        stl = TorchvisionSource("STL10", tmp_path)
        train, val, test = stl.splits(seed=0)
        assert (len(train), len(val), len(test)) == (90, 10, 20)
        assert stl.classes[:2] == ["airplane", "bird"]
        batch = in_memory(train)  # STL's pixel array, sliced like CIFAR's
        assert batch is not None and batch.images.shape == (90, 3, 96, 96)
        eurosat = TorchvisionSource("EuroSAT", tmp_path)
        assert [len(s) for s in eurosat.splits(seed=0)] == [80, 10, 10]
        assert eurosat.classes[0] == "AnnualCrop" and eurosat.channels == 3
    with pytest.raises(UserError, match=r"Unknown torchvision dataset name='Cifar100'.*CIFAR100"):
        TorchvisionSource("Cifar100", tmp_path)
    with pytest.raises(UserError, match=r"STL10.*is not on disk"):
        TorchvisionSource("STL10", tmp_path / "empty").prepare()


# --- the commands -------------------------------------------------------------------------


@pytest.mark.slow
def test_train_py_trains_offline_on_a_csv_an_hf_dataset_and_cifar100(tmp_path):
    csv_file = write_digits_csv(tmp_path / "csv", _rows_with_splits())
    small = ("data.image_size=8", "batch_size=16")
    runs = [
        ("data=csv", f"data.source.file={csv_file}", "data.source.split_column=split"),
        ("data=torchvision", "data.source.name=CIFAR100", "data.source.limit=200"),
    ]
    for overrides in runs:
        proc = run_cli_on_fixtures(
            "train.py",
            *overrides,
            *QUICK,
            *small,
            "task_name=tables",
            cwd=tmp_path,
            files=_cifar100_files(tmp_path),
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
    pytest.importorskip("datasets")
    hf = write_hf_digits(tmp_path / "hf", {"train": 150, "test": 50})
    hf_args = ("data=hf", f"data.source.path={hf}", "data.source.image_column=img")
    proc = run_cli("train.py", *hf_args, "data.source.label_column=digit", *QUICK, *small,
                   "task_name=tables", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = [summary(r) for r in run_dirs(tmp_path / "logs", "tables/runs/*")]
    assert [s["status"] for s in found] == ["completed"] * 3
    assert all(
        {"test/acc", "test/balanced_acc", "test/macro_f1"} <= set(s["metrics"]) for s in found
    )


def _cifar100_files(tmp_path) -> FixtureFiles:
    files = FixtureFiles(tmp_path / "data", tmp_path / "torch")
    if not (files.data_dir / "cifar-100-python").is_dir():
        write_cifar100(files.data_dir)
        files.torch_home.mkdir(parents=True, exist_ok=True)
    return files


def test_the_study_counts_a_csv_sets_splits(tmp_path):
    from transferlab.study.arms import split_counts

    file = write_digits_csv(tmp_path, _rows_with_splits())
    cfg = compose_cfg(
        "study",
        ["data=csv", f"data.source.file={file}", "data.source.split_column=split"],
        tmp_path,
    )
    counts = split_counts(cfg)
    assert (counts.train, counts.val, counts.test, counts.classes) == (36, 12, 12, 3)


@pytest.mark.slow
def test_rank_py_ranks_backbones_on_a_csv_set(tmp_path):
    file = write_digits_csv(tmp_path / "csv", _rows_with_splits())
    proc = run_cli(
        "rank.py",
        "backbones=[cnn,random:cnn]",
        "data=csv",
        f"data.source.file={file}",
        "data.source.split_column=split",
        "data.image_size=16",
        "data.num_workers=0",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| rank | backbone |" in proc.stdout
    (folder,) = run_dirs(tmp_path / "logs")
    assert (folder / "ranking.json").is_file()


def test_a_missing_required_source_key_is_refused_before_torch_loads(tmp_path):
    for data, key in (("csv", "file"), ("hf", "path"), ("torchvision", "name")):
        proc = run_cli("train.py", f"data={data}", QUIET, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr[-2000:]
        assert f"needs data.source.{key}" in proc.stderr + proc.stdout
