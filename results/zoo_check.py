"""The results page's zoo section: rank.py's scores checked against fine-tuning.

On each dataset of results.yaml's `zoo` block, the offline zoo is ranked by rank.py from
one feature pass per backbone (then once more, from the cache), and every backbone is
fine-tuned with each seed by train.py. For each score the page gives Kendall's τ between
its values and the mean fine-tuned test accuracy, whether it names the fine-tuning winner,
a verdict in words, and the wall time of the ranking against that of the fine-tuning.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy.stats import kendalltau

from results.results_page import script
from transferlab.report.compare import markdown_table
from transferlab.report.run_folders import find_runs, load_run
from transferlab.report.seeds import interval

NAME = "zoo"  # its name in results.yaml's experiments and in RESULTS_ONLY
SCORES = {"logme": "LogME", "knn": "kNN acc", "probe": "probe acc"}


@dataclass(frozen=True)
class Backbone:
    label: str
    item: str  # as rank.py's backbones=[...] names it
    train: tuple[str, ...]  # what train.py fine-tunes it with


@dataclass(frozen=True)
class Plan:
    """What the section runs: results.yaml's zoo block, cut by RESULTS_QUICK=1."""

    source_run: tuple[str, ...]
    datasets: dict[str, tuple[str, ...]]  # name -> overrides of rank.py and train.py alike
    finetune: tuple[str, ...]  # the recipe every backbone is fine-tuned with
    seeds: tuple[int, ...]
    backbones: tuple[Backbone, ...]
    quick: bool
    ckpt: str  # the source run's best.ckpt, `<ckpt>` in the printed commands

    @classmethod
    def of(cls, settings: dict, quick: bool, ckpt: str) -> Plan:
        cut = settings["quick"] if quick else {"data": [], "finetune": []}
        return cls(
            source_run=_last_wins(settings["source_run"], cut["data"], ["seed=0"]),
            datasets={k: _last_wins(v, cut["data"]) for k, v in settings["datasets"].items()},
            finetune=_last_wins(settings["finetune"], cut["finetune"]),
            seeds=tuple(settings["seeds"][:1] if quick else settings["seeds"]),
            backbones=tuple(_backbone(entry, ckpt) for entry in settings["backbones"]),
            quick=quick,
            ckpt=ckpt,
        )

    @property
    def seed_list(self) -> str:
        return "seed=" + ",".join(str(s) for s in self.seeds)


@dataclass
class Measured:
    """One dataset's ranking (ranking.json rows by item) and fine-tuned test accuracies."""

    rows: dict[str, dict]
    accuracy: dict[str, list[float]]
    rank_s: float
    cached_rank_s: float | None  # None: not re-run (quick mode)
    finetune_s: float


def _last_wins(*overrides: list[str]) -> tuple[str, ...]:
    """The overrides as one list, a key given twice keeping its last value (as Hydra does)."""
    found: dict[str, str] = {}
    for override in (o for group in overrides for o in group):
        found[override.split("=", 1)[0]] = override
    return tuple(found.values())


def _backbone(entry: dict, ckpt: str) -> Backbone:
    item = entry["item"].format(ckpt=ckpt)
    train = tuple(o.format(ckpt=ckpt) for o in entry["train"])
    return Backbone(entry.get("label", item), item, train)


def _checked(proc: subprocess.CompletedProcess, what: str) -> None:
    if proc.returncode != 0:
        raise RuntimeError(f"{what} failed:\n{proc.stderr[-2000:]}")


def section(question: str, settings: dict, quick: bool, log_dir: Path) -> str:
    """The whole section's markdown, after running everything it reports."""
    start = time.monotonic()
    folder = log_dir / NAME
    shutil.rmtree(folder, ignore_errors=True)  # the first ranking must compute its features
    plan = Plan.of(settings, quick, str(folder / "source" / "checkpoints" / "best.ckpt"))
    source = [*plan.source_run, f"hydra.run.dir={folder / 'source'}"]
    _checked(script("train.py", source, log_dir), "the zoo's source run (the MNIST CNN)")
    measured = {}
    for data, overrides in plan.datasets.items():
        print(f"[results] zoo on {data} ...", flush=True)
        measured[data] = _measure(plan, list(overrides), folder / data, log_dir)
    return _render(question, plan, measured, time.monotonic() - start)


