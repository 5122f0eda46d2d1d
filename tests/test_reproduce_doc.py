"""Every `python train.py` command of docs/reproduce_seeds.md composes as the CLI would."""

from __future__ import annotations

import re
import shlex

import pytest
from hydra import initialize_config_dir

# Hydra's own sweeper splits a -m command into its jobs; no public API exposes that step.
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode

from tests.conftest import ROOT, compose_cfg
from transferlab.checks.commands import validate_train
from transferlab.cli import CONF_DIR

DOC = ROOT / "docs" / "reproduce_seeds.md"
PLACEHOLDER = re.compile(r"<([^<>\s]+)>")  # what the reader's own run made, e.g. <mnist_run>


def doc_commands(text: str) -> list[str]:
    """The doc's `python train.py ...` lines: in code blocks, `\\` continuations joined."""
    found, fenced = [], False
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced and line.startswith("python train.py"):
            found.append(line.strip())
    spans = re.findall(r"(?<!`)`(python train\.py [^`]+)`", text)  # inline code, if any
    return found + spans


COMMANDS = doc_commands(DOC.read_text())


def _jobs(overrides: list[str]) -> tuple[list[str], list[list[str]]]:
    """(Hydra's own overrides, each job's overrides) of `python train.py -m overrides`."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("train", overrides, run_mode=RunMode.MULTIRUN)
    GlobalHydra.instance().clear()
    sweeper = master.hydra.sweeper
    assert sweeper._target_.endswith("BasicSweeper"), sweeper._target_
    params = [f"{key}={value}" for key, value in (sweeper.params or {}).items()]
    task = list(master.hydra.overrides.task)
    parsed = OverridesParser.create().parse_overrides([*params, *task])
    (jobs,) = BasicSweeper.split_arguments(parsed, max_batch_size=None)
    return list(master.hydra.overrides.hydra), jobs


def test_the_doc_gives_a_command_for_every_seed_comparison():
    assert len(COMMANDS) >= 25
    experiments = {m for c in COMMANDS for m in re.findall(r"experiment=(\w+)", c)}
    assert {
        "sgd_vs_adam",
        "leaky_relu_vs_tanh",
        "finetune_vs_feature_extract",
        "alexnet_finetune_vs_feature_extract",
        "cnn_mnist_vs_svhn",
        "vgg16_head_512_vs_64",
        "vgg16_early_stopping",
        "vgg16_unfreeze_last_1_2_3",
        "vgg16_places365_finetune_vs_feature_extract",
        "vgg16_svm_vs_finetune_vs_scratch",
    } <= experiments


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_of_the_doc_composes_with_known_keys_options_and_experiments(
    command, tmp_path
):
    user_files = bool(PLACEHOLDER.search(command))
    words = shlex.split(PLACEHOLDER.sub(lambda m: str(tmp_path / m.group(1)), command))
    assert words[:2] == ["python", "train.py"], command
    args = words[2:]
    overrides = [a for a in args if not a.startswith("-")]
    if not {"-m", "--multirun"} & set(args):
        jobs, hydra = [overrides], []
    else:
        hydra, jobs = _jobs(overrides)
    # The seed changes no composition: one job per configuration.
    configs = {tuple(o for o in job if not o.startswith("seed=")) for job in jobs}
    for job in sorted(configs):
        cfg = compose_cfg("train", [*hydra, *job], tmp_path)
        if not user_files:  # a run's checkpoint or weights file that only the reader has
            validate_train(cfg)
    GlobalHydra.instance().clear()
