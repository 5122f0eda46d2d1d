"""Hydra entry points behind train.py, eval.py, predict.py, export.py and compare.py.

Only hydra and omegaconf are imported at start-up: the config is checked before torch
loads, so a typo costs a second, not a traceback after a model download.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from transferlab import config_dirs, masking
from transferlab.checks import overrides
from transferlab.checks.commands import validate_eval, validate_train
from transferlab.config_dirs import CONF_DIR
from transferlab.errors import UserError
from transferlab.inference.checks import validate_export, validate_predict
from transferlab.runs import startup, sweeps

log = logging.getLogger("transferlab")

# One id per process: two runs started in the same second still get distinct folders.
_RUN_ID = secrets.token_hex(3)


def _job_dirname(num: int, overrides: str) -> str:
    """`<job number>_<overrides>` made safe as one folder name (no slashes, bounded length).

    Overrides shared by every job of the sweep are left out (runs/sweeps.py), and dotted
    keys keep their last part: `model.unfreeze=2` reads `unfreeze=2`.
    """
    short = re.sub(r"(^|,)[+~]*(?:\w+\.)+(?=\w+=)", r"\1", overrides)
    # Optuna's floats: lr=0.0005611516415334506 reads lr=0.0005612.
    short = re.sub(r"=(-?\d*\.\d{6,}(?:e-?\d+)?)", lambda m: f"={float(m[1]):.4g}", short)
    readable = re.sub(r"[^\w=,.+\-]", "_", short)[:80]
    return f"{num}_{readable}" if readable else str(num)


def _sweep_name() -> str | None:
    """Inside a sweep job, the sweep folder's name (W&B groups the sweep's runs by it)."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    return Path(HydraConfig.get().sweep.dir).name


OmegaConf.register_new_resolver("tl.run_id", lambda: _RUN_ID, replace=True)
OmegaConf.register_new_resolver("tl.job_dir", _job_dirname, replace=True)
OmegaConf.register_new_resolver("tl.sweep_name", _sweep_name, replace=True)
OmegaConf.register_new_resolver("tl.basename", lambda path: Path(str(path)).name, replace=True)


def _rank() -> int:
    return int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")))


def _quiet_other_ranks() -> None:
    """DDP children re-run this script: only rank zero writes train.log and prints info."""
    if _rank() == 0:
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler):
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("transferlab").setLevel(logging.WARNING)


def _save_config_tree(cfg: DictConfig, output_dir: Path) -> None:
    """Print the composed config as a rich tree and keep a copy in the run folder."""
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config", guide_style="dim")
    for key, value in masking.mask_secrets(OmegaConf.to_container(cfg, resolve=True)).items():
        text = OmegaConf.to_yaml(value) if isinstance(value, dict | list) else str(value)
        tree.add(str(key)).add(Syntax(text, "yaml"))
    Console().print(tree)
    with open(output_dir / "config_tree.log", "w") as f:
        Console(file=f, width=120).print(tree)


def _run(cfg: DictConfig, validate: Callable, task: str, job: str | None = None):
    """Validate, run the pipeline (or `job`), and always leave a summary.json saying how it ended.

    `job` names a module whose `run(cfg, output_dir)` runs instead of `pipeline.<task>`, for
    commands that train nothing and so need neither the pipeline's imports nor a Trainer;
    it is imported after the checks, so bad input is refused before torch loads.
    """
    hc = HydraConfig.get()
    output_dir = Path(hc.runtime.output_dir)
    overrides = masking.mask_secrets(list(hc.overrides.task))
    _quiet_other_ranks()
    if hc.mode == RunMode.MULTIRUN and cfg.get("resume"):
        done = sweeps.completed_before(output_dir, overrides)
        if done is not None:
            log.info("Skipped: this job already completed in %s (+resume=true).", output_dir)
            return done["metrics"].get(cfg.get("optimized_metric") or "")
    try:
        validate(cfg)
    except UserError as err:
        return _fail(err, output_dir, overrides, hc.mode)
    extras = cfg.get("extras") or {}
    if extras.get("ignore_warnings"):
        import warnings

        warnings.filterwarnings("ignore")
    if extras.get("print_config") and _rank() == 0:
        _save_config_tree(cfg, output_dir)

    from transferlab.runs.summary import write_summary

    if job is None:
        from transferlab import pipeline
        from transferlab.runs import distributed, loggers

    sweeps.limit_threads(hc.launcher)
    slot = distributed.gpu_pool_slot(cfg, hc) if job is None else None
    try:
        if job is None:
            result = pipeline.run_timed(getattr(pipeline, task), cfg, output_dir)
        else:
            result = importlib.import_module(job).run(cfg, output_dir)
        if slot is not None:
            result["gpu_slot"] = slot
    except UserError as err:
        return _fail(err, output_dir, overrides, hc.mode)
    except BaseException as err:
        if _rank() == 0:
            write_summary(
                output_dir,
                status="failed",
                error=f"{type(err).__name__}: {err}",
                overrides=overrides,
                task=task,
            )
        if hc.mode == RunMode.MULTIRUN and isinstance(err, Exception):
            log.exception("This job failed; the sweep goes on.")
            return None
        raise
    else:
        if _rank() == 0:
            result.setdefault("status", "completed")  # or "pruned" by a search's pruner
            write_summary(output_dir, overrides=overrides, task=task, **result)
    finally:
        if job is None:
            loggers.finish_wandb(output_dir)
    metrics = result["metrics"]
    for key in ("test/acc", "test/loss", "test/ece", "val/acc_best"):
        if key in metrics:
            log.info("%s = %.4f", key, metrics[key])
    return metrics.get(cfg.get("optimized_metric") or "", None)