def _measure(plan: Plan, data_args: list[str], folder: Path, log_dir: Path) -> Measured:
    items = "backbones=[" + ",".join(b.item for b in plan.backbones) + "]"
    rank_args = [*data_args, items, f"features.cache_dir={folder / 'cache'}"]
    timings = []
    for run in ("computed",) if plan.quick else ("computed", "cached"):
        started = time.monotonic()
        proc = script("rank.py", [*rank_args, f"hydra.run.dir={folder / run}"], log_dir)
        _checked(proc, f"rank.py on {folder.name}")
        timings.append(time.monotonic() - started)
    ranking = json.loads((folder / "computed" / "ranking.json").read_text())
    accuracy, finetune_s = {}, 0.0
    for b in plan.backbones:
        sweep = folder / "finetune" / re.sub(r"\W+", "_", b.label).strip("_")
        args = ["-m", *data_args, *plan.finetune, *b.train, plan.seed_list]
        started = time.monotonic()
        script("train.py", [*args, f"hydra.sweep.dir={sweep}"], log_dir)  # failed: fewer n
        finetune_s += time.monotonic() - started
        runs = [load_run(p, sweep) for p in find_runs(sweep)]
        accuracy[b.item] = [r.metrics["test/acc"] for r in runs if "test/acc" in r.metrics]
    rows = {r["backbone"]: r for r in ranking["rows"]}
    cached = timings[1] if len(timings) > 1 else None
    return Measured(rows, accuracy, timings[0], cached, finetune_s)


def tau(scores: list[float], accuracy: list[float]) -> tuple[float, float]:
    """Kendall's τ-b between a score and the mean fine-tuned accuracy, and its p-value."""
    found = kendalltau(scores, accuracy)
    return float(found.statistic), float(found.pvalue)


def verdict(value: float) -> str:
    """What τ says of a score, in words (with 5 backbones only τ = 1 has p < 0.05)."""
    if math.isnan(value):
        return "cannot tell (a constant column)"
    if value > 1 - 1e-9:  # scipy's τ of a perfect order can be 0.9999999999999998
        return "orders the backbones exactly as fine-tuning does"
    if value >= 0.6:
        return "predicts the fine-tuned order, a pair or so swapped"
    if value > 0:
        return "predicts the fine-tuned order only loosely"
    return "**does not predict** the fine-tuned order"


def _render(question: str, plan: Plan, measured: dict[str, Measured], wall_s: float) -> str:
    seeds = len(plan.seeds)
    lines = [f"## {NAME}", "", question, "", *_commands(plan), ""]
    lines += [f"The whole section — {wall_s:.0f} s wall", ""]
    lines += [
        "Ranked: `rank.py`, one feature pass per backbone: LogME on the train split, kNN "
        "(k=20, cosine) and a logistic-regression probe (standardised features) fitted on "
        f"train and scored on val. Fine-tuned: every backbone with the same recipe, {seeds} "
        f"seed{'s' if seeds > 1 else ''}, tested on the test split: the Lite models from "
        "their ImageNet weights, the MNIST CNN from its checkpoint at the 28 px it learnt "
        "on, and the floor, Lite0 from random init, trained from scratch at the same 64 px "
        "(`mode=scratch`: there are no weights to fine-tune). On MNIST the CNN is in-domain: "
        "it was trained on MNIST's training images, some of which the ranking scores.",
        "",
    ]
    for data, found in measured.items():
        agreement = _agreement(found, plan.backbones)
        lines += [f"### {data}", "", *markdown_table(_table(found, plan.backbones)), ""]
        lines += [*markdown_table(agreement), "", _plainly(agreement, data), ""]
        lines += [_times(found, len(plan.backbones), seeds), ""]
    return "\n".join(lines)


