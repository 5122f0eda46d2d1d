"""Every experiment config composes, and so does every job of the sweep it declares."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from tests.conftest import EXPERIMENTS, compose_cfg, compose_hydra, sweep_jobs
from transferlab.checks.commands import validate_train

USER_FILES = ("pretrained_ckpt", "places365_weights")


def test_there_are_at_least_twelve_experiments_named_after_their_comparison():
    assert len(EXPERIMENTS) >= 12
    assert {"sgd_vs_adam", "leaky_relu_vs_tanh", "finetune_vs_feature_extract"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_job_of_every_experiment_composes_and_passes_the_config_checks(name, tmp_path):
    jobs = sweep_jobs(name)
    assert jobs, f"{name} declares no sweep"
    seeds = {o for job in jobs for o in job if o.startswith("seed=")}
    assert len(seeds) >= 3 or name == "digits_cnn_tanh_sgd", "a comparison needs >= 3 seeds"
    configs = {tuple(o for o in job if not o.startswith("seed=")) for job in jobs}
    for job in sorted(configs):  # the seed changes no composition: one job per config
        cfg = compose_cfg("train", [f"experiment={name}", *job], tmp_path)
        assert OmegaConf.select(cfg, "tags"), name
        if any(OmegaConf.is_missing(cfg, key) for key in USER_FILES if key in list(cfg)):
            continue  # needs the user's file: a previous run's checkpoint, Places365 weights
        validate_train(cfg)
        if cfg.head.name == "svm":
            assert cfg.mode.name == "feature_extract" and cfg.features.layers
            assert cfg.features.l2norm and list(cfg.model.head.hidden) == []


def test_an_arm_sweep_gives_each_arm_its_own_mode_and_head():
    arms = {}
    for job in sweep_jobs("lite0_svm_vs_finetune_vs_scratch"):
        cfg = compose_hydra("train", ["experiment=lite0_svm_vs_finetune_vs_scratch", *job])
        assert f"arm={cfg.arm.name}" in job  # each job is one conf/arm YAML, named in its node
        arms[cfg.mode.name] = (cfg.head.name, cfg.features.layers, cfg.model.pretrained)
    assert arms["feature_extract"] == ("svm", ["blocks.4", "blocks.5", "blocks.6"], True)
    assert arms["finetune"] == ("linear", None, True)
    assert arms["scratch"] == ("linear", None, False)
