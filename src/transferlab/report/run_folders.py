"""A run folder read back: its summary.json, .hydra/ overrides and config, csv/metrics.csv.

What compare.py and the results page know of a run; nothing here writes to the folder.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from transferlab.runs.summary import read_summary
from transferlab.runs.sweeps import RESUME_KEY, override_key


@dataclass
class Run:
    path: Path
    name: str
    summary: dict
    overrides: dict[str, str]
    config: DictConfig | None
    history: pd.DataFrame  # one row per epoch (counted from 1), a column per metric

    @property
    def metrics(self) -> dict:
        return self.summary.get("metrics") or {}

    @property
    def completed(self) -> bool:
        return self.summary.get("status") == "completed"

    def setting(self, key: str) -> str:
        """The run's override for `key`, else its configured value where that is a scalar."""
        if key in self.overrides:
            return self.overrides[key]
        if self.config is None:
            return "default"
        value = OmegaConf.select(self.config, key, throw_on_resolution_failure=False)
        return "default" if value is None or OmegaConf.is_config(value) else str(value)


def find_runs(folder: Path, pattern: str | None = None) -> list[Path]:
    """Run folders (those holding summary.json) below `folder`, optionally glob-filtered."""
    runs = sorted(p.parent for p in folder.rglob("summary.json"))
    if pattern:
        runs = [r for r in runs if fnmatch.fnmatch(r.relative_to(folder).as_posix(), pattern)]
    return runs


def load_run(path: Path, root: Path) -> Run:
    summary = read_summary(path)
    hydra_dir = path / ".hydra"
    overrides = summary.get("overrides")
    if overrides is None and (hydra_dir / "overrides.yaml").is_file():
        overrides = list(OmegaConf.load(hydra_dir / "overrides.yaml"))
    config = (
        OmegaConf.load(hydra_dir / "config.yaml") if (hydra_dir / "config.yaml").is_file() else None
    )
    relative = path.relative_to(root).as_posix() if path != root else path.name
    head = relative.split("_", 1)[0]
    return Run(
        path=path,
        name=f"#{head}" if "/" not in relative and head.isdigit() else relative,
        summary=summary,
        overrides={
            override_key(o): o.split("=", 1)[1]
            for o in overrides or []
            if "=" in o and override_key(o) != RESUME_KEY
        },
        config=config,
        history=_history(path / "csv" / "metrics.csv"),
    )


def _history(path: Path) -> pd.DataFrame:
    """Lightning's CSV has a row per logging call; keep the last value per epoch and metric."""
    if not path.is_file():
        return pd.DataFrame()
    frame = pd.read_csv(path)
    if "epoch" not in frame:
        return pd.DataFrame()
    frame = frame.dropna(subset=["epoch"]).groupby("epoch").last()
    frame.index = frame.index.astype(int) + 1
    return frame


def varying_keys(runs: list[Run]) -> list[str]:
    """Override keys whose value is not the same in every run, in first-seen order."""
    keys = list(dict.fromkeys(k for r in runs for k in r.overrides))
    return [k for k in keys if len({r.setting(k) for r in runs}) > 1]
