"""Cached vs uncached mode=feature_extract, and a sweep that computes features once.

    python benchmarks/feature_extract.py [--epochs 10] [--seed 42] [--pairs 3] [--no-sweep]

On digits with efficientnet_lite0 at 64 px, runs train.py in rounds of three: with
features.cache=off (the frozen backbone runs on every batch of every epoch), with the
cache into an empty folder (features computed once: cold), and again on that folder
(features read: warm, the steady state of a sweep or a re-run). Early stopping is off so
every run trains the same number of epochs. Prints each run's start-up, pipeline wall
time (summary.json: build, fit, test) and process time, the per-round and median
whole-process ratios (this machine is noisy: one run can be off by 10%), and the test
accuracies. Then a 4-job optimizer x lr sweep, counting in the jobs' logs how many
computed features and how many read them from the cache.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMON = [
    "mode=feature_extract",
    "model=efficientnet_lite0",
    "data=digits",
    "data.image_size=64",
    "callbacks.early_stopping=null",
    "callbacks.rich_progress_bar=null",
    "extras.print_config=false",
]


def train(root: Path, *overrides: str) -> float:
    """Run train.py with logs under `root`; returns the process wall time."""
    env = {**os.environ, "PROJECT_ROOT": str(root), "PYTHONUNBUFFERED": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"train.py {' '.join(overrides)} failed:\n{proc.stderr[-3000:]}")
    return elapsed


def _ratios(values: list[float]) -> str:
    return ", ".join(f"{r:.2f}" for r in values)


def latest_run(root: Path) -> Path:
    return sorted((root / "logs/train/runs").iterdir())[-1]


def passes(run: Path) -> tuple[int, int]:
    """(splits computed, splits read from the cache) according to the run's log."""
    text = (run / "train.log").read_text()
    return text.count("Feature pass: computed"), text.count("Feature cache hit")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--pairs", type=int, default=3, help="rounds of uncached, cold and warm cache"
    )
    parser.add_argument("--no-sweep", action="store_true")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tl-bench-fx-"))
    measure(root, args)
    shutil.rmtree(root)  # a failed run keeps its logs there to read


def measure(root: Path, args: argparse.Namespace) -> None:
    common = [*COMMON, f"epochs={args.epochs}", f"seed={args.seed}"]
    print(f"logs and cache under {root}")
    print(f"GLIBC_TUNABLES={os.environ.get('GLIBC_TUNABLES', '(unset)')}\n")

    def measured(label: str, *overrides: str) -> tuple:
        process_s = train(root, *common, *overrides)
        run = latest_run(root)
        summary = json.loads((run / "summary.json").read_text())
        return (label, summary["wall_time_s"], process_s, summary, passes(run))

    # Each round runs uncached, cold (an empty cache folder of its own) and warm (that
    # folder again); rounds alternate the order so the machine's drift falls on all sides.
    rows, rounds = [], []
    for i in range(args.pairs):
        cache = f"features.cache_dir={root / f'cache_{i}'}"
        if i % 2 == 0:
            uncached = measured("uncached", "features.cache=off")
        cold = measured("cached, cold", "features.cache=auto", cache)
        warm = measured("cached, warm", "features.cache=auto", cache)
        if i % 2 == 1:
            uncached = measured("uncached", "features.cache=off")
        rows += [uncached, cold, warm]
        rounds.append((uncached, cold, warm))

    print(
        f"{'path':<14}{'start-up s':>11}{'pipeline s':>11}{'process s':>11}{'epochs':>8}"
        f"{'test/acc':>10}  features"
    )
    for label, wall, process_s, summary, (computed, hits) in rows:
        acc = summary["metrics"]["test/acc"]
        how = f"{computed} splits computed, {hits} read from cache" if computed + hits else "-"
        startup = summary.get("startup_s", float("nan"))  # python train.py -> first batch
        print(
            f"{label:<14}{startup:>11.1f}{wall:>11.1f}{process_s:>11.1f}{summary['epochs']:>8}"
            f"{acc:>10.4f}  {how}"
        )
    cold = [u[2] / c[2] for u, c, _ in rounds]
    warm = [u[2] / w[2] for u, _, w in rounds]
    pipeline = [u[1] / c[1] for u, c, _ in rounds]
    print(f"\nwhole process, uncached / cold cache, per round: {_ratios(cold)}")
    print(f"whole process, uncached / warm cache, per round: {_ratios(warm)}")
    print(
        f"median speed-up: whole process {statistics.median(cold):.2f}x cold cache, "
        f"{statistics.median(warm):.2f}x warm cache (goal >= 3x); pipeline time "
        f"{statistics.median(pipeline):.1f}x cold"
    )
    gap = max(
        abs(u[3]["metrics"]["test/acc"] - c[3]["metrics"]["test/acc"])
        for u, *cached in rounds
        for c in cached
    )
    print(f"largest test accuracy gap, cached vs uncached: {gap * 100:.2f} points")

    if args.no_sweep:
        return
    sweep = root / "sweep"
    sweep.mkdir()
    grid = ["-m", "mode=feature_extract", "optimizer=sgd,adam", "lr=1e-3,1e-2"]
    process_s = train(sweep, *grid, "extras.print_config=false", f"seed={args.seed}")
    jobs = sorted(p for p in (sweep / "logs/train/multiruns").glob("*/*") if p.is_dir())
    print(f"\nsweep {' '.join(grid[1:])}: {len(jobs)} jobs in {process_s:.1f} s")
    for job in jobs:
        computed, hits = passes(job)
        acc = json.loads((job / "summary.json").read_text())["metrics"]["test/acc"]
        print(f"  {job.name:<32} computed {computed} splits, cache hits {hits}, test/acc {acc:.4f}")
    computing = sum(1 for job in jobs if passes(job)[0])
    print(f"feature passes in the sweep: {computing} (jobs that computed features)")


if __name__ == "__main__":
    main()
