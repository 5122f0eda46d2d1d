"""`make results`: run the offline experiments as seed sweeps and write docs/results.md.

The experiments, their targets and the seeds' figures are data, in results.yaml. Each
experiment runs as `python train.py -m experiment=<name>` (its own seeds and arms) plus
the overrides in its `page` field that fit the whole page into about 80 minutes on 2 CPU cores;
compare.py then groups the runs that differ only in seed. The page holds that table per
experiment beside the seed's own figure where it has one, the test-accuracy plot, the
exact command, its wall time, a table of the targets, and the date, versions and machine.

    RESULTS_QUICK=1   1 epoch on 300 images per split: checks the machinery in minutes
    RESULTS_ONLY=a,b  only these experiments (names as in conf/experiment/); over an
                      existing page of the same kind, the other sections are kept
    RESULTS_OUT=dir   where the page and its plots go (default: docs/)

`python -m results.results refill` runs nothing: it rewrites the existing page's
seed's-figure column and its explanatory note from results.yaml, every measurement as it was.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from results import efficiency_check, results_page, seed_figures, trust_check, zoo_check
from transferlab.config_dirs import CONF_DIR
from transferlab.report.run_folders import find_runs, load_run, varying_keys
from transferlab.report.seeds import formatted_groups, seed_groups

ROOT = Path(__file__).resolve().parents[1]
QUICK = list(results_page.page_data()["quick"])


@dataclass(frozen=True)
class Experiment:
    name: str
    question: str
    # What the page runs beyond the experiment's own config, to fit its 45-minute budget on
    # 2 CPU cores; printed in the page's command, so every row can be reproduced.
    page: tuple[str, ...] = ()
    note: str = ""


def _experiment(entry: dict) -> Experiment:
    return Experiment(**{**entry, "page": tuple(entry.get("page", ()))})


EXPERIMENTS = [_experiment(entry) for entry in results_page.page_data()["experiments"]]
# (label, experiment, row, lowest test accuracy or None: compare)
TARGETS = [
    (t["label"], t["experiment"], t["row"], t["goal"]) for t in results_page.page_data()["targets"]
]


def train(args: list[str], log_dir: Path) -> subprocess.CompletedProcess:
    return results_page.script("train.py", args, log_dir)


def source_run(name: str, conf_dir: str | Path = CONF_DIR) -> list[str]:
    """The train.py overrides of the run experiment `name` transfers from, as its YAML
    declares them (`source_run`); [] for an experiment that starts from no run of ours."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={name}"])
    return [str(override) for override in cfg.get("source_run") or []]


def source_args(name: str, extra: list[str], conf_dir: str | Path = CONF_DIR) -> list[str]:
    """train.py's arguments for the page's source run of experiment `name` ([]: none)."""
    overrides = source_run(name, conf_dir)
    return [*overrides, *extra, "seed=0"] if overrides else []


def source_checkpoint(source: list[str], name: str, log_dir: Path) -> list[str]:
    """Train the network an experiment transfers from; its checkpoint as an override."""
    if not source:
        return []
    folder = log_dir / f"source_{name}"
    proc = train([*source, f"hydra.run.dir={folder}"], log_dir)
    if proc.returncode != 0:
        raise RuntimeError(f"source run for {name} failed:\n{proc.stderr[-2000:]}")
    return [f"pretrained_ckpt={folder / 'checkpoints' / 'best.ckpt'}"]


def run_experiment(exp: Experiment, extra: list[str], log_dir: Path) -> tuple[Path, float, str]:
    """The experiment's sweep in its own folder; (folder, wall seconds, command)."""
    start = time.monotonic()
    source = source_args(exp.name, extra)
    weights = source_checkpoint(source, exp.name, log_dir)
    sweep = log_dir / exp.name
    shutil.rmtree(sweep, ignore_errors=True)  # a page describes one run of each sweep
    overrides = [*exp.page, *extra]  # the quick mode's cuts win over the page's
    args = ["-m", f"experiment={exp.name}", *overrides, *weights, f"hydra.sweep.dir={sweep}"]
    proc = train(args, log_dir)
    if not find_runs(sweep):
        raise RuntimeError(f"{exp.name} produced no runs:\n{proc.stderr[-2000:]}")
    command = " ".join(["python train.py -m", f"experiment={exp.name}", *overrides])
    if weights:
        first = " ".join(["python train.py", *source])
        command = f"{first}` then `{command} pretrained_ckpt=<its best.ckpt>"
    return sweep, time.monotonic() - start, command


def table(exp: Experiment, sweep: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(numbers, strings) of the sweep grouped over seeds, with the seed's figure column."""
    runs = [load_run(p, sweep) for p in find_runs(sweep)]
    keys = varying_keys(runs)
    groups = seed_groups(runs, keys if "seed" in keys else [*keys, "seed"])
    cells = formatted_groups(groups)
    config_keys = [k for k in keys if k != "seed"]
    names = [" / ".join(str(r[k]) for k in config_keys) for _, r in groups.iterrows()]
    figures = [seed_figures.cell(exp.name, n) for n in names]
    cells.insert(len(config_keys), seed_figures.COLUMN, figures)
    return groups, cells


def _plot(sweep: Path, out: Path, name: str) -> str | None:
    from transferlab.report.compare import main as compare

    compare([str(sweep)])  # writes the sweep's report.md, report_seeds.csv and plots
    source = sweep / "test_acc.png"
    if not source.is_file():
        return None
    (out / "results").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "results" / f"{name}_test_acc.png")
    return f"results/{name}_test_acc.png"