def _fail(err: UserError, output_dir: Path, overrides: list[str], mode: RunMode):
    from transferlab.runs.summary import write_summary

    if _rank() == 0:
        write_summary(output_dir, status="failed", error=str(err), overrides=overrides)
    if mode == RunMode.MULTIRUN:
        # Returning (not raising) lets every sweeper run the other jobs; the end-of-sweep
        # report (runs/sweeps.py) counts this one as failed from its summary.json.
        log.error("This job failed: %s", err)
        return None
    print(f"\nError: {err}\n", file=sys.stderr)
    if os.environ.get("HYDRA_FULL_ERROR") == "1":
        raise err
    sys.exit(err.exit_code)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="train")
def _train(cfg: DictConfig):
    return _run(cfg, validate_train, "train")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def _evaluate(cfg: DictConfig):
    return _run(cfg, validate_eval, "evaluate")


@contextlib.contextmanager
def _exit_on_user_error():
    """A UserError inside leaves as its one-paragraph message and exit code, no traceback."""
    try:
        yield
    except UserError as err:
        print(f"\nError: {err}\n", file=sys.stderr)
        sys.exit(err.exit_code)


def _check_command_line(config_name: str) -> None:
    """A mistyped key or option is refused before Hydra makes a run folder (exit 2).

    First `./.env` joins the environment and the user's own configs (config_dirs) join
    Hydra's search path, so both the check and the run see them.
    """
    with _exit_on_user_error():
        sys.argv[1:] = config_dirs.with_user_configs(sys.argv[1:])
        overrides.check(CONF_DIR, config_name, sys.argv[1:])


def train() -> None:
    """python train.py [overrides]: fit, test, and write the run folder."""
    _check_command_line("train")
    startup.without_gc_until_training(_train)


def evaluate() -> None:
    """python eval.py ckpt_path=<run>/checkpoints/best.ckpt [data=...] [visualize=true]"""
    # Hydra would make `visualize=true` replace the whole options node with a bool, and
    # `visualize.max_images=8` then fails; as a switch it sets visualize.enabled instead.
    sys.argv = [
        re.sub(r"^visualize=(?i:(true|false))$", r"visualize.enabled=\1", a) for a in sys.argv
    ]
    _check_command_line("eval")
    startup.without_gc_until_training(_evaluate)


def _inference_command(name: str, validate: Callable, doc: str) -> Callable[[], None]:
    """predict and export: a Hydra entry point that checks, then runs inference.<name>."""

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=name)
    def _main(cfg: DictConfig):
        return _run(cfg, validate, name, job=f"transferlab.inference.{name}")

    def command() -> None:
        _check_command_line(name)
        _main()

    command.__doc__ = doc
    return command


predict = _inference_command(
    "predict",
    validate_predict,
    "python predict.py ckpt_path=<ckpt> input=<folder|file|glob>: predictions.csv, top-k.",
)
export = _inference_command(
    "export",
    validate_export,
    "python export.py ckpt_path=<ckpt> format=onnx|torchscript|safetensors: + model.json.",
)


def compare() -> None:
    """python compare.py [folder] [--glob PATTERN]: one table and plots for many runs."""
    from transferlab.report.compare import main

    sys.exit(main(sys.argv[1:]))


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="rank")
def _rank_backbones(cfg: DictConfig) -> None:
    from transferlab.ranking import candidates

    with _exit_on_user_error():
        candidates.check(cfg)  # before torch loads
        from transferlab.ranking import zoo

        zoo.run(cfg, CONF_DIR)


def rank() -> None:
    """python rank.py data=<any> backbones=[...]: backbones ranked from cached features."""
    _check_command_line("rank")
    startup.without_gc_until_training(_rank_backbones)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="study")
def _study(cfg: DictConfig) -> None:
    from transferlab.study import runner

    with _exit_on_user_error():
        runner.main(cfg)


def study() -> None:
    """python study.py data=<any> [study.*=...]: the decision grid in a budget -> report.md."""
    from transferlab.study.resume import study_argv

    with _exit_on_user_error():
        sys.argv = [sys.argv[0], *study_argv(sys.argv[1:])]
    _check_command_line("study")
    _study()
