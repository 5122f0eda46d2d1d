"""compare.py and each run's plots, on real runs made through the command line."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from tests.conftest import run_cli, run_dirs, summary
from transferlab.report.compare import main as compare_main
from transferlab.report.compare import rows as report_rows
from transferlab.report.run_folders import Run
from transferlab.report.seeds import formatted_groups, interval, seed_groups
from transferlab.runs.summary import job_folders

CNN = ("model=cnn", "mode=scratch", "extras.print_config=false")


@pytest.fixture(scope="module")
def compared_sweep(tmp_path_factory):
    """The acceptance sweep (2 optimizers x 2 learning rates), then `python compare.py`."""
    cwd = tmp_path_factory.mktemp("sweep")
    proc = run_cli(
        "train.py", "-m", "optimizer=sgd,adam", "lr=1e-3,1e-4", "epochs=2", *CNN, cwd=cwd
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = run_cli("compare.py", cwd=cwd)  # no folder: the latest sweep
    assert report.returncode == 0, report.stderr[-3000:]
    (sweep,) = run_dirs(cwd / "logs", "train/multiruns/*")
    with open(sweep / "report.csv") as f:
        rows = list(csv.DictReader(f))
    return sweep, rows, report.stdout


def test_compare_makes_a_row_per_run_and_a_column_per_varying_override(compared_sweep):
    sweep, rows, _ = compared_sweep
    assert len(rows) == 4
    assert list(rows[0]) == [
        "run",
        "optimizer",
        "lr",
        "best val acc",
        "test acc",
        "test balanced acc",
        "test macro-F1",
        "test ece",
        "epochs",
        "converged",  # runs/convergence.py: 2 validations are too few to tell
        "trainable params",
        "s/epoch",
        "status",
        "error",
    ]
    assert {(r["optimizer"], r["lr"]) for r in rows} == {
        (o, lr) for o in ("sgd", "adam") for lr in ("0.001", "0.0001")
    }
    by_run = {f"#{job.name.split('_')[0]}": summary(job) for job in job_folders(sweep)}
    for row in rows:
        result = by_run[row["run"]]
        assert float(row["test acc"]) == pytest.approx(result["metrics"]["test/acc"])
        assert float(row["test ece"]) == pytest.approx(result["metrics"]["test/ece"])
        balanced = result["metrics"]["test/balanced_acc"]
        assert float(row["test balanced acc"]) == pytest.approx(balanced, abs=5e-5)
        assert float(row["best val acc"]) == pytest.approx(result["metrics"]["val/acc_best"])
        assert int(row["epochs"]) == 2 and row["converged"] == "?"
        assert int(row["trainable params"]) == result["params"]["trainable"]
        assert float(row["s/epoch"]) > 0
        assert row["status"] == "completed"


def test_compare_sorts_by_the_optimized_metric_and_prints_the_same_table(compared_sweep):
    sweep, rows, stdout = compared_sweep
    best = [float(r["best val acc"]) for r in rows]
    assert best == sorted(best, reverse=True)
    markdown = (sweep / "report.md").read_text()
    assert "| test acc | test balanced acc | test macro-F1 | test ece |" in markdown
    assert "test ece" in stdout
    for row in rows:
        assert f"| {row['run']} | {row['optimizer']} | {row['lr']} |" in markdown
        assert row["run"] in stdout
    assert "sorted by val/acc_best" in stdout


def test_compare_draws_the_overlaid_curves_and_test_bars(compared_sweep):
    sweep, _, _ = compared_sweep
    for name in ("val_acc.png", "train_loss.png", "test_acc.png"):
        image = imread(sweep / name)
        assert image.shape[0] > 150 and image.shape[1] > 400, name
        assert np.asarray(image).std() > 0.05, f"{name} is blank"
        assert f"]({name})" in (sweep / "report.md").read_text()


def test_every_run_saves_curves_and_a_test_confusion_matrix(compared_sweep):
    sweep, _, _ = compared_sweep
    for job in job_folders(sweep):
        for name in ("accuracy.png", "loss.png", "confusion_matrix.png"):
            assert imread(job / "plots" / name).shape[1] > 300, name
        with open(job / "plots" / "confusion_matrix.csv") as f:
            header, *lines = list(csv.reader(f))
        counts = np.array([[int(c) for c in line[1:]] for line in lines])
        assert counts.shape == (10, 10) and header[1:] == [str(i) for i in range(10)]
        assert counts.sum() == 270  # digits' test split: 15% of 1,797
        accuracy = np.trace(counts) / counts.sum()
        assert accuracy == pytest.approx(summary(job)["metrics"]["test/acc"], abs=1e-6)


def test_compare_reads_a_folder_of_single_runs_with_a_glob_filter(tmp_path):
    for lr in ("0.01", "0.001"):
        proc = run_cli("train.py", *CNN, "epochs=1", f"lr={lr}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    runs_dir = tmp_path / "logs" / "train" / "runs"
    first, second = run_dirs(runs_dir, "*")
    assert compare_main([str(runs_dir)]) == 0
    with open(runs_dir / "report.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["lr"] for r in rows) == ["0.001", "0.01"]
    assert {r["run"] for r in rows} == {first.name, second.name}

    assert compare_main([str(runs_dir), "--glob", f"*{second.name[-6:]}"]) == 0
    with open(runs_dir / "report.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["run"] == second.name
    assert "lr" not in row  # one run: nothing varies


def test_compare_without_runs_says_what_to_do(tmp_path, capsys):
    assert compare_main([str(tmp_path)]) == 2
    assert "no run folder" in capsys.readouterr().err


# --- seeds: runs that differ only in seed form one row ----------------------------------


def test_t_interval_matches_the_textbook_numbers():
    mean, std, low, high = interval([1.0, 2.0, 3.0])
    assert (mean, std) == (2.0, 1.0)
    half = 4.302652729911275 / np.sqrt(3)  # t(0.975, df=2) * s / sqrt(n)
    assert (low, high) == (pytest.approx(2 - half), pytest.approx(2 + half))
    assert np.isnan(interval([0.5])[1]) and np.isnan(interval([0.5])[2])


def _run(seed: int, optimizer: str, test_acc: float | None, ece: float | None = None) -> Run:
    done = test_acc is not None
    metrics = {"test/acc": test_acc, "val/acc_best": test_acc} if done else {}
    return Run(
        path=Path(f"{seed}_{optimizer}"),
        name=f"{seed}_{optimizer}",
        summary={
            "status": "completed" if done else "failed",
            "metrics": metrics | ({"test/ece": ece} if ece is not None else {}),
        },
        overrides={"seed": str(seed), "optimizer": optimizer},
        config=None,
        history=pd.DataFrame(),
    )


def test_a_winner_is_marked_only_where_the_intervals_separate():
    apart = [_run(s, "adam", 0.95 + s / 1000) for s in range(3)]
    apart += [_run(s, "sgd", 0.90 + s / 1000) for s in range(3)]
    frame = seed_groups(apart, ["seed", "optimizer"])
    assert frame["optimizer"].tolist() == ["adam", "sgd"]
    assert frame["winner"].tolist() == [True, False]
    assert frame["n"].tolist() == [3, 3]

    overlapping = [_run(s, "adam", 0.95 + s / 100) for s in range(3)]
    overlapping += [_run(s, "sgd", 0.94 + s / 100) for s in range(3)]
    frame = seed_groups(overlapping, ["seed", "optimizer"])
    assert frame["optimizer"].tolist() == ["adam", "sgd"]  # better mean, not a winner
    assert not frame["winner"].any()


def test_failed_seeds_are_counted_but_left_out_of_the_statistics():
    runs = [_run(0, "adam", 0.9), _run(1, "adam", 0.8), _run(2, "adam", None)]
    (row,) = seed_groups(runs, ["seed"]).to_dict("records")
    assert (row["n"], row["failed"]) == (2, 1)
    assert row["test/acc mean"] == pytest.approx(0.85)


def test_runs_from_before_test_ece_compare_without_its_columns():
    old = [_run(s, "adam", 0.9 + s / 100) for s in range(2)]
    assert "test ece" not in report_rows(old, ["seed"], "val/acc_best")
    groups = seed_groups(old, ["seed"])
    assert "test/ece mean" not in groups and "test/ece" not in formatted_groups(groups)

    mixed = [*old, _run(2, "adam", 0.92, ece=0.05), _run(3, "adam", 0.93, ece=0.03)]
    frame = report_rows(mixed, ["seed"], "val/acc_best")
    assert frame["test ece"].tolist()[2:] == [0.05, 0.03] and frame["test ece"][:2].isna().all()
    (row,) = formatted_groups(seed_groups(mixed, ["seed"])).to_dict("records")
    assert row["test/ece"] == "0.0400 ± 0.0141"  # over the two runs that logged it


@pytest.fixture(scope="module")
def seed_sweep(tmp_path_factory):
    """The issue's sweep, tiny: a CNN on digits, 1 epoch, 3 seeds x 2 optimizers."""
    cwd = tmp_path_factory.mktemp("seeds")
    proc = run_cli("train.py", "-m", "seed=0,1,2", "optimizer=sgd,adam", "epochs=1", *CNN, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = run_cli("compare.py", cwd=cwd)
    assert report.returncode == 0, report.stderr[-3000:]
    (sweep,) = run_dirs(cwd / "logs", "train/multiruns/*")
    return sweep, report.stdout


def test_compare_groups_a_seed_sweep_into_one_row_per_config_with_mean_std_and_n(seed_sweep):
    sweep, stdout = seed_sweep
    groups = pd.read_csv(sweep / "report_seeds.csv")
    assert sorted(groups["optimizer"]) == ["adam", "sgd"]
    assert groups["n"].tolist() == [3, 3] and "seed" not in groups
    by_optimizer = {}
    for job in job_folders(sweep):
        overrides = summary(job)["overrides"]
        optimizer = next(o.split("=")[1] for o in overrides if o.startswith("optimizer="))
        by_optimizer.setdefault(optimizer, []).append(summary(job)["metrics"])
    for row in groups.to_dict("records"):
        metrics = by_optimizer[row["optimizer"]]
        accs, eces = [m["test/acc"] for m in metrics], [m["test/ece"] for m in metrics]
        assert row["test/acc mean"] == pytest.approx(np.mean(accs))
        assert row["test/acc std"] == pytest.approx(np.std(accs, ddof=1))
        assert row["test/ece mean"] == pytest.approx(np.mean(eces))
        assert row["test/ece std"] == pytest.approx(np.std(eces, ddof=1))
        assert row["test/acc ci95 low"] <= row["test/acc mean"] <= row["test/acc ci95 high"]
    assert len(pd.read_csv(sweep / "report.csv")) == 6  # every run is still listed
    markdown = (sweep / "report.md").read_text()
    assert "## Over seeds" in markdown and "95% CI" in markdown
    for optimizer in ("adam", "sgd"):
        mean = groups.set_index("optimizer").loc[optimizer, "test/acc mean"]
        assert f"| {optimizer} | 3 | {mean:.4f} ± " in markdown
        ece = groups.set_index("optimizer").loc[optimizer, "test/ece mean"]
        assert f"| {ece:.4f} ± " in markdown
    assert "±" in stdout and "Student-t" in stdout


# --- the results page --------------------------------------------------------------------


@pytest.mark.slow
def test_results_quick_mode_writes_a_page_with_seed_rows_versions_and_a_transfer_chain(tmp_path):
    # One experiment, the longest chain: train on MNIST, then a FT/FE sweep on digits from it.
    env = {
        "RESULTS_QUICK": "1",
        "RESULTS_ONLY": "transfer_mnist_cnn_to_digits",
        "RESULTS_OUT": str(tmp_path / "docs"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "results.results"],
        cwd=Path(__file__).resolve().parents[1],  # results/ is the clone's, beside benchmarks/
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    page = (tmp_path / "docs" / "results.md").read_text()
    assert "**Quick mode**" in page and "torch " in page and "CPU cores" in page
    assert "## transfer_mnist_cnn_to_digits" in page and "## sgd_vs_adam" not in page
    assert (tmp_path / "docs" / "results" / "transfer_mnist_cnn_to_digits_test_acc.png").is_file()
    targets, section = page.split("## transfer_mnist_cnn_to_digits")
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| mode | seed's figure | n | test/acc |")
    arms = sorted(r.split(" | ")[0] for r in rows[1:])
    assert arms == ["| feature_extract", "| finetune", "| scratch"]  # scratch: the baseline
    for row in rows[1:]:  # each configuration over 3 seeds, beside seed 001's SVHN twin
        cells = row.split(" | ")
        assert cells[1].startswith("—" if cells[0] != "| scratch" else "0.8700 (twin of"), row
        assert cells[2] == "3" and " ± " in cells[3], row
        mean = cells[3].split(" ± ")[0]
        # the summary at the top quotes the same mean for that arm, over the same 3 seeds
        label = {
            "finetune": "fine-tuned on digits",
            "feature_extract": "frozen, on digits",
            "scratch": "on digits from scratch",
        }
        (line,) = [t for t in targets.splitlines() if label[cells[0][2:]] in t]
        assert f"| {mean} ± " in line and "(3)" in line, line
    assert "| Scratch CNN on MNIST | not run |" in targets


def test_rerunning_one_experiment_keeps_the_other_sections_and_target_rows_of_the_page():
    from results import results, results_page

    old = results_page.page(
        [
            "\n".join(
                results.targets(
                    {
                        "cnn_mnist_vs_digits": pd.DataFrame(
                            [{"n": 3, "test/acc mean": 0.9920, "test/acc std": 0.0006}]
                        ),
                        "lite0_mnist_finetune_vs_features_vs_svm": pd.DataFrame(
                            [
                                {"arm": "finetune", "n": 1, "test/acc mean": 0.9552},
                                {"arm": "features_svm", "n": 1, "test/acc mean": 0.9668},
                            ]
                        ).assign(**{"test/acc std": np.nan}),
                    }
                )
            ),
            "## sgd_vs_adam\n\nSeed 000\n\n`python train.py -m experiment=sgd_vs_adam` — 54 s wall",
            "## lite0_mnist_finetune_vs_features_vs_svm\n\nLite0\n\n`...` — 359 s wall\n",
        ],
        quick=False,
        total_s=413,
    )
    previous = results_page.parse(old)
    assert not previous.quick and set(previous.sections) == {
        "sgd_vs_adam",
        "lite0_mnist_finetune_vs_features_vs_svm",
    }
    fresh_text = "## lite0_mnist_finetune_vs_features_vs_svm\n\nLite0\n\n`...` — 600 s wall\n"
    fresh = {fresh_text.split("\n")[0][3:]: results_page.stamped(fresh_text, "NOW, commit new")}
    order = [e.name for e in results.EXPERIMENTS]
    sections, kept = results_page.merged(previous, fresh, order)
    assert kept == ["sgd_vs_adam"]
    assert sections[0].startswith("## sgd_vs_adam\n\n" + results_page.made_line(previous.made))
    assert "commit" in previous.made and "54 s wall" in sections[0]
    assert "Made NOW, commit new." in sections[1] and "600 s wall" in sections[1]
    assert results_page.wall_seconds(sections) == 654
    rerun = {
        "lite0_mnist_finetune_vs_features_vs_svm": pd.DataFrame(
            [{"arm": "finetune", "n": 1, "test/acc mean": 0.9912, "test/acc std": np.nan}]
        )
    }
    rows = "\n".join(results.targets(rerun, previous.targets))
    assert "| Scratch CNN on MNIST | 0.9920 ± 0.0006 (3) | ≥ 0.99 | yes |" in rows  # kept
    assert "| Lite0 fine-tuned on MNIST | 0.9912 (1) | ≥ 0.99 | yes |" in rows  # re-run
    assert "Lite0 frozen multi-layer features + SVM on MNIST | not run |" in rows  # not in rerun
