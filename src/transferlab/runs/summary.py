"""summary.json (`RunSummary`): written by every run, read by compare.py, the study and at
a sweep's end (`print_sweep_outcome`, called by runs/sweeps.SweepReport)."""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from transferlab.atomic import atomic_write_text


def _clean(value: Any) -> Any:
    """JSON-safe floats: NaN and inf become null (strict JSON readers reject them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class RunSummary(dict):
    """summary.json, the one file that says how a run ended: `status` (completed | failed),
    `error`, `metrics` and the run's other fields. A dict, so readers index it as JSON."""

    FILE = "summary.json"

    @property
    def status(self) -> str | None:
        return self.get("status")

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def metrics(self) -> dict:
        return self.get("metrics") or {}

    def write(self, output_dir: Path) -> Path:
        """Write it atomically; NaN and inf metrics become null (strict JSON readers)."""
        fields = {**self, "error": self.get("error")}
        fields["metrics"] = {k: _clean(v) for k, v in sorted(self.metrics.items())}
        path = Path(output_dir) / self.FILE
        atomic_write_text(path, json.dumps(fields, indent=2, default=str) + "\n")
        return path

    @classmethod
    def read(cls, run_dir: Path) -> RunSummary:
        return cls(json.loads((Path(run_dir) / cls.FILE).read_text()))

    @classmethod
    def read_or_none(cls, run_dir: Path) -> RunSummary | None:
        """The run's summary, or None where a killed run left none (or half of one)."""
        try:
            return cls.read(run_dir)
        except (OSError, ValueError):
            return None


def write_summary(output_dir: Path, **fields: Any) -> Path:
    """Write summary.json with `status` (completed | failed), `error` and the given fields."""
    return RunSummary(fields).write(output_dir)


read_summary = RunSummary.read
summary_or_none = RunSummary.read_or_none


def job_folders(sweep_dir: Path) -> list[Path]:
    """The job folders of a sweep, in job-number order."""

    def number(path: Path) -> int:
        head = path.name.split("_", 1)[0]
        return int(head) if head.isdigit() else sys.maxsize

    jobs = [p for p in sweep_dir.iterdir() if (p / ".hydra").is_dir()]
    return sorted(jobs, key=lambda p: (number(p), p.name))


def print_sweep_outcome(sweep_dir: Path, metric: str | None) -> int:
    """Print "N completed, M failed", each failure, the best job and the overhead; M."""
    jobs = job_folders(sweep_dir)
    summaries = {job: summary_or_none(job) for job in jobs}
    done = [j for j, s in summaries.items() if s and s.completed]
    failed = [j for j in jobs if j not in done]
    print(f"\nSweep {sweep_dir}: {len(done)} completed, {len(failed)} failed")
    for job in failed:
        error = (summaries[job] or {}).get("error") or "no summary.json: the job was killed"
        print(f"  failed: {job.name}: {error.splitlines()[0][:300]}")
    best = _best(done, summaries, metric)
    if best is not None:
        print(f"  best: {best.name} ({metric} = {summaries[best]['metrics'][metric]:.4f})")
    if overhead := _overhead(summaries[j] for j in done):
        print(f"  per-job overhead (wall time - training time): {overhead}")
    print(f"  compare: python compare.py {sweep_dir}")
    return len(failed)


def _overhead(summaries: Iterable[dict]) -> str | None:
    """Median and largest seconds a job spent outside `fit`: building, testing, writing."""
    spent = sorted(
        s["wall_time_s"] - s["train_time_s"]
        for s in summaries
        if s.get("wall_time_s") is not None and s.get("train_time_s") is not None
    )
    if not spent:
        return None
    return f"median {statistics.median(spent):.1f} s, largest {spent[-1]:.1f} s"


def _best(done: list[Path], summaries: dict, metric: str | None) -> Path | None:
    scored = [j for j in done if metric and summaries[j]["metrics"].get(metric) is not None]
    if not scored:
        return None
    sign = -1 if "loss" in metric else 1
    return max(scored, key=lambda j: sign * summaries[j]["metrics"][metric])
