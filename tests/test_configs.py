"""Every option of every config group composes, and what it configures instantiates."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.table_files import write_digits_csv, write_hf_digits
from transferlab import defaults, heads, input_size
from transferlab.cli import CONF_DIR
from transferlab.data.transforms import Preprocess
from transferlab.models import build_model
from transferlab.pipeline import build_trainer

GROUPS = [
    "features",
    "head",
    "data",
    "model",
    "mode",
    "optimizer",
    "scheduler",
    "tune",
    "augmentation",
    "trainer",
    "logger",
    "callbacks",
    "debug",
    "experiment",
    "hparams_search",
]
OPTIONS = [
    (group, path.stem)
    for group in GROUPS
    for path in sorted((Path(CONF_DIR) / group).glob("*.yaml"))
]
NEEDS = {
    ("data", "image_folder"): "data.source.root={tmp}",
    ("model", "timm"): "model.name=resnet18",
}


def _table_source(option: str, tmp_path: Path) -> list[str]:
    """data=csv, hf and torchvision name no set of their own: a tiny one each."""
    if option == "csv":
        rows = [(i, str(i % 2), None) for i in range(6)]
        return [f"data.source.file={write_digits_csv(tmp_path / 'csv', rows)}"]
    if option == "hf":
        pytest.importorskip("datasets")
        folder = write_hf_digits(tmp_path / "hf", {"train": 20})
        columns = "data.source.image_column=img", "data.source.label_column=digit"
        return [f"data.source.path={folder}", *columns]
    return ["data.source.name=cifar10"]  # the datasets table knows its classes, no files


TABLE_SOURCES = {"csv", "hf", "torchvision"}


def test_every_group_has_options():
    found = {g for g, _ in OPTIONS}
    assert found >= set(GROUPS) - {"hparams_search"}


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_option_composes_and_instantiates(group, option, cfg_factory, tmp_path):
    overrides = [f"{group}={option}"]
    if (group, option) in NEEDS:
        for cls in ("a", "b"):
            (tmp_path / cls).mkdir()
        overrides.append(NEEDS[(group, option)].format(tmp=tmp_path))
    if group == "data" and option in TABLE_SOURCES:
        overrides += _table_source(option, tmp_path)
    cfg = cfg_factory(*overrides)
    assert cfg.optimizer.lr == cfg.lr
    assert cfg.trainer.max_epochs == cfg.epochs

    source = instantiate(cfg.data.source)
    assert len(source.classes) >= 2
    if group in ("data", "model"):
        net = build_model(
            dict(cfg.model),
            num_classes=len(source.classes),
            in_chans=source.channels,
            image_size=input_size.resolve(cfg).pixels,
            fetch_weights=False,
        )
        pre = Preprocess.following({**cfg.data, "image_size": input_size.resolve(cfg).pixels}, net)
        assert pre.channels == net.data_config["input_size"][0]
        assert net.groups, "every model exposes layer groups"
    if group in ("trainer", "logger", "callbacks", "debug"):
        if cfg.trainer.accelerator in ("gpu", "mps"):
            # No accelerator here: the config is checked, the Trainer would refuse to start.
            assert option in ("gpu", "ddp", "mps", "multinode")
            return
        trainer = build_trainer(cfg, tmp_path)
        if option == "fdr":  # fast_dev_run swaps every logger for a dummy on purpose
            assert trainer.fast_dev_run
        else:
            assert trainer.loggers[0].log_dir == str(tmp_path / "csv")


def test_the_shared_training_policy_keys_are_the_ones_the_model_builder_strips():
    from transferlab.models import POLICY_KEYS

    shared = OmegaConf.load(Path(__file__).resolve().parents[1] / "conf/train.yaml").model
    assert set(shared) == set(POLICY_KEYS)


def test_the_codes_defaults_are_the_values_conf_sets(cfg_factory):
    """A config without the key behaves as one composed from conf/."""
    cfg = cfg_factory()
    for key, value in defaults.DEFAULTS.items():
        assert OmegaConf.select(cfg, key) == value, key
    assert cfg.head.name == heads.DEFAULT
