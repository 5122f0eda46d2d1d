"""Optuna search (hparams_search=optuna): space syntax, pruning, a stored study resumed
after a kill, two processes on one storage, and the guide's commands."""

from __future__ import annotations

import csv
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode
from omegaconf import OmegaConf

from tests.conftest import QUIET, ROOT, compose_cfg, run_cli, run_dirs, summary
from transferlab.checks.commands import validate_train
from transferlab.cli import CONF_DIR
from transferlab.report.compare import main as compare_main
from transferlab.runs.summary import job_folders
from transferlab.search.space import search_space

# A tiny search: the digits CNN from scratch on 300 training images.
TINY = ("hparams_search=optuna", "model=cnn", "mode=scratch", "optimizer=adam", QUIET)
TINY += ("+data.source.limit=300", "callbacks.rich_progress_bar=null")
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def test_the_space_reads_hydra_optuna_sweeper_syntax_and_the_command_line_narrows_it():
    params = {
        "lr": "tag(log, interval(1e-4, 1e-2))",
        "optimizer": "choice(adam, sgd)",
        "model.unfreeze": "range(0, 4)",
        "mode": "choice(scratch, finetune)",
        "batch_size": "32",
    }
    space, fixed = search_space(params, ["mode=scratch", "optimizer=choice(sgd)", "epochs=2"])
    assert space["lr"] == optuna.distributions.FloatDistribution(1e-4, 1e-2, log=True)
    assert space["optimizer"].choices == ("sgd",)  # the command line's sweep replaces it
    assert space["model.unfreeze"] == optuna.distributions.IntDistribution(0, 4)
    assert "mode" not in space  # a plain value on the command line fixes the key
    assert sorted(fixed) == ["batch_size=32", "epochs=2", "mode=scratch"]


def test_an_unknown_sampler_is_refused_with_the_names_to_pick_from_and_exit_2(tmp_path):
    proc = run_cli("train.py", *TINY, "hparams_search.sampler=tpee", cwd=tmp_path)
    assert proc.returncode == 2
    assert "hparams_search.sampler=tpee is not one of tpe, random" in proc.stderr
    assert not list(tmp_path.glob("logs/train/multiruns/*/0*"))  # no trial ran


def _study(storage: Path, name: str = "train") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{storage}")


# In memory, trials run in the sweeper's process; with joblib in worker processes, which
# reach the study through its storage.
WHERE = {
    "in_memory": (),
    "joblib_workers": ("hydra/launcher=joblib", "hparams_search.storage=sqlite:///optuna.db"),
}


