"""Sweeps through the real command line: failures, resume, launchers, Optuna and W&B."""

from __future__ import annotations

import csv
import json
import os
import struct
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tests.conftest import QUIET, compose_hydra, run_cli, run_dirs, summary
from transferlab.report.compare import main as compare_main
from transferlab.runs.summary import job_folders

CNN = ("model=cnn", "mode=scratch", QUIET)


@pytest.fixture(scope="module")
def failing_sweep(tmp_path_factory):
    """Two jobs, the second impossible (lr=-1)."""
    cwd = tmp_path_factory.mktemp("failing")
    proc = run_cli("train.py", "-m", *CNN, "epochs=1", "lr=1e-3,-1", cwd=cwd)
    (sweep,) = run_dirs(cwd / "logs", "train/multiruns/*")
    return cwd, sweep, proc


def test_a_failed_job_does_not_stop_the_sweep_which_then_exits_1(failing_sweep):
    _, sweep, proc = failing_sweep
    assert proc.returncode == 1, proc.stderr[-3000:]
    jobs = {job.name: summary(job) for job in job_folders(sweep)}
    # Overrides shared by every job (model, mode, epochs, ...) stay out of the folder names.
    assert list(jobs) == ["0_lr=0.001", "1_lr=-1"]
    assert jobs["0_lr=0.001"]["status"] == "completed"
    assert jobs["1_lr=-1"]["status"] == "failed"
    assert "lr=-1" in jobs["1_lr=-1"]["error"]
    assert "1 completed, 1 failed" in proc.stdout
    assert "failed: 1_lr=-1" in proc.stdout


def test_the_comparison_lists_the_failed_job_with_its_error(failing_sweep):
    _, sweep, _ = failing_sweep
    assert compare_main([str(sweep)]) == 0
    with open(sweep / "report.csv") as f:
        rows = {row["lr"]: row for row in csv.DictReader(f)}
    assert rows["0.001"]["status"] == "completed" and float(rows["0.001"]["test acc"]) > 0.5
    assert rows["-1"]["status"] == "failed" and "lr=-1 is not valid" in rows["-1"]["error"]
    assert "lr=-1 is not valid" in (sweep / "report.md").read_text()


def test_resume_skips_completed_jobs_and_reruns_failed_ones(failing_sweep):
    cwd, sweep, _ = failing_sweep
    done, failed = sweep / "0_lr=0.001", sweep / "1_lr=-1"
    done_before = (done / "summary.json").read_text()
    (failed / "summary.json").unlink()
    proc = run_cli("train.py", "-m", *CNN, "epochs=1", "lr=1e-3,-1", "+resume=true", cwd=cwd)
    assert proc.returncode == 1
    assert run_dirs(cwd / "logs", "train/multiruns/*") == [sweep]  # the same sweep folder
    assert (done / "summary.json").read_text() == done_before
    assert "Skipped: this job already completed" in (done / "train.log").read_text()
    assert summary(failed)["status"] == "failed"  # rerun, so written again