def _commands(plan: Plan) -> list[str]:
    source = " ".join(["python train.py", *plan.source_run])
    recipe = " ".join(plan.finetune)
    lines = [f"`{source}` (the MNIST CNN: `<ckpt>` is its best.ckpt), then on each dataset"]
    for data, overrides in plan.datasets.items():
        args = " ".join(overrides)
        items = ",".join(b.item.replace(plan.ckpt, "<ckpt>") for b in plan.backbones)
        lines.append(f"- {data}: `python rank.py {args} backbones=[{items}]`")
    lines.append(f"- and per backbone `python train.py -m <data> {recipe} <arm> {plan.seed_list}`:")
    for b in plan.backbones:
        lines.append(f"  - {b.label}: `{' '.join(b.train).replace(plan.ckpt, '<ckpt>')}`")
    return lines


def _table(found: Measured, backbones: tuple[Backbone, ...]) -> pd.DataFrame:
    """A row per backbone, best fine-tuned first: its scores, accuracy and feature time."""
    records = []
    for b in backbones:
        row, accs = found.rows.get(b.item, {}), found.accuracy.get(b.item, [])
        mean, std, _, _ = interval(accs)
        acc = "" if math.isnan(mean) else f"{mean:.4f}"
        acc += "" if math.isnan(std) else f" ± {std:.4f}"
        cells = {"backbone": b.label}
        cells |= {title: _cell(row.get(key)) for key, title in SCORES.items()}
        cells["rank by LogME"] = str(row.get("rank") or row.get("skipped") or "–")
        cells["fine-tuned test/acc (n)"] = f"{acc} ({len(accs)})"
        cells["feature s"] = f"{row.get('feature_s', 0.0):.1f}"
        records.append((-1.0 if math.isnan(mean) else mean, cells))
    records.sort(key=lambda r: -r[0])
    return pd.DataFrame([cells for _, cells in records])


def _cell(value) -> str:
    return "–" if value is None else f"{value:.4f}"


def _agreement(found: Measured, backbones: tuple[Backbone, ...]) -> pd.DataFrame:
    """Per score: Kendall's τ with the fine-tuned accuracies, the winner, and a verdict."""
    both = [b for b in backbones if found.rows.get(b.item, {}).get("logme") is not None]
    both = [b for b in both if found.accuracy.get(b.item)]
    means = [interval(found.accuracy[b.item])[0] for b in both]
    best = both[max(range(len(both)), key=means.__getitem__)].label if both else "–"
    records = []
    for key, title in SCORES.items():
        values = [found.rows[b.item][key] for b in both]
        value, p = tau(values, means) if len(both) > 1 else (math.nan, math.nan)
        pick = both[max(range(len(both)), key=values.__getitem__)].label if both else "–"
        records.append(
            {
                "score": title,
                "Kendall τ": "" if math.isnan(value) else f"{value:+.2f}",
                "p": "" if math.isnan(p) else f"{p:.2f}",
                "its pick": pick,
                "fine-tuning's best": best,
                "verdict": verdict(value),
            }
        )
    return pd.DataFrame(records)


def _plainly(agreement: pd.DataFrame, data: str) -> str:
    """One sentence: which scores fail to predict the fine-tuned ranking on `data`."""
    failed = [r["score"] for _, r in agreement.iterrows() if "not predict" in r["verdict"]]
    wrong = [
        r["score"] for _, r in agreement.iterrows() if r["its pick"] != r["fine-tuning's best"]
    ]
    said = []
    if failed:
        verb = "does" if len(failed) == 1 else "do"
        said.append(
            f"On {data}, {' and '.join(failed)} {verb} **not** predict the fine-tuned order."
        )
    else:
        said.append(f"On {data}, every score orders the backbones in the fine-tuned direction.")
    if wrong:
        said.append(f"{' and '.join(wrong)} would pick another backbone than fine-tuning's best.")
    return " ".join(said)


def _times(found: Measured, backbones: int, seeds: int) -> str:
    ratio = found.finetune_s / found.rank_s if found.rank_s else math.nan
    again = "" if found.cached_rank_s is None else f", {found.cached_rank_s:.0f} s again from cache"
    return (
        f"Ranking: {found.rank_s:.0f} s{again}. Fine-tuning the {backbones} backbones "
        f"({seeds} seed{'s' if seeds > 1 else ''} each): {found.finetune_s:.0f} s, "
        f"{ratio:.1f}x the ranking ({ratio / seeds:.1f}x for one seed each)."
    )
