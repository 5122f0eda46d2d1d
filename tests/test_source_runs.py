"""A transfer experiment's source run is data in its own conf/experiment YAML (`source_run`):
the results page, the sweep tests and train.py's missing-value message all read it there."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from results.results import source_args, source_run
from tests.conftest import EXPERIMENTS, compose_cfg
from transferlab.checks.commands import validate_train
from transferlab.config_dirs import CONF_DIR
from transferlab.errors import UserError

TRANSFER = "transfer_mnist_cnn_to_digits"


def _declared(conf_dir: str | Path, name: str) -> list[str]:
    """The experiment file's own `source_run` list, read as plain YAML."""
    return yaml.safe_load((Path(conf_dir) / "experiment" / f"{name}.yaml").read_text())[
        "source_run"
    ]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_an_experiment_needing_a_checkpoint_declares_the_valid_run_that_makes_it(name, tmp_path):
    cfg = compose_cfg("train", [f"experiment={name}"], tmp_path)
    source = source_run(name)
    # `in cfg` is False for a ??? value: list the keys
    key = "pretrained_ckpt"
    needs_checkpoint = key in list(cfg) and OmegaConf.is_missing(cfg, key)
    assert bool(source) == needs_checkpoint, (name, source)
    if source:  # the run it starts from composes and passes train.py's checks itself
        validate_train(compose_cfg("train", source, tmp_path / "source"))


def test_the_results_page_trains_the_source_run_its_experiment_yaml_declares(tmp_path):
    quick = ["epochs=1", "data.source.limit=300"]
    assert source_args(TRANSFER, quick) == [*_declared(CONF_DIR, TRANSFER), *quick, "seed=0"]
    assert source_args("sgd_vs_adam", quick) == []  # starts from no run of ours

    conf = shutil.copytree(CONF_DIR, tmp_path / "conf")
    path = conf / "experiment" / f"{TRANSFER}.yaml"
    path.write_text(path.read_text().replace("epochs=1,", "epochs=4, model.activation=tanh,"))
    changed = source_args(TRANSFER, quick, conf_dir=conf)
    assert changed == [*_declared(conf, TRANSFER), *quick, "seed=0"]
    assert "model.activation=tanh" in changed
    assert changed.index("epochs=4") < changed.index("epochs=1")  # the page's cuts win


def test_a_missing_source_checkpoint_names_the_run_to_train_first(tmp_path):
    cfg = compose_cfg("train", [f"experiment={TRANSFER}"], tmp_path)
    command = " ".join(["python train.py", *_declared(CONF_DIR, TRANSFER)])
    with pytest.raises(UserError, match="pretrained_ckpt") as refused:
        validate_train(cfg)
    assert f"`{command}`" in str(refused.value)
