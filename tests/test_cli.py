"""The real command line: train.py, eval.py and sweeps, in subprocesses, offline."""

from __future__ import annotations

import csv
import subprocess
import sys

import pytest
import torch
from hydra.utils import instantiate
from torchmetrics.functional.classification import multiclass_calibration_error

from tests.conftest import QUIET, run_cli, run_dirs, run_python, summary
from transferlab.data.transforms import Preprocess
from transferlab.module import ClassifierModule
from transferlab.pipeline import build_datamodule


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    """One short scratch-CNN run on digits shared by the tests that inspect its outputs."""
    cwd = tmp_path_factory.mktemp("digits")
    proc = run_cli("train.py", "model=cnn", "mode=scratch", "epochs=5", QUIET, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(cwd / "logs", "train/runs/*")
    return cwd, run, proc


def test_digits_run_reaches_90_percent_and_prints_it(digits_run):
    _, run, proc = digits_run
    result = summary(run)
    assert result["status"] == "completed"
    assert result["metrics"]["test/acc"] >= 0.90
    assert "test/acc" in proc.stdout + proc.stderr


def test_run_folder_holds_the_contracted_files(digits_run):
    _, run, _ = digits_run
    for rel in (
        ".hydra/config.yaml",
        ".hydra/overrides.yaml",
        "train.log",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "csv/metrics.csv",
    ):
        assert (run / rel).is_file(), rel
    result = summary(run)
    assert result["epochs"] == 5
    assert result["params"]["trainable"] == result["params"]["total"] > 0
    assert result["overrides"] == ["model=cnn", "mode=scratch", "epochs=5", QUIET]
    assert result["wall_time_s"] > 0
    # start-up counts from train.py's first import, so it covers imports the pipeline skips
    log = (run / "train.log").read_text()
    # (torch and Lightning alone take over a second to import; a small CNN builds in ms)
    assert 1.0 < result["startup_s"] < 120
    assert f"Start-up to the first training batch: {result['startup_s']:.1f} s" in log
    with open(run / "csv/metrics.csv") as f:
        columns = set(next(csv.reader(f)))
    assert {
        "train/loss",
        "train/acc",
        "val/loss",
        "val/acc",
        "val/acc_best",
        "test/loss",
        "test/acc",
        "val/ece",
        "test/ece",
        "time/epoch_s",
        "params/trainable",
    } <= columns


def test_eval_reproduces_the_runs_test_accuracy_and_calibration_error(digits_run):
    cwd, run, _ = digits_run
    proc = run_cli("eval.py", f"ckpt_path={run}/checkpoints/best.ckpt", QUIET, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (eval_run,) = run_dirs(cwd / "logs", "eval/runs/*")
    evaluated, trained = summary(eval_run)["metrics"], summary(run)["metrics"]
    for key in ("test/acc", "test/ece"):
        assert evaluated[key] == pytest.approx(trained[key], abs=1e-6), key


def test_test_ece_is_torchmetrics_calibration_error_of_best_ckpts_softmax(digits_run):
    _, run, _ = digits_run
    ckpt = run / "checkpoints" / "best.ckpt"
    module = ClassifierModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True)
    hp = module.eval().hparams
    images = build_datamodule(
        hp["data"],
        instantiate(hp["data"]["source"]),
        Preprocess(**hp["preprocess"]),
        batch_size=64,  # not the run's batches: the metric is over the whole split
        seed=hp["data"]["seed"],
    )
    probs, labels = [], []
    with torch.no_grad():
        for batch in images.test_dataloader():
            x, y = images.prepare_batch(*batch, train=False)
            probs.append(module(x).softmax(dim=1))
            labels.append(y)
    expected = multiclass_calibration_error(
        torch.cat(probs), torch.cat(labels), hp["num_classes"], n_bins=15, norm="l1"
    )
    ece = summary(run)["metrics"]["test/ece"]
    assert 0 <= ece <= 1
    assert ece == pytest.approx(expected.item(), abs=1e-6)


def test_fast_dev_run_through_the_command_line(tmp_path):
    proc = run_cli("train.py", "debug=fdr", QUIET, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "debug/runs/*")
    assert summary(run)["status"] == "completed"


def test_sweep_over_optimizers_and_lrs_makes_four_completed_runs(tmp_path):
    proc = run_cli(
        "train.py", "-m", "optimizer=sgd,adam", "lr=1e-3,1e-4", "epochs=1", QUIET, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = run_dirs(tmp_path / "logs", "train/multiruns/*/*")
    assert len(jobs) == 4
    assert {summary(j)["status"] for j in jobs} == {"completed"}
    assert [j.name.split("_")[0] for j in jobs] == ["0", "1", "2", "3"]
    assert any("optimizer=adam" in j.name and "lr=0.0001" in j.name for j in jobs)
    for job in jobs:  # what a job spends outside training, reported at the sweep's end
        assert 0 < summary(job)["train_time_s"] < summary(job)["wall_time_s"]
    assert "per-job overhead (wall time - training time): median" in proc.stdout


def test_seed_exercise_command_works_as_written(tmp_path):
    proc = run_cli(
        "train.py",
        "model=cnn",
        "model.activation=tanh",
        "optimizer=sgd",
        "lr=0.05",
        "epochs=2",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert summary(run)["metrics"]["test/acc"] > 0.5


def test_two_runs_started_together_get_separate_folders(tmp_path):

    from tests.conftest import ROOT

    procs = [
        subprocess.Popen(
            [sys.executable, str(ROOT / "train.py"), "debug=fdr", QUIET],
            cwd=tmp_path,
            env={**__import__("os").environ, "PROJECT_ROOT": str(tmp_path)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    runs = run_dirs(tmp_path / "logs", "debug/runs/*")
    assert len(runs) == 2
    assert all((r / "summary.json").is_file() for r in runs)


def test_exit_fast_still_flushes_output_and_runs_exit_hooks(tmp_path):
    """train.py skips Python's teardown after a run; nothing it printed or registered is lost."""
    marker = tmp_path / "hook_ran"
    script = (
        "import atexit, sys\n"
        "from transferlab.runs.startup import exit_fast\n"
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('ok'))\n"
        "print('buffered line', end='')\n"  # a pipe buffers it until a flush
        # an idle pool worker (as torch.compile leaves) must not keep the process alive
        "from concurrent.futures import ThreadPoolExecutor\n"
        "pool = ThreadPoolExecutor(1); pool.submit(print, '', end='').result()\n"
        "exit_fast(3)\n"
    )
    proc = run_python(script, timeout=60)
    assert proc.returncode == 3, proc.stderr
    assert proc.stdout == "buffered line"
    assert marker.read_text() == "ok"


def test_the_garbage_collector_is_off_during_start_up_and_on_again_after():
    import gc

    from transferlab.runs import startup

    seen = []

    def start_up_then_train():
        seen.append(gc.isenabled())  # importing torch & co.: off
        startup.gc_after_startup()  # what pipeline.train calls before the first batch
        seen.append(gc.isenabled())
        gc.disable()  # an entry point that fails before training ...

    frozen_before = gc.get_freeze_count()
    startup.without_gc_until_training(start_up_then_train)
    assert seen == [False, True]
    assert gc.isenabled()  # ... still leaves the collector on
    assert gc.get_freeze_count() > frozen_before  # start-up's objects left the generations
    gc.unfreeze()
