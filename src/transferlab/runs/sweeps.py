"""Sweeps: job folder names, `+resume=true`, threads per parallel job, and the end report.

`SweepReport` is a Hydra callback (conf/hydra/default.yaml) that runs in the launching
process, so it works the same with the basic, joblib and submitit launchers and with the
Optuna sweeper. A failed job returns instead of raising (cli.py), so the sweeper runs every
job and this callback counts them from their summary.json files at the end
(runs/summary.py reads them).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict, read_write

from transferlab.masking import mask_secrets
from transferlab.runs.summary import print_sweep_outcome, summary_or_none

log = logging.getLogger("transferlab")

RESUME_KEY = "resume"


def override_key(override: str) -> str:
    """`+model.unfreeze=2` -> `model.unfreeze`."""
    return override.split("=", 1)[0].lstrip("+~")


def without_resume(overrides: list[str]) -> list[str]:
    return [o for o in overrides if override_key(o) != RESUME_KEY]


def constant_keys(task_overrides: list[str]) -> list[str]:
    """Keys set to one value for every job: left out of job folder names."""
    parsed = OverridesParser.create().parse_overrides(task_overrides)
    return sorted({o.key_or_group for o in parsed if not o.is_sweep_override()} | {RESUME_KEY})


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _find_sweep_to_resume(resume: Any, multiruns: Path, task_overrides: list[str]) -> Path:
    """`+resume=<folder>` names the sweep; `+resume=true` finds the latest with these overrides."""
    if resume is not True:
        folder = Path(str(resume))
        if not (folder / "multirun.yaml").is_file():
            print(
                f"\nError: resume={resume} is not a sweep folder (no multirun.yaml in it). Give "
                f"a folder under {multiruns}, or +resume=true for the latest sweep with the "
                f"same overrides.\n",
                file=sys.stderr,
            )
            sys.exit(2)
        return folder
    wanted = mask_secrets(without_resume(task_overrides))  # the record holds them masked
    for folder in sorted(multiruns.glob("*/"), key=lambda p: p.name, reverse=True):
        record = folder / "multirun.yaml"
        if record.is_file():
            earlier = OmegaConf.load(record).hydra.overrides.task
            if mask_secrets(without_resume(list(earlier))) == wanted:
                return folder
    return Path()


class SweepReport(Callback):
    """Fixes the sweep folder for every job, and reports "N completed, M failed" at the end."""

    def __init__(self, exit_on_failure: bool = True) -> None:
        self.exit_on_failure = exit_on_failure

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        task_overrides = list(config.hydra.overrides.task)
        sweep_dir = Path(config.hydra.sweep.dir)
        resume = config.get(RESUME_KEY)
        if resume:
            found = _find_sweep_to_resume(resume, sweep_dir.parent, task_overrides)
            if found.name:
                sweep_dir = found
                print(f"Resuming {sweep_dir}: jobs completed there are skipped.")
            else:
                print(f"No earlier sweep with these overrides: starting {sweep_dir}.")
        exclude = [*config.hydra.job.config.override_dirname.exclude_keys]
        exclude += [k for k in constant_keys(task_overrides) if k not in exclude]
        # Each job composes its config anew from these overrides (in whatever process the
        # launcher uses), so this is how every job gets the same folder and naming.
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.sweep.dir = str(sweep_dir)
            config.hydra.job.config.override_dirname.exclude_keys = exclude
            config.hydra.overrides.hydra.append(f"hydra.sweep.dir={_quote(str(sweep_dir))}")
            config.hydra.overrides.hydra.append(
                "hydra.job.config.override_dirname.exclude_keys="
                f"[{','.join(_quote(k) for k in exclude)}]"
            )

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        failed = print_sweep_outcome(Path(config.hydra.sweep.dir), config.get("optimized_metric"))
        if failed and self.exit_on_failure:
            sys.exit(1)


def completed_before(output_dir: Path, overrides: list[str]) -> dict | None:
    """The summary of this job if an earlier run of it completed in this folder (resume)."""
    summary = summary_or_none(output_dir)
    if not summary or summary.get("status") != "completed":
        return None
    same = without_resume(summary.get("overrides") or []) == without_resume(overrides)
    return summary if same else None


def limit_threads(launcher: DictConfig) -> None:
    """Divide the CPU cores among jobs that run in parallel on this machine."""
    cpus = os.cpu_count() or 1
    n_jobs = launcher.get("n_jobs")  # joblib: jobs at once; -1 = one per core, -2 = all but one
    if "joblib" in str(launcher.get("_target_")) and n_jobs:
        parallel = cpus + 1 + n_jobs if n_jobs < 0 else n_jobs
        threads = max(1, cpus // max(1, parallel))
    elif launcher.get("cpus_per_task"):  # submitit: the cores each job was given
        threads = int(launcher.cpus_per_task)
    else:
        return
    import torch

    torch.set_num_threads(threads)
    log.info("torch threads per job: %d (%d cores)", torch.get_num_threads(), cpus)
