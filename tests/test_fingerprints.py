"""How a split's images are told apart is the data's own answer (`fingerprint_parts()`),
which the feature cache asks without knowing the kinds of data."""

from __future__ import annotations

import ast
from pathlib import Path

import torch
from torch.utils.data import Subset

from transferlab.data.datamodule import Transformed
from transferlab.data.image_folder import ImageFiles
from transferlab.data.memory import BatchedImages
from transferlab.data.sources import TensorImages
from transferlab.features.cache import dataset_fingerprint

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "transferlab"


def _data_classes() -> set[str]:
    return {
        node.name
        for path in (PACKAGE / "data").glob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    }


def test_no_module_of_features_dispatches_on_a_kind_of_data():
    kinds = _data_classes() | {"VisionDataset"}
    found = []
    for path in sorted((PACKAGE / "features").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "isinstance":
                names = {n.id for n in ast.walk(node.args[1]) if isinstance(n, ast.Name)}
                names |= {n.attr for n in ast.walk(node.args[1]) if isinstance(n, ast.Attribute)}
                found += [f"{path.name}:{node.lineno} {k}" for k in sorted(names & kinds)]
    assert "TensorImages" in kinds and "ImageFiles" in kinds
    assert found == [], found


def test_tensor_and_file_fingerprints_keep_the_cache_keys_they_had():
    # Pinned: a changed digest makes every cached feature recompute once, so only on purpose.
    images = torch.arange(2 * 1 * 3 * 3, dtype=torch.uint8).reshape(2, 1, 3, 3)
    tensors = TensorImages(images, torch.tensor([0, 1]))
    files = ImageFiles(["a/0.png", "b/1.jpg"], [0, 1], "RGB", ["10|5", "20|6"], draft_size=32)
    assert dataset_fingerprint(Subset(Transformed(Subset(tensors, [1, 0]), str), [1])) == (
        "d4dcaa15a7d6ba97af36f818bbe76510261ecf006c2cc7ab83beb81603f3f0ed"
    )
    assert dataset_fingerprint(BatchedImages(images, torch.tensor([0, 1]))) == (
        dataset_fingerprint(tensors)
    )
    assert dataset_fingerprint(Subset(files, [0])) == (
        "4a3fd3068fd0ad1c53809474d071cfb2cf77e32b2fda7fd3c8eedec9e05908ac"
    )
    assert dataset_fingerprint(files.at_draft_size(64)) != dataset_fingerprint(files)
