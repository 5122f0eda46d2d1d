"""The Optuna study of a search: storage, sampler, pruner, heartbeats, and trials by number.

A study lives in `hparams_search.storage` (any SQLAlchemy URL; null keeps it in memory)
under `hparams_search.study_name`, so running the same command again, or a second process
beside the first, continues one study. Trials of a stored study send heartbeats while they
run; a trial whose process was killed goes stale and is marked failed (and re-queued with
its parameters `retry_killed` times).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from transferlab import compat
from transferlab.errors import UserError

SAMPLERS = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "cmaes": "CmaEsSampler",
    "qmc": "QMCSampler",
    "gp": "GPSampler",
}
PRUNERS = {
    "median": "MedianPruner",
    "hyperband": "HyperbandPruner",
    "successive_halving": "SuccessiveHalvingPruner",
    "none": "NopPruner",
}

PRUNED_ATTR = "pruned_after_epoch"  # a trial's user attribute, set by its pruning callback

# Studies this process's sweeper runs, by name: a trial run in this process (the basic
# launcher) reports its epochs through it, the only way into an in-memory study.
_RUNNING: dict[str, Any] = {}


def direction_of(metric: str) -> str:
    """Losses are minimised, everything else (accuracies, F1) maximised."""
    return "minimize" if "loss" in metric else "maximize"


def _build(spec: Any, table: dict[str, str], module: Any, kind: str, **extra: Any) -> Any:
    """A sampler or pruner from a name in `table` or a `{_target_: ..., **kwargs}` mapping."""
    if isinstance(spec, Mapping):
        from hydra.utils import instantiate

        return instantiate(dict(spec), **extra)
    if str(spec) not in table:
        raise UserError(
            f"hparams_search.{kind}={spec} is not one of {', '.join(table)}. Pick one of "
            f"those, or give {{_target_: optuna.{kind}s.<Class>, ...}}."
        )
    return getattr(module, table[str(spec)])(**extra)


def make_sampler(search: Mapping, seed: int) -> Any:
    import optuna

    return _build(search.get("sampler", "tpe"), SAMPLERS, optuna.samplers, "sampler", seed=seed)


def make_pruner(search: Mapping) -> Any:
    import optuna

    return _build(search.get("pruner", "median"), PRUNERS, optuna.pruners, "pruner")


def make_storage(search: Mapping) -> Any:
    """RDB storage with heartbeats for a URL; in-memory storage for null."""
    import optuna

    url = search.get("storage")
    if not url:
        return optuna.storages.InMemoryStorage()
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError

    try:
        parsed = make_url(str(url))
    except ArgumentError as err:
        raise UserError(
            f"hparams_search.storage={url} is not an SQLAlchemy URL ({err}). Give e.g. "
            "sqlite:///logs/optuna.db or postgresql://user@host/db, or null for memory."
        ) from None
    if parsed.drivername.startswith("sqlite") and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    beat = int(search.get("heartbeat_s") or 0)
    retry = optuna.storages.RetryHeartbeatStaleTrialCallback
    retries = int(search.get("retry_killed") or 0)
    settings = {
        "heartbeat_interval": beat or None,
        "grace_period": 2 * beat if beat else None,
        "heartbeat_stale_trial_callback": retry(max_retry=retries) if beat and retries else None,
    }
    for attempt in range(2):
        try:
            return optuna.storages.RDBStorage(str(url), **settings)
        except (IntegrityError, OperationalError):
            # Two workers creating a new database's tables at once: one loses the race
            # (alembic_version UNIQUE); a moment later the tables are there.
            time.sleep(1 + attempt)
    return optuna.storages.RDBStorage(str(url), **settings)  # a third failure is real


def open_study(search: Mapping, direction: str) -> Any:
    """The named study in its storage, created on first use; registered for this process."""
    import optuna

    study = optuna.create_study(
        storage=make_storage(search),
        study_name=str(search.get("study_name") or "search"),
        direction=direction,
        pruner=make_pruner(search),
        load_if_exists=True,
    )
    if study.direction.name.lower() != direction:
        raise UserError(
            f"The study {study.study_name} in {search.get('storage')} was made to "
            f"{study.direction.name.lower()}, not {direction} the metric asked now. Give "
            "another hparams_search.study_name, or the optimized_metric it was made for."
        )
    _RUNNING[study.study_name] = study
    return study


def seeded_trial(study: Any, number: int, search: Mapping, seed: int) -> Any:
    """Trial `number` sampled with seed + number: a resumed or parallel process never
    replays another's random draws, and a fresh search repeats itself exactly."""
    import optuna

    sampling = optuna.Study(
        study.study_name,
        compat.optuna_storage(study),
        sampler=make_sampler(search, seed + number),
        pruner=study.pruner,
    )
    return optuna.trial.Trial(sampling, compat.optuna_trial_id(study, number))


def trial_of(search: Mapping, number: int) -> Any:
    """Trial `number` of the search's study, from this process or from its storage."""
    import optuna

    name = str(search.get("study_name") or "search")
    study = _RUNNING.get(name)
    if study is None:
        if not search.get("storage"):
            return None  # an in-memory study of another process (a parallel launcher)
        study = optuna.load_study(
            study_name=name, storage=str(search.storage), pruner=make_pruner(search)
        )
    return optuna.trial.Trial(study, compat.optuna_trial_id(study, number))


def was_pruned(study: Any, number: int) -> bool:
    """Whether trial `number`'s pruning callback stopped it, in whichever process it ran.

    Read from the storage itself: a `Trial` object caches its attributes, and a job run
    by another process (joblib, submitit) wrote them through its own connection.
    """
    trial = compat.optuna_storage(study).get_trial(compat.optuna_trial_id(study, number))
    return PRUNED_ATTR in trial.user_attrs


def heartbeat_s(study: Any) -> int | None:
    """Seconds between a running trial's heartbeats; None where the storage keeps none."""
    storage = compat.optuna_storage(study)
    return storage.get_heartbeat_interval() if hasattr(storage, "get_heartbeat_interval") else None


@contextlib.contextmanager
def heartbeats(study: Any, numbers: list[int]) -> Iterator[None]:
    """While inside, trials `numbers` tell the storage they are alive (a stored study)."""
    storage, interval = compat.optuna_storage(study), heartbeat_s(study)
    if not interval:
        yield
        return
    ids = [compat.optuna_trial_id(study, n) for n in numbers]
    stop = threading.Event()

    def beat() -> None:
        while True:
            for trial_id in ids:
                storage.record_heartbeat(trial_id)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
