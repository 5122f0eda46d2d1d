"""Values of secret-looking config keys (key, token, password, secret) never reach a file.

The printed config, config_tree.log, summary.json and the config sent to W&B are masked
when written. Hydra writes its own copies (.hydra/*.yaml, multirun.yaml) before any code
of ours runs, so `MaskSecrets` rewrites those as each job starts; it also masks log
records, since launchers log each job's overrides.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import yaml
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

SECRET_KEY = re.compile(r"key|token|password|secret", re.IGNORECASE)
MASK = "***"
# A secret given as a command-line override: `+wandb_api_key=abc`, inside lists and dirnames.
_SECRET_OVERRIDE = re.compile(
    r"((?:^|(?<=[,\s]))[+~]*[\w.]*(?:key|token|password|secret)[\w.]*=)([^,\s]*)", re.IGNORECASE
)


def mask_secrets(node: Any) -> Any:
    """A copy of a plain config with the values of secret-looking keys replaced by ***."""
    if isinstance(node, dict):
        return {
            k: MASK
            if SECRET_KEY.search(str(k)) and v not in (None, "") and not isinstance(v, dict | list)
            else mask_secrets(v)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [mask_secrets(v) for v in node]
    if isinstance(node, str):
        return _SECRET_OVERRIDE.sub(lambda m: m[1] + (MASK if m[2] else ""), node)
    return node


def is_masked_override(override: str) -> bool:
    return bool(_SECRET_OVERRIDE.fullmatch(override)) and override.endswith(f"={MASK}")


def mask_file(path: Path) -> None:
    """Rewrite a YAML file of Hydra's with secret values masked (untouched if it has none)."""
    if not path.is_file():
        return
    data = yaml.safe_load(path.read_text())
    masked = mask_secrets(data)
    if masked != data:
        path.write_text(yaml.safe_dump(masked, sort_keys=False))


def mask_log_records() -> None:
    """Every log record of this process is masked before any handler formats it."""
    make = logging.getLogRecordFactory()
    if getattr(make, "masks_secrets", False):
        return

    def masked(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        if isinstance(record.msg, str) and _SECRET_OVERRIDE.search(text := record.getMessage()):
            record.msg, record.args = mask_secrets(text), ()
        return record

    masked.masks_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masked)


class MaskSecrets(Callback):
    """Hydra callback: mask secrets in .hydra/*.yaml, a sweep's multirun.yaml and the logs."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        mask_log_records()

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        mask_log_records()

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        mask_log_records()  # launchers that start a fresh process per job
        hc = HydraConfig.get()
        if hc.output_subdir is not None:
            folder = Path(hc.runtime.output_dir) / hc.output_subdir
            for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
                mask_file(folder / name)
        if hc.mode == RunMode.MULTIRUN:
            mask_file(Path(hc.sweep.dir) / "multirun.yaml")