def section(exp: Experiment, cells: pd.DataFrame, command: str, wall_s: float, plot) -> str:
    from transferlab.report.compare import markdown_table

    lines = [f"## {exp.name}", "", exp.question, "", f"`{command}` — {wall_s:.0f} s wall", ""]
    if exp.note:
        lines += [exp.note, ""]
    lines += markdown_table(cells)
    if plot:
        lines += ["", f"![test accuracy of every run]({plot})"]
    return "\n".join([*lines, ""])


def targets(groups: dict[str, pd.DataFrame], kept: dict[str, str] | None = None) -> list[str]:
    """The page's summary: each target row's mean test accuracy against its goal.

    Rows of experiments not run now come from `kept` (an earlier page's lines) if there.
    """
    head = "| row | test/acc mean ± std (n) | goal | met |"
    lines = [results_page.TARGETS_HEADING, "", head, "|---|---|---|---|"]
    for label, name, row, goal in TARGETS:
        if name not in groups and label in (kept or {}):
            lines.append(kept[label])
            continue
        frame = groups.get(name)
        found = None if frame is None else _row(frame, row)
        if found is None:
            cell, met = "not run", "n/a"
        else:
            mean, std, n = found["test/acc mean"], found["test/acc std"], int(found["n"])
            cell = f"{mean:.4f}" + ("" if pd.isna(std) else f" ± {std:.4f}") + f" ({n})"
            met = "n/a" if goal is None else ("yes" if mean >= goal else "**no**")
        goal_cell = "compare" if goal is None else f"≥ {goal}"
        lines.append(f"| {label} | {cell} | {goal_cell} | {met} |")
    return [*lines, ""]


def _row(frame: pd.DataFrame, row: str):
    stats = ("test/", "val/")
    keys = [c for c in frame.columns if c not in _STAT_COLUMNS and not c.startswith(stats)]
    for _, record in frame.iterrows():
        if " / ".join(str(record[k]) for k in keys) == row:
            return record
    return None


_STAT_COLUMNS = {"n", "failed", "still learning", "s/epoch", "winner"}


def with_current_figures(page: results_page.Page) -> results_page.Page:
    """The parsed page with every section's seed's-figure column as FIGURES has it now."""
    sections = {n: seed_figures.filled(s, n) for n, s in page.sections.items()}
    return replace(page, sections=sections)


def refilled(text: str) -> str:
    """The page `text` with this code's seed figures and note; its runs' lines as they were."""
    previous = with_current_figures(results_page.parse(text))
    body = ["\n".join(targets({}, previous.targets)), *previous.sections.values()]
    return "\n".join([*results_page.made_part(previous.head), "", *results_page.NOTE, *body])


def main(argv: Sequence[str] = ()) -> int:
    out = Path(os.environ.get("RESULTS_OUT", ROOT / "docs"))
    if list(argv) == ["refill"]:
        (out / "results.md").write_text(refilled((out / "results.md").read_text()))
        print(f"Refilled the seed figures of {out / 'results.md'}")
        return 0
    if argv:
        print(f"Error: unknown arguments {list(argv)}; the only one is 'refill'.", file=sys.stderr)
        return 2
    quick = os.environ.get("RESULTS_QUICK", "") not in ("", "0")
    only = [n for n in os.environ.get("RESULTS_ONLY", "").split(",") if n]
    chosen = [e for e in EXPERIMENTS if not only or e.name in only]
    if unknown := sorted(set(only) - {e.name for e in EXPERIMENTS}):
        print(f"Error: RESULTS_ONLY names unknown experiments {unknown}.", file=sys.stderr)
        return 2
    previous = None
    if only and (out / "results.md").is_file():
        previous = with_current_figures(results_page.parse((out / "results.md").read_text()))
        if previous.quick != quick:
            previous = None  # a quick run never mixes with full sections, or back
    log_dir = out / "results_runs" / "logs"
    fresh, groups = {}, {}
    for exp in chosen:
        print(f"[results] {exp.name} ...", flush=True)
        if exp.name == zoo_check.NAME:  # rank.py checked against fine-tuning, not one sweep
            zoo = results_page.page_data()["zoo"]
            text = zoo_check.section(exp.question, zoo, quick, log_dir)
            fresh[exp.name] = results_page.stamped(text, results_page.made_now())
            continue
        if exp.name == efficiency_check.NAME:  # a study.py run at growing sizes
            settings = results_page.page_data()[efficiency_check.NAME]
            text = efficiency_check.section(exp.question, settings, quick, log_dir, out)
            fresh[exp.name] = results_page.stamped(text, results_page.made_now())
            continue
        if exp.name == trust_check.NAME:  # short and long studies' verdicts side by side
            settings = results_page.page_data()[trust_check.NAME]
            text = trust_check.section(exp.question, settings, quick, log_dir)
            fresh[exp.name] = results_page.stamped(text, results_page.made_now())
            continue
        sweep, wall_s, command = run_experiment(exp, QUICK if quick else [], log_dir)
        groups[exp.name], cells = table(exp, sweep)
        text = section(exp, cells, command, wall_s, _plot(sweep, out, exp.name))
        fresh[exp.name] = results_page.stamped(text, results_page.made_now())
        print(f"[results] {exp.name}: {wall_s:.0f} s", flush=True)
    order = [e.name for e in EXPERIMENTS]
    if previous is None:
        sections, kept, kept_rows = [fresh[n] for n in order if n in fresh], [], None
    else:
        sections, kept = results_page.merged(previous, fresh, order)
        kept_rows = previous.targets
        print(f"[results] kept from the page of {previous.made}: {', '.join(kept)}")
    total_s = results_page.wall_seconds(sections)
    out.mkdir(parents=True, exist_ok=True)
    body = ["\n".join(targets(groups, kept_rows)), *sections]
    (out / "results.md").write_text(results_page.page(body, quick, total_s, kept))
    print(f"Wrote {out / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
