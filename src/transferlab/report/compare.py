"""`python compare.py [folder] [--glob PATTERN]`: every run below a folder in one table.

Reads only each run's summary.json, .hydra/ and csv/metrics.csv. Writes report.md,
report.csv, val_acc.png, train_loss.png and test_acc.png into the folder and prints the
table. One row per run: the overrides that differ between the runs, then the results,
best first by the runs' `optimized_metric`; failed runs last, with their error. When runs
differ in `seed` or `data.fold` (a k-fold CV), those that differ only in these are also
grouped into one row each (mean ± std, n, 95% t-interval; report_seeds.csv) and that table
is the one printed. `converged` says whether val/acc had levelled off (runs/convergence.py).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import pandas as pd

from transferlab.report.run_folders import Run, find_runs, load_run, varying_keys
from transferlab.report.seeds import CALIBRATION, REPLICATES, formatted_groups, seed_groups

RESULTS = ["best val acc", "test acc", "epochs", "trainable params", "s/epoch", "status", "error"]
SEED_CAPTION = (
    "Runs that differ only in seed (or CV fold) form one row: test acc and best val acc as mean "
    "± sample std over the n completed runs, with a 95% Student-t interval; test/ece (calibration "
    "error, lower is better) as mean ± std where the runs log it; ★ marks the best row only "
    "where its interval lies above every other row's."
)
# Shown beside accuracy where the runs logged them (imbalanced classes; older runs did not).
CLASS_MEANS = {"test balanced acc": "test/balanced_acc", "test macro-F1": "test/macro_f1"}
PLOTS = {"val_acc.png": "val/acc", "train_loss.png": "train/loss", "test_acc.png": "test/acc"}


def optimized_metric(runs: list[Run]) -> str:
    for run in runs:
        if run.config is not None and run.config.get("optimized_metric"):
            return str(run.config.optimized_metric)
    return "val/acc_best"


def sort_runs(runs: list[Run], metric: str) -> list[Run]:
    """Best first by `metric` (lowest first for a loss); then pruned search trials (stopped
    early on purpose); runs without the metric and failed ones last."""
    sign = 1 if "loss" in metric else -1
    order = {"completed": 0, "pruned": 1}

    def key(run: Run) -> tuple:
        value = run.metrics.get(metric)
        has_value = value is not None and math.isfinite(value)
        rank = order.get(run.summary.get("status"), 2)
        return (rank, not has_value, sign * value if has_value else 0.0)

    return sorted(runs, key=key)


def rows(runs: list[Run], keys: list[str], metric: str) -> pd.DataFrame:
    """The report: a row per run, override columns, then the results."""
    records = []
    calibrated = any(CALIBRATION in r.metrics for r in runs)  # older runs did not log it
    means = {c: m for c, m in CLASS_MEANS.items() if any(m in r.metrics for r in runs)}
    judged = any("converged" in r.summary for r in runs)  # runs/convergence.py; older: none
    for run in runs:
        history, metrics = run.history, run.metrics
        best_val = metrics.get("val/acc_best")
        if best_val is None and "val/acc" in history:
            best_val = history["val/acc"].max()
        epoch_s = history["time/epoch_s"].median() if "time/epoch_s" in history else None
        record = {"run": run.name, **{k: run.setting(k) for k in keys}}
        record |= {
            "best val acc": best_val,
            "test acc": metrics.get("test/acc"),
            **{column: metrics.get(metric) for column, metric in means.items()},
            **({"test ece": metrics.get(CALIBRATION)} if calibrated else {}),
            "epochs": run.summary.get("epochs"),
            **({"converged": _converged(run.summary)} if judged else {}),
            "trainable params": (run.summary.get("params") or {}).get("trainable"),
            "s/epoch": epoch_s,
        }
        if metric not in ("val/acc_best", "test/acc", CALIBRATION, *means.values()):
            record[metric] = metrics.get(metric)
        record["status"] = run.summary.get("status", "unknown")
        record["error"] = run.summary.get("error") or ""
        records.append(record)
    frame = pd.DataFrame.from_records(records)
    frame["epochs"] = frame["epochs"].astype("Int64")
    frame["trainable params"] = frame["trainable params"].astype("Int64")
    return frame


def _converged(summary: dict) -> str:
    """yes | still learning | ? (too few validations, or no record)."""
    return {True: "yes", False: "still learning"}.get(summary.get("converged"), "?")


def formatted(frame: pd.DataFrame, error_width: int) -> pd.DataFrame:
    """Strings for the terminal and markdown: 4 decimals, thousands separators, short errors."""
    out = frame.astype(object).where(frame.notna(), "")
    style = {"s/epoch": "{:.2f}", "trainable params": "{:,}", "epochs": "{}"}
    metrics = [c for c in out.columns if c not in style and frame[c].dtype.kind == "f"]
    style |= dict.fromkeys(metrics, "{:.4f}")
    for column, pattern in style.items():
        out[column] = [pattern.format(v) if v != "" else "" for v in out[column]]
    out["error"] = [_shorten(e, error_width) for e in out["error"]]
    return out.astype(str) if any(out["error"]) else out.drop(columns="error").astype(str)


def _shorten(text: str, width: int) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def markdown_table(cells: pd.DataFrame) -> list[str]:
    lines = ["| " + " | ".join(cells.columns) + " |"]
    lines.append("|" + "|".join("---" for _ in cells.columns) + "|")
    for row in cells.itertuples(index=False):
        lines.append("| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |")
    return lines


def markdown(
    frame: pd.DataFrame, title: str, caption: str, grouped: pd.DataFrame | None = None
) -> str:
    lines = [f"# {title}", "", caption, ""]
    if grouped is not None:
        lines += ["## Over seeds", "", SEED_CAPTION, "", *markdown_table(grouped), ""]
        lines += ["## Every run", ""]
    lines += markdown_table(formatted(frame, error_width=160))
    lines += ["", *(f"![{name}]({file})" for file, name in PLOTS.items()), ""]
    return "\n".join(lines)


def print_table(
    frame: pd.DataFrame, title: str, caption: str, grouped: pd.DataFrame | None = None
) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=caption if grouped is None else SEED_CAPTION)
    if grouped is not None:  # a row per configuration; the runs are in report.csv
        for column in grouped.columns:
            table.add_column(column, no_wrap=True, justify="left")
        for row in grouped.itertuples(index=False):
            table.add_row(*row)
    else:
        cells = formatted(frame, error_width=70)
        for column in cells.columns:
            if column == "error":
                table.add_column(column, overflow="fold", min_width=24)
            else:
                numeric = column in RESULTS[:5] or frame[column].dtype.kind == "f"
                table.add_column(column, no_wrap=True, justify="right" if numeric else "left")
        for row, status in zip(cells.itertuples(index=False), frame["status"], strict=True):
            style = {"completed": None, "pruned": "dim"}.get(status, "red")
            table.add_row(*row, style=style)
    console = Console()
    # Piped into a file or a CI log: rich would assume 80 columns and cut every cell short;
    # with room to spare the table takes its natural width (it does not expand).
    (console if console.is_terminal else Console(width=1000)).print(table)


def save_plots(runs: list[Run], keys: list[str], folder: Path) -> None:
    from transferlab.runs.plots import save_bars, save_lines

    def label(run: Run) -> str:
        return " ".join([run.name, *(f"{k}={run.setting(k)}" for k in keys)])

    for file, metric in list(PLOTS.items())[:2]:
        series = [
            (label(r), list(r.history[metric].dropna().items()))
            for r in runs
            if metric in r.history
        ]
        save_lines(series, folder / file, title=f"{metric} of every run", ylabel=metric)
    tested = {
        label(r): r.metrics["test/acc"] for r in runs if r.metrics.get("test/acc") is not None
    }
    save_bars(tested, folder / "test_acc.png", title="test accuracy per run", xlabel="test/acc")


def latest_multirun(log_dir: Path) -> Path | None:
    """The most recently started sweep: folder names begin with their start time."""
    sweeps = [p for p in log_dir.glob("*/multiruns/*") if p.is_dir()]
    return max(sweeps, key=lambda p: (p.name, p.stat().st_mtime), default=None)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="compare.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "folder", nargs="?", help="a sweep or a folder of runs (default: latest sweep)"
    )
    parser.add_argument(
        "--glob", help="only runs whose path below the folder matches, e.g. '*cnn*'"
    )
    args = parser.parse_args(argv)
    log_dir = Path(os.environ.get("PROJECT_ROOT", ".")) / "logs"
    folder = Path(args.folder) if args.folder else latest_multirun(log_dir)
    if folder is None or not folder.is_dir():
        where = args.folder or f"{log_dir}/*/multiruns/"
        print(
            f"Error: no runs to compare at {where}. Run a sweep first "
            f"(python train.py -m lr=1e-3,1e-4) or pass a folder of runs, e.g. "
            f"python compare.py logs/train/runs.",
            file=sys.stderr,
        )
        return 2
    paths = find_runs(folder, args.glob)
    if not paths:
        print(
            f"Error: no run folder (with summary.json) below {folder}"
            f"{f' matching {args.glob!r}' if args.glob else ''}. Check the folder and --glob.",
            file=sys.stderr,
        )
        return 2
    runs = [load_run(p, folder) for p in paths]
    metric = optimized_metric(runs)
    runs = sort_runs(runs, metric)
    keys = varying_keys(runs)
    frame = rows(runs, keys, metric)
    done = sum(r.completed for r in runs)
    pruned = sum(r.summary.get("status") == "pruned" for r in runs)
    title = f"{len(runs)} runs in {folder}"
    counts = f"{done} completed, {pruned} pruned" if pruned else f"{done} completed"
    caption = f"{counts}, {len(runs) - done - pruned} failed; sorted by {metric}, best first"
    frame.to_csv(folder / "report.csv", index=False)
    written = ["report.md", "report.csv"]
    grouped = None
    if any(k in keys for k in REPLICATES):  # seeds or folds: the spread is the result
        groups = seed_groups(runs, keys)
        groups.to_csv(folder / "report_seeds.csv", index=False)
        grouped = formatted_groups(groups)
        written.append("report_seeds.csv")
    (folder / "report.md").write_text(markdown(frame, title, caption, grouped))
    save_plots(runs, keys, folder)
    print_table(frame, title, caption, grouped)
    print(f"Wrote {folder}/" + ", ".join(written + list(PLOTS)))
    return 0
