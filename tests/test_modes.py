"""The mode table is the one home of what a mode means: the configs mirror it, no other
module compares mode names, and a mode made of its properties needs nothing but a row."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hydra.utils import instantiate

from tests.conftest import compared_outside
from transferlab import modes, pipeline
from transferlab.checks.commands import validate_train
from transferlab.errors import UserError
from transferlab.finetune.gradual import GradualUnfreezing

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "transferlab"
TINY = ("data=digits", "data.image_size=32", "+data.source.limit=40", "batch_size=16")


def test_every_mode_config_names_a_row_of_the_table_and_every_row_has_a_config():
    names = {
        yaml.safe_load(f.read_text())["mode"]["name"]: f.stem
        for f in (ROOT / "conf" / "mode").glob("*.yaml")
    }
    assert names == {name: name for name in modes.MODES}


def test_no_module_but_the_table_compares_a_mode_name():
    found = compared_outside(modes.MODES, home="modes.py")
    assert not found, "mode names compared outside modes.py:\n" + "\n".join(found)


def test_an_unknown_mode_is_refused_with_the_modes_there_are(cfg_factory):
    with pytest.raises(UserError, match=r"Unknown mode .nope.\. Choose one of scratch, finetune"):
        validate_train(cfg_factory("mode.name=nope"))


def test_gradual_gets_its_callback_from_the_table_with_its_config_keys(cfg_factory, tmp_path):
    cfg = cfg_factory(*TINY, "mode=gradual", "mode.freeze_epochs=2", "mode.groups_per_step=3")
    trainer = pipeline.build_trainer(cfg, tmp_path)
    (callback,) = [c for c in trainer.callbacks if isinstance(c, GradualUnfreezing)]
    assert (callback.freeze_epochs, callback.unfreeze_every, callback.groups_per_step) == (2, 1, 3)
    finetune = pipeline.build_trainer(cfg_factory(*TINY), tmp_path / "finetune")
    assert not any(isinstance(c, GradualUnfreezing) for c in finetune.callbacks)


def test_a_new_mode_is_one_row(cfg_factory, monkeypatch):
    """A linear probe on cached features: no edit outside the table (and its YAML)."""
    probe = modes.Mode("probe", trains="none", weights="required", feature_cache=True)
    monkeypatch.setitem(modes.MODES, "probe", probe)
    cfg = cfg_factory(*TINY, "mode.name=probe", "augmentation=none")
    validate_train(cfg)
    module = pipeline.build_module(cfg, instantiate(cfg.data.source))
    assert module.feature_input  # the head trains on features computed once
    trainable = {n.split(".")[0] for n, p in module.net.named_parameters() if p.requires_grad}
    assert trainable == {"head"}
    scratch_only = modes.Mode("probe", trains="none", weights="required")
    monkeypatch.setitem(modes.MODES, "probe", scratch_only)
    with pytest.raises(UserError, match="mode=probe freezes backbone layers"):
        validate_train(cfg_factory(*TINY, "mode.name=probe", "model=cnn"))
