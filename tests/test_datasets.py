"""The datasets table is the one home of what transferlab knows about a dataset before it
loads: the configs mirror it, the sources agree with it, and no other module tells
datasets apart by their names or their sources' `_target_`."""

from __future__ import annotations

import yaml

from tests.conftest import ROOT, compared_outside
from transferlab import datasets
from transferlab.checks.augmentation import check_augmentation
from transferlab.checks.data import class_count


def _data_configs() -> dict[str, dict]:
    found = {}
    for path in (ROOT / "conf" / "data").glob("*.yaml"):
        node = yaml.safe_load(path.read_text())
        found[path.stem] = node.get("data", node)  # @package _global_ files nest under data
    return found


def test_every_data_config_of_a_known_dataset_reads_its_row():
    configs = _data_configs()
    rows = {name: datasets.of(data) for name, data in configs.items()}
    assert {name: row.name for name, row in rows.items() if row} == {
        name: name for name in datasets.DATASETS
    }


def test_no_module_but_the_table_tells_datasets_apart_by_name_or_source_class():
    classes = {d.target.rsplit(".", 1)[-1] for d in datasets.DATASETS.values()}
    found = compared_outside({*datasets.DATASETS, *classes}, home="datasets.py")
    assert not found, "dataset names compared outside datasets.py:\n" + "\n".join(found)


def test_a_checkpoints_older_source_path_still_finds_its_row():
    data = {"source": {"_target_": "transferlab.data.sources.Digits"}}
    assert datasets.of(data) is datasets.DATASETS["digits"]


def test_a_new_dataset_is_one_row(monkeypatch):
    """A torchvision set the table did not know: its class count and flip rule follow."""
    row = datasets.Dataset("stl10", datasets.TORCHVISION_SOURCE, 96, 3, 10)
    monkeypatch.setitem(datasets.DATASETS, "stl10", row)
    data = {"source": {"_target_": datasets.TORCHVISION_SOURCE, "name": "stl10"}}
    assert datasets.of(data) is row
    assert class_count(data) == 10
    assert row.flip_safe


def test_digits_are_never_flipped_by_default_and_other_classes_are():
    assert check_augmentation({"hflip": "auto"}, classes=list(datasets.DIGITS))["hflip"] == 0.0
    assert check_augmentation({"hflip": "auto"}, classes=["cat", "dog"])["hflip"] == 0.5
