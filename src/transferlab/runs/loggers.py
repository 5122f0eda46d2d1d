"""Experiment trackers besides the CSV file; Weights & Biases never decides a run's fate.

W&B starts offline when no API key is configured (no prompt, no network), a W&B that
cannot start is dropped with a warning, and at the end of a run its plots and summary.json
are added to the W&B run before it is closed.
"""

from __future__ import annotations

import logging
import netrc
import os
import sys
from pathlib import Path
from urllib.parse import urlparse

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf

from transferlab.masking import mask_secrets
from transferlab.runs.summary import read_summary

log = logging.getLogger("transferlab")


def instantiate_logger(node: DictConfig, cfg: DictConfig) -> Logger | None:
    """The configured logger; for W&B, None (and a warning) when it cannot start."""
    if not str(node.get("_target_", "")).endswith("WandbLogger"):
        return instantiate(node)
    kwargs = {}
    if not os.environ.get("WANDB_MODE") and not _wandb_key_configured():
        kwargs["offline"] = True
        log.info("No W&B API key: logging offline; upload later with `wandb sync`.")
    if cfg.get("ckpt_path") and (run_id := _previous_wandb_id(node.get("save_dir"))):
        kwargs.update(id=run_id, resume="allow")  # resume=<run>: the same W&B run goes on
        log.info("Resuming W&B run %s.", run_id)
    try:
        logger = instantiate(node, **kwargs)
        # Started now, not at the first log call inside fit, so a failure is caught here.
        logger.experiment.config.update(
            mask_secrets(OmegaConf.to_container(cfg, resolve=True)), allow_val_change=True
        )
    except Exception as err:
        log.warning(
            "W&B could not start (%s: %s); the run goes on without it.", type(err).__name__, err
        )
        return None
    return logger


def _previous_wandb_id(save_dir) -> str | None:
    """The id of the newest W&B run in this run folder (`[offline-]run-<time>-<id>`)."""
    if not save_dir:
        return None
    runs = sorted(Path(save_dir, "wandb").glob("*run-*-*"), key=lambda p: p.stat().st_mtime)
    return runs[-1].name.rsplit("-", 1)[1] if runs else None


def _wandb_key_configured() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host or "") is not None
    except (OSError, netrc.NetrcParseError):
        return False


def finish_wandb(output_dir: Path) -> None:
    """Add the run's plots and summary to the open W&B run, then close it."""
    wandb = sys.modules.get("wandb")
    run = getattr(wandb, "run", None)
    if run is None:
        return
    try:
        plots = sorted(Path(output_dir, "plots").glob("*.png"))
        if plots:
            run.log({f"plots/{p.stem}": wandb.Image(str(p)) for p in plots})
        summary = read_summary(output_dir) if (output_dir / "summary.json").is_file() else {}
        run.summary.update(
            {
                "status": summary.get("status"),
                "error": summary.get("error"),
                "epochs": summary.get("epochs"),
                "wall_time_s": summary.get("wall_time_s"),
                "run_dir": str(output_dir),
                **{f"params/{k}": v for k, v in (summary.get("params") or {}).items()},
                **(summary.get("metrics") or {}),
            }
        )
        run.finish(exit_code=0 if summary.get("status") == "completed" else 1)
    except Exception as err:
        log.warning(
            "W&B could not finish cleanly (%s: %s); the run is unaffected.", type(err).__name__, err
        )
