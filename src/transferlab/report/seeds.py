"""Runs that differ only in `seed` (or CV fold) as one row: mean ± std, n, a 95% t-interval.

One seed per configuration cannot tell a real difference from training noise. With several
seeds per configuration, a configuration is marked the winner only when its interval lies
wholly above every other configuration's, so the mark means "better beyond the noise".
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd
from scipy import stats

SEED = "seed"
# Keys whose runs are replicates of one configuration: seeds, and the folds of a k-fold CV
# (`python train.py -m data.fold=0,1,2,3,4`): one row, its mean and interval over both.
REPLICATES = (SEED, "data.fold")
WINNER = "winner"
CALIBRATION = "test/ece"  # shown beside accuracy where the runs logged it
# Imbalanced classes: shown beside accuracy where the runs logged them
CLASS_MEANS = ("test/balanced_acc", "test/macro_f1")


def interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, sample std, low, high) of a Student-t interval; std and bounds NaN when n < 2."""
    n = len(values)
    if n == 0:
        return (math.nan,) * 4
    mean = sum(values) / n
    if n < 2:
        return mean, math.nan, math.nan, math.nan
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = stats.t.ppf((1 + level) / 2, n - 1) * std / math.sqrt(n)
    return mean, std, mean - half, mean + half


def seed_groups(runs: Sequence, keys: Sequence[str], metric: str = "test/acc") -> pd.DataFrame:
    """A row per configuration (the varying `keys` but seed), best mean `metric` first.

    Columns: the keys, n (completed runs), failed, then mean/std/ci95 low/high of `metric`,
    of val/acc_best and (where any run logged them) of CLASS_MEANS and test/ece, median
    seconds per epoch, `still learning` (completed runs not converged) and `winner` (True on
    at most one row).
    """
    config_keys = [k for k in keys if k not in REPLICATES]
    groups: dict[tuple, list] = {}
    for run in runs:
        groups.setdefault(tuple(run.setting(k) for k in config_keys), []).append(run)
    measured = [metric, "val/acc_best"]
    for extra in (*CLASS_MEANS, CALIBRATION):
        if any(extra in r.metrics for r in runs):
            measured.append(extra)
    records = []
    for values, members in groups.items():
        done = [r for r in members if r.completed]
        record = dict(zip(config_keys, values, strict=True))
        record |= {"n": len(done), "failed": len(members) - len(done)}
        for name in dict.fromkeys(measured):
            found = [r.metrics[name] for r in done if _finite(r.metrics.get(name))]
            mean, std, low, high = interval(found)
            record |= {f"{name} mean": mean, f"{name} std": std}
            record |= {f"{name} ci95 low": low, f"{name} ci95 high": high}
        epoch_s = [r.history["time/epoch_s"].median() for r in done if "time/epoch_s" in r.history]
        record["s/epoch"] = pd.Series(epoch_s, dtype=float).median()
        record["still learning"] = sum(r.summary.get("converged") is False for r in done)
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    lower_is_better = "loss" in metric
    frame = frame.sort_values(f"{metric} mean", ascending=lower_is_better, na_position="last")
    frame[WINNER] = _winner(frame, metric, lower_is_better)
    return frame.reset_index(drop=True)


def _winner(frame: pd.DataFrame, metric: str, lower_is_better: bool) -> list[bool]:
    """True for the first (best) row only if its interval clears every other row's."""
    marks = [False] * len(frame)
    if len(frame) < 2:
        return marks
    low, high = frame[f"{metric} ci95 low"].tolist(), frame[f"{metric} ci95 high"].tolist()
    if any(math.isnan(v) for v in low + high):
        return marks
    best_low, best_high = low[0], high[0]
    if lower_is_better:
        marks[0] = all(best_high < other for other in low[1:])
    else:
        marks[0] = all(best_low > other for other in high[1:])
    return marks


def formatted_groups(frame: pd.DataFrame, metric: str = "test/acc") -> pd.DataFrame:
    """Strings for markdown and the terminal: 'mean ± std', '[low, high]', a ★ winner."""
    keys = list(frame.columns[: list(frame.columns).index("n")])
    out = frame[keys].astype(str)
    out["n"] = frame["n"].astype(str)
    for name in dict.fromkeys([metric, "val/acc_best"]):
        means, stds = frame[f"{name} mean"], frame[f"{name} std"]
        out[name] = [_pm(m, s) for m, s in zip(means, stds, strict=True)]
        out[f"{name} 95% CI"] = [
            "" if math.isnan(lo) else f"[{lo:.4f}, {hi:.4f}]"
            for lo, hi in zip(frame[f"{name} ci95 low"], frame[f"{name} ci95 high"], strict=True)
        ]
    for extra in (*CLASS_MEANS, CALIBRATION):
        if f"{extra} mean" in frame and extra != metric:
            pairs = zip(frame[f"{extra} mean"], frame[f"{extra} std"], strict=True)
            out[extra] = [_pm(m, s) for m, s in pairs]
    out["s/epoch"] = ["" if math.isnan(v) else f"{v:.2f}" for v in frame["s/epoch"]]
    if frame["still learning"].any():  # runs whose val/acc was still climbing at the end
        pairs = zip(frame["still learning"], frame["n"], strict=True)
        out["still learning"] = [f"{k}/{n}" if k else "" for k, n in pairs]
    if frame["failed"].any():
        out["failed"] = frame["failed"].astype(str)
    out[WINNER] = ["★" if w else "" for w in frame[WINNER]]
    return out


def _pm(mean: float, std: float) -> str:
    if math.isnan(mean):
        return ""
    return f"{mean:.4f}" if math.isnan(std) else f"{mean:.4f} ± {std:.4f}"


def _finite(value) -> bool:
    return value is not None and math.isfinite(value)