@pytest.mark.slow
@pytest.mark.parametrize("where", WHERE)
def test_a_diverging_lr_is_pruned_before_its_last_epoch_and_counted_as_pruned(where, tmp_path):
    # Trial n samples with seed + n: seed 46 draws lr=0.001 first, then lr=0.5, which
    # leaves adam's CNN at chance (val acc 0.1) without a NaN loss.
    proc = run_cli(
        "train.py",
        *TINY,
        *WHERE[where],
        "seed=46",
        "epochs=3",
        "lr=choice(0.001,0.5)",
        "hparams_search.n_trials=2",
        "hparams_search.sampler=random",
        "hparams_search.pruner={_target_:optuna.pruners.MedianPruner,n_startup_trials:1}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = run_dirs(tmp_path / "logs", "train/multiruns/*")
    good, bad = (summary(job) for job in job_folders(sweep))
    assert "lr=0.001" in good["overrides"] and good["status"] == "completed"
    assert good["epochs"] == 3
    assert "lr=0.5" in bad["overrides"] and bad["status"] == "pruned"
    assert bad["pruned_after_epoch"] == 0 and bad["epochs"] < 3  # stopped before its last
    assert bad["metrics"]["test/acc"] is not None  # tested and saved like any run
    assert "1 completed, 1 pruned, 0 failed" in proc.stdout
    with open(sweep / "trials.csv") as f:
        assert [row["state"] for row in csv.DictReader(f)] == ["COMPLETE", "PRUNED"]
    assert compare_main([str(sweep)]) == 0
    with open(sweep / "report.csv") as f:
        assert [row["status"] for row in csv.DictReader(f)] == ["completed", "pruned"]
    assert "1 completed, 1 pruned, 0 failed" in (sweep / "report.md").read_text()


def _stored(tmp_path: Path, n_trials: int) -> tuple[str, ...]:
    return (
        *TINY,
        "epochs=1",
        "hparams_search.pruner=none",
        f"hparams_search.n_trials={n_trials}",
        f"hparams_search.storage=sqlite:///{tmp_path / 'optuna.db'}",
        "hparams_search.heartbeat_s=1",  # a killed trial is stale 2 s later
    )


def _start(tmp_path: Path, *overrides: str) -> subprocess.Popen:
    env = {**os.environ, "PROJECT_ROOT": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
def test_a_stored_search_killed_after_three_trials_ends_with_six_when_run_again(tmp_path):
    command = (*_stored(tmp_path, n_trials=6), "hparams_search.retry_killed=1")
    first = _start(tmp_path, *command)
    deadline = time.monotonic() + 400
    while not list(tmp_path.glob("logs/train/multiruns/*/3_*/.hydra")):  # trial 3 running
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()[0]
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    again = run_cli("train.py", *command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    trials = _study(tmp_path / "optuna.db").get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == 6
    params = [tuple(sorted(t.params.items())) for t in finished]
    assert len(set(params)) == 6  # the rerun drew new parameters, none repeated
    killed = trials[3]
    assert killed.state == optuna.trial.TrialState.FAIL
    # retry_killed=1: the killed trial's parameters run again, as trial 4 where the rerun
    # finds it stale at its first look, later where its last heartbeat was still fresh
    (retried,) = [t for t in trials if t.system_attrs.get("failed_trial") == killed.number]
    assert retried.params == killed.params and retried.state in FINISHED
    (sweep,) = run_dirs(tmp_path / "logs", "train/multiruns/*")  # one folder for the study
    assert "Continuing study train in" in again.stdout
    for name in ("trials.csv", "optimization_history.png", "param_importances.png"):
        assert (sweep / name).stat().st_size > 0, name
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    assert best.best_value == max(t.value for t in finished if t.value is not None)
    done = [j for j in job_folders(sweep) if (j / "summary.json").is_file()]
    assert len(done) == 6 and all(summary(j)["status"] == "completed" for j in done)


@pytest.mark.slow
def test_two_processes_on_one_storage_run_disjoint_trials_of_one_study(tmp_path):
    command = _stored(tmp_path, n_trials=4)
    workers = [_start(tmp_path, *command) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    ran = [set(map(int, re.findall(r"#(\d+) : ", out))) for out in outputs]
    assert ran[0] and ran[1] and not ran[0] & ran[1]  # both worked, never on the same trial
    trials = _study(tmp_path / "optuna.db").get_trials()
    assert sorted(ran[0] | ran[1]) == [t.number for t in trials] == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 4


# --- docs/guide.md's Optuna section -------------------------------------------------------


def _guide_commands() -> list[str]:
    text = (ROOT / "docs" / "guide.md").read_text()
    section = text.split("### Optuna", 1)[1].split("\n### ", 1)[0]
    lines = re.sub(r"\\\n\s*", " ", section).splitlines()
    return [line.split("#")[0].strip() for line in lines if line.startswith("    python train.py")]


GUIDE = _guide_commands()


def test_the_guide_shows_the_stored_resumable_and_pruned_search():
    assert len(GUIDE) >= 4
    assert any("hparams_search.storage=sqlite:///" in c for c in GUIDE)
    assert any("hparams_search.pruner=" in c for c in GUIDE)


@pytest.mark.parametrize("command", GUIDE)
def test_each_optuna_command_of_the_guide_composes_into_valid_trials(command, tmp_path):
    overrides = shlex.split(command)[2:]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("train", overrides, run_mode=RunMode.MULTIRUN)
    GlobalHydra.instance().clear()
    sweeper = master.hydra.sweeper
    assert sweeper._target_ == "hydra_plugins.transferlab_optuna.OptunaSweeper"
    search = OmegaConf.to_container(sweeper.search, resolve=True)
    from transferlab.search import study as studies

    studies.make_sampler(search, seed=0), studies.make_pruner(search)
    space, fixed = search_space(sweeper.params, list(master.hydra.overrides.task))
    study = optuna.create_study(direction=studies.direction_of(master.optimized_metric))
    for _ in range(3):  # a few trials as the sweeper draws them, each a valid run config
        trial = study.ask(space)
        job = [*fixed, *(f"{key}={value}" for key, value in trial.params.items())]
        validate_train(compose_cfg("train", job, tmp_path))