def test_optuna_search_records_failed_trials_and_reports_the_best(tmp_path):
    # The CNN has no pretrained weights: trials that draw feature_extract or partial fail.
    proc = run_cli(
        "train.py",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=4",
        "epochs=1",
        "model=cnn",
        "extras.print_config=false",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = run_dirs(tmp_path / "logs", "train/multiruns/*")
    trials = {job: summary(job) for job in job_folders(sweep)}
    assert len(trials) == 4
    by_status = {s["status"] for s in trials.values()}
    assert by_status == {"completed", "failed"}, [s["overrides"] for s in trials.values()]
    for trial in trials.values():
        if trial["status"] == "failed":
            assert "model=cnn has no pretrained weights" in trial["error"]
    best = OmegaConf.load(sweep / "optimization_results.yaml")
    scores = [s["metrics"]["val/acc_best"] for s in trials.values() if s["status"] == "completed"]
    assert best.best_value == pytest.approx(max(scores))
    assert f"val/acc_best = {max(scores):.4f}" in proc.stdout
    assert "Best parameters" in proc.stdout + proc.stderr


@pytest.mark.slow
def test_joblib_runs_jobs_in_parallel_processes_with_cores_divided(tmp_path):
    proc = run_cli(
        "train.py",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        *CNN,
        "epochs=1",
        "lr=1e-3,1e-4",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = run_dirs(tmp_path / "logs", "train/multiruns/*")
    jobs = job_folders(sweep)
    assert [j.name for j in jobs] == ["0_lr=0.001", "1_lr=0.0001"]
    threads = max(1, (os.cpu_count() or 1) // 2)
    for job in jobs:
        assert summary(job)["status"] == "completed"
        assert f"torch threads per job: {threads} " in (job / "train.log").read_text()


def test_slurm_launcher_config_extends_submitit():
    cfg = compose_hydra("train", ["hydra/launcher=slurm"])
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert launcher.cpus_per_task and launcher.gpus_per_node == 1


def test_slurm_launcher_runs_one_ddp_task_per_gpu_on_every_node():
    overrides = [
        "hydra/launcher=slurm",
        "hydra.launcher.gpus_per_node=4",
        "trainer=multinode",
        "trainer.num_nodes=3",
    ]
    cfg = compose_hydra("train", overrides)
    launcher = cfg.hydra.launcher
    assert (launcher.nodes, launcher.tasks_per_node) == (3, 4)
    assert cfg.trainer.strategy == "ddp" and cfg.trainer.num_nodes == 3


def _wandb_records(path: Path):
    """The protobuf records of an offline .wandb file (LevelDB log format, 32 KiB blocks)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    pos, block, pending = 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = struct.unpack("<HB", data[pos + 4 : pos + 7])
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk of a record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


@pytest.fixture
def no_wandb_key(monkeypatch, tmp_path):
    for name in ("WANDB_API_KEY", "WANDB_MODE", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no wandb settings


def test_wandb_offline_sweep_puts_its_runs_in_one_group(tmp_path, no_wandb_key):
    proc = run_cli(
        "train.py",
        "-m",
        "logger=wandb",
        *CNN,
        "epochs=1",
        "lr=1e-3,1e-4",
        cwd=tmp_path,
        env={"WANDB_MODE": "offline"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (sweep,) = run_dirs(tmp_path / "logs", "train/multiruns/*")
    files = sorted(sweep.glob("*/wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 2
    for file in files:
        records = list(_wandb_records(file))
        (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        assert (run.run_group, run.job_type, list(run.tags)) == (sweep.name, "scratch", ["dev"])
        summary_keys = {i.key for r in records if r.HasField("summary") for i in r.summary.update}
        assert {"status", "test/acc", "params/trainable"} <= summary_keys
        history = {
            i.key or i.nested_key[0]  # an image is logged as nested fields under its key
            for r in records
            if r.HasField("history")
            for i in r.history.item
        }
        assert {"plots/confusion_matrix", "plots/accuracy", "val/acc"} <= history
        config = {
            i.key: json.loads(i.value_json)
            for r in records
            if r.HasField("config")
            for i in r.config.update
        }
        assert config["lr"] in (1e-3, 1e-4) and config["mode"]["name"] == "scratch"


def test_wandb_without_a_key_logs_offline_without_asking(tmp_path, no_wandb_key):
    proc = run_cli("train.py", "logger=wandb", *CNN, "epochs=1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert len(list(run.glob("wandb/offline-run-*/run-*.wandb"))) == 1
    assert "No W&B API key: logging offline" in (run / "train.log").read_text()


@pytest.mark.slow
def test_wandb_that_cannot_start_does_not_fail_the_run(tmp_path, no_wandb_key):
    proc = run_cli(
        "train.py", "logger=wandb", *CNN, "epochs=1", cwd=tmp_path, env={"WANDB_MODE": "online"}
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert summary(run)["status"] == "completed"
    assert "W&B could not start" in (run / "train.log").read_text()
