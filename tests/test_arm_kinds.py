"""The arm-kind table is the one home of how study.py runs an arm: each conf/arm YAML
declares its label and kind, no other module compares kind names, and a new arm is one
YAML (plus one row of the table only when it is a new kind)."""

from __future__ import annotations

import shutil

import pytest
import yaml
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from tests.conftest import ROOT, compared_outside
from transferlab import arm_kinds
from transferlab.cli import CONF_DIR
from transferlab.errors import UserError
from transferlab.study import grid, verdict
from transferlab.study import plan as planning
from transferlab.study.arms import arm_of, base_overrides
from transferlab.study.verdict import CellResult

TINY = ["data=digits", "+data.source.limit=40", "batch_size=16"]
COUNTS = planning.Counts(train=40, val=40, test=40, batch_size=16)
SETTINGS = planning.Settings(epochs=3, image_size=None, train_cut=None, seeds=1)
BACKBONE = "efficientnet_lite0"


def _arm_nodes() -> dict[str, dict]:
    return {
        f.stem: yaml.safe_load(f.read_text())["arm"] for f in (ROOT / "conf" / "arm").glob("*.yaml")
    }


def test_every_arm_config_names_itself_a_label_and_a_kind_of_the_table():
    nodes = _arm_nodes()
    assert {stem: node["name"] for stem, node in nodes.items()} == {s: s for s in nodes}
    assert all(node["label"] for node in nodes.values())
    assert {node["kind"] for node in nodes.values()} == set(arm_kinds.KINDS)
    assert {node["family"] for node in nodes.values()} == set(arm_kinds.FAMILIES)


def test_no_module_but_the_table_compares_an_arm_kind_name():
    found = compared_outside(arm_kinds.KINDS, home="arm_kinds.py")
    assert not found, "arm kinds compared outside arm_kinds.py:\n" + "\n".join(found)
    found = compared_outside(arm_kinds.FAMILIES, home="arm_kinds.py")
    assert not found, "arm families compared outside arm_kinds.py:\n" + "\n".join(found)


def test_an_unknown_arm_kind_is_refused_with_the_kinds_there_are():
    with pytest.raises(UserError, match=r"Unknown arm kind .nope.\. Choose one of classical"):
        arm_kinds.of({"name": "x", "label": "x", "kind": "nope", "family": "scratch"}, "x.yaml")
    with pytest.raises(UserError, match=r"Unknown arm family .nope.\. Choose one of scratch"):
        arm_kinds.of({"name": "x", "label": "x", "kind": "trained", "family": "nope"}, "x.yaml")


@pytest.fixture
def conf_with(tmp_path):
    """The shipped configs plus arm YAMLs of a test's own, composed as study.py composes."""

    def make(**arms: dict):
        conf = tmp_path / "conf"
        shutil.copytree(CONF_DIR, conf)
        for name, body in arms.items():
            (conf / "arm" / f"{name}.yaml").write_text("# @package _global_\n" + yaml.dump(body))
        GlobalHydra.instance().clear()
        return initialize_config_dir(config_dir=str(conf), version_base="1.3")

    yield make
    GlobalHydra.instance().clear()


def _yaml(name: str, kind: str, mode: str, head: str = "linear", model: str | None = None):
    defaults = [{"override /mode": mode}, {"override /head": head}]
    defaults += [{"override /model": model}] if model else []
    family = "frozen_features" if mode == "feature_extract" else "scratch"
    arm = {"name": name, "label": f"{name} label", "kind": kind, "family": family}
    return {"defaults": defaults, "arm": arm}


def test_a_new_arm_of_a_known_kind_is_one_yaml(conf_with):
    """Frozen features + logistic regression: the study plans it as a classical arm."""
    logreg = _yaml("features_logreg", "classical", "feature_extract", "logreg")
    with conf_with(features_logreg=logreg):
        arm = arm_of("features_logreg", TINY, BACKBONE)
    assert (arm.label, arm.kind) == ("features_logreg label", arm_kinds.KINDS["classical"])
    (cell,) = planning.cells([arm], ["adam", "sgd"], (None,))
    assert cell.optimizer is None and planning.schedule(cell, SETTINGS, COUNTS).steps == 0
    spec = OmegaConf.create({"lr": "find", "lr_find_batches": 5})
    assert not [o for o in grid.common(SETTINGS, spec, cell, COUNTS) if o.startswith("tune=")]


def test_a_new_kind_is_one_row_and_its_arms_run_as_the_row_says(conf_with, monkeypatch):
    """An MLP from random init on its own network: a row, a YAML, nothing else."""
    own = arm_kinds.ArmKind("own_network", on_backbone=False)
    monkeypatch.setitem(arm_kinds.KINDS, "own_network", own)
    with conf_with(mlp_scratch=_yaml("mlp_scratch", "own_network", "scratch", model="mlp")):
        arm = arm_of("mlp_scratch", TINY, BACKBONE)
    assert arm.kind is own
    overrides = {k: base_overrides(k, TINY, BACKBONE) for k in arm_kinds.KINDS.values()}
    assert not [o for o in overrides[own] if o.startswith("model=")]  # runs its own MLP
    cells = planning.cells([arm], ["adam"], (None,))
    spec = OmegaConf.create({"lr": "fixed"})
    (batch,) = grid.batches(cells, SETTINGS, spec, overrides, COUNTS, first=True)
    assert batch.name.startswith("own_network-")  # its own process, named for its kind
    assert batch.overrides[: len(overrides[own])] == overrides[own]


def test_an_arm_whose_kind_disagrees_with_its_head_is_refused_naming_its_file(conf_with):
    svm = _yaml("svm_trained", "trained", "feature_extract", "svm")
    refused = r"conf/arm/svm_trained.yaml declares kind 'trained', but its head 'svm' is fitted"
    with conf_with(svm_trained=svm), pytest.raises(UserError, match=refused):
        arm_of("svm_trained", TINY, BACKBONE)


def test_an_arm_without_its_node_is_refused_with_what_to_add(conf_with):
    bare = {"defaults": [{"override /mode": "finetune"}]}
    refused = r"conf/arm/bare.yaml declares no `arm: \{name, label, kind, family\}` node"
    with conf_with(bare=bare), pytest.raises(UserError, match=refused):
        arm_of("bare", TINY, BACKBONE)


def test_the_crossovers_sides_come_from_the_arms_families(tmp_path):
    """A user's own frozen arm joins the frozen side by its declared family; partial
    fine-tuning stands for the tuned side only where whole fine-tuning is absent; a plan
    older than the field reads the shipped YAML's family."""
    cells = {
        "finetune": {"arm": "finetune", "arm_family": "finetune"},
        "partial": {"arm": "partial", "arm_family": "partial_finetune"},
        "features_svm": {"arm": "features_svm", "arm_family": "frozen_features"},
        "my_frozen": {"arm": "my_frozen", "arm_family": "frozen_features"},
        "scratch": {"arm": "scratch", "arm_family": "scratch"},
        "gradual": {"arm": "gradual"},  # no arm_family: conf/arm/gradual.yaml's
    }
    results = {name: CellResult(cell, tmp_path) for name, cell in cells.items()}
    everything = list(results.values())
    assert verdict.frozen_arms(everything) == ("features_svm", "my_frozen")
    assert verdict.finetune_arms(everything) == ("finetune",)
    without = [r for n, r in results.items() if n != "finetune"]
    assert verdict.finetune_arms(without) == ("gradual", "partial")
    assert verdict.finetune_arms([results["scratch"]]) == ()
