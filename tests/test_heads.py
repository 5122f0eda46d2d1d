"""The head table is the one home of what a head is: the configs mirror it, no other
module compares head names, and a head made of its properties needs nothing but a row."""

from __future__ import annotations

import pytest
import yaml
from hydra.utils import instantiate

from tests.conftest import ROOT, compared_outside
from transferlab import heads, pipeline
from transferlab.checks.commands import validate_train
from transferlab.errors import UserError

TINY = ("data=digits", "data.image_size=32", "+data.source.limit=40", "batch_size=16")
FEATURES = (*TINY, "mode=feature_extract", "augmentation=none", "features.cache=memory")


def test_every_head_config_names_a_row_of_the_table_and_every_row_has_a_config():
    names = {
        yaml.safe_load(f.read_text())["name"]: f.stem
        for f in (ROOT / "conf" / "head").glob("*.yaml")
    }
    assert names == {name: name for name in heads.HEADS}


def test_no_module_but_the_table_compares_a_head_name():
    found = compared_outside(heads.HEADS, home="heads.py")
    assert not found, "head names compared outside heads.py:\n" + "\n".join(found)


def test_an_unknown_head_is_refused_with_the_heads_there_are(cfg_factory):
    with pytest.raises(UserError, match=r"Unknown head .nope.\. Choose one of linear, svm, logreg"):
        validate_train(cfg_factory(*FEATURES, "head.name=nope"))


def test_a_new_head_is_one_row(cfg_factory, monkeypatch):
    """A ridge classifier fitted on cached features: no edit outside the table (and its YAML)."""
    ridge = heads.Head("ridge", estimator="sklearn.svm:LinearSVC", calibrated=False)
    monkeypatch.setitem(heads.HEADS, "ridge", ridge)
    cfg = cfg_factory(*FEATURES, "head=svm", "head.name=ridge")
    validate_train(cfg)
    module = pipeline.build_module(cfg, instantiate(cfg.data.source))
    assert module.feature_input  # fitted once on features computed once
    assert not module.metrics.ece  # not calibrated: no calibration error is logged
    with pytest.raises(UserError, match="head=ridge is fitted once on frozen backbone features"):
        validate_train(
            cfg_factory(*TINY, "mode=finetune", "augmentation=none", "head=svm", "head.name=ridge")
        )
