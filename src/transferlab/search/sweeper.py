"""A search run by Hydra's launcher: ask Optuna for trials, launch them as jobs, tell results.

Each trial is an ordinary sweep job whose job number is its trial number, so its run
folder is `<sweep>/<trial number>_<params>` and its pruning callback finds the trial.
A stored study keeps its sweep folder: running the command again continues in it.
"""

from __future__ import annotations

import logging
import math
import sys
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hydra.core.utils import JobStatus
from omegaconf import OmegaConf, open_dict, read_write

from transferlab.errors import UserError
from transferlab.search import outputs
from transferlab.search import study as studies
from transferlab.search.space import search_space

log = logging.getLogger("transferlab")

JOB_ATTR = "job"  # user attribute: the trial's run folder; set once its job has ended


def run_search(sweeper: Any, arguments: list[str]) -> None:
    """Run trials until the study holds `n_trials` that ended (completed, pruned or failed)."""
    try:
        _search(sweeper, arguments)
    except UserError as err:
        print(f"\nError: {err}\n", file=sys.stderr)
        sys.exit(err.exit_code)


def _search(sweeper: Any, arguments: list[str]) -> None:
    import optuna

    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # Optuna's heartbeats assume Study.optimize; studies.heartbeats sends them for ask-and-tell.
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
    search = OmegaConf.create(OmegaConf.to_container(sweeper.search, resolve=True))
    space, fixed = search_space(sweeper.params, arguments)
    studies.make_sampler(search, seed=0)  # a wrong name is refused before the storage is opened
    study = studies.open_study(search, studies.direction_of(sweeper.optimized_metric))
    sweep_dir = _adopt_sweep_dir(sweeper.config, study)
    n_trials, n_jobs = int(search.n_trials), max(1, int(search.get("n_jobs") or 1))
    log.info("Study %s: %d trials, %s", study.study_name, n_trials, _storage_name(search))
    while True:
        optuna.storages.fail_stale_trials(study)
        ended, running = _ended_and_running(study)
        if ended >= n_trials:
            break
        free = n_trials - ended - running
        if free <= 0:  # the rest are running in other processes: wait for their ends
            time.sleep(studies.heartbeat_s(study) or 1)
            continue
        trials = [study.ask() for _ in range(min(n_jobs, free))]
        trials = [studies.seeded_trial(study, t.number, search, int(search.seed)) for t in trials]
        with studies.heartbeats(study, [t.number for t in trials]):
            for block in _consecutive(trials):
                jobs = [[*fixed, *_suggest(trial, space)] for trial in block]
                returns = sweeper.launcher.launch(jobs, initial_job_idx=block[0].number)
                for trial, job in zip(block, returns, strict=True):
                    _tell(study, trial, job)
    outputs.write(study, sweep_dir)


def _storage_name(search: Mapping) -> str:
    return f"stored in {search.storage}" if search.get("storage") else "in memory"


def _adopt_sweep_dir(config: Any, study: Any) -> Path:
    """The study's sweep folder: the first process's, so every trial lands in one place."""
    mine = str(config.hydra.sweep.dir)
    if "sweep_dir" not in study.user_attrs:
        study.set_user_attr("sweep_dir", mine)
    folder = str(study.user_attrs["sweep_dir"])
    if folder != mine:
        print(f"Continuing study {study.study_name} in {folder}.")
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweep.dir = folder
            config.hydra.overrides.hydra.append(f"hydra.sweep.dir='{folder}'")
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder)


def _ended_and_running(study: Any) -> tuple[int, int]:
    """Trials that ran to an end (a killed one did not), and those still running."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    finished = (TrialState.COMPLETE, TrialState.PRUNED)
    ended = sum(t.state in finished or JOB_ATTR in t.user_attrs for t in trials)
    # Without heartbeats a killed trial would look running for ever.
    beating = bool(studies.heartbeat_s(study))
    running = sum(t.state == TrialState.RUNNING and beating for t in trials)
    return ended, running


def _consecutive(trials: list) -> list[list]:
    """Runs of consecutive trial numbers: one launch each, job number = trial number."""
    blocks: list[list] = []
    for trial in trials:
        if blocks and blocks[-1][-1].number + 1 == trial.number:
            blocks[-1].append(trial)
        else:
            blocks.append([trial])
    return blocks


def _suggest(trial: Any, space: dict) -> list[str]:
    """The trial's overrides: one value drawn from each distribution of the space."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    overrides = []
    for key, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            value = trial.suggest_categorical(key, dist.choices)
        elif isinstance(dist, IntDistribution):
            value = trial.suggest_int(key, dist.low, dist.high, step=dist.step, log=dist.log)
        else:
            value = trial.suggest_float(key, dist.low, dist.high, step=dist.step, log=dist.log)
        overrides.append(f"{key}={value}")
    return overrides


def _tell(study: Any, trial: Any, job: Any) -> None:
    """Pruned (its callback marked it), completed with its metric, or failed (no metric)."""
    from optuna.trial import TrialState

    folder = Path(job.hydra_cfg.hydra.runtime.output_dir)
    value = job.return_value if job.status == JobStatus.COMPLETED else None
    trial.set_user_attr(JOB_ATTR, folder.name)
    if studies.was_pruned(study, trial.number):
        study.tell(trial.number, state=TrialState.PRUNED)
    elif isinstance(value, int | float) and math.isfinite(value):
        study.tell(trial.number, float(value))
    else:
        study.tell(trial.number, state=TrialState.FAIL)
