"""DDP (simulated with 2 CPU processes) inside Hydra: one folder per run, synced metrics."""

from __future__ import annotations

import pytest

from tests.conftest import QUIET, run_cli, run_dirs, summary
from transferlab.data.datamodule import EpochShuffle, Shard


def test_train_shards_are_equal_sized_and_cover_every_index():
    shards = [list(EpochShuffle(11, seed=0, rank=r, world_size=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 6
    assert set(shards[0]) | set(shards[1]) == set(range(11))


def test_eval_shards_hold_every_index_exactly_once():
    shards = [list(Shard(11, rank=r, world_size=3)) for r in range(3)]
    assert sorted(i for s in shards for i in s) == list(range(11))


@pytest.mark.slow
def test_ddp_sim_run_writes_one_folder_and_matches_single_process_eval(tmp_path):
    proc = run_cli(
        "train.py", "model=cnn", "mode=scratch", "trainer=ddp_sim", "epochs=2", QUIET, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert [p.name for p in (tmp_path / "logs").iterdir()] == ["train"]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    assert not list(run.glob(".pl_hydra*")) and len(list(run.rglob("summary.json"))) == 1
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    proc = run_cli("eval.py", f"ckpt_path={run}/checkpoints/best.ckpt", QUIET, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (ev,) = run_dirs(tmp_path / "logs", "eval/runs/*")
    ddp, single = summary(run)["metrics"], summary(ev)["metrics"]
    assert ddp["test/acc"] == pytest.approx(single["test/acc"], abs=1e-6)
    assert ddp["test/loss"] == pytest.approx(single["test/loss"], abs=1e-5)
    assert ddp["test/ece"] == pytest.approx(single["test/ece"], abs=1e-6)  # gathered bins


@pytest.mark.slow
def test_ddp_sim_inside_a_sweep_makes_one_folder_per_job_and_no_strays(tmp_path):
    proc = run_cli(
        "train.py",
        "-m",
        "model=cnn",
        "mode=scratch",
        "trainer=ddp_sim",
        "lr=1e-3,1e-2",
        "epochs=1",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    sweeps = run_dirs(tmp_path / "logs", "train/multiruns/*")
    assert len(sweeps) == 1
    jobs = [p for p in sweeps[0].iterdir() if p.is_dir()]
    assert len(jobs) == 2
    assert all(summary(j)["status"] == "completed" for j in jobs)
    assert not list((tmp_path / "logs").glob("train/runs/*"))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["feature_extract", "partial"])
def test_freeze_modes_finish_under_ddp_sim(mode, tmp_path):
    proc = run_cli(
        "train.py",
        "model=efficientnet_lite0",
        f"mode={mode}",
        "trainer=ddp_sim",
        "epochs=1",
        "data.image_size=32",
        "+trainer.limit_train_batches=4",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    result = summary(run)
    assert result["status"] == "completed"
    assert result["params"]["trainable"] < result["params"]["total"]


@pytest.mark.slow
def test_gpu_pool_gives_job_i_the_slot_i_mod_n(tmp_path):
    proc = run_cli(
        "train.py",
        "-m",
        "hydra/launcher=gpu_pool",
        "hydra.launcher.n_jobs=2",
        "model=cnn",
        "mode=scratch",
        "lr=1e-3,1e-2,1e-1",
        "epochs=1",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(
        run_dirs(tmp_path / "logs", "train/multiruns/*/*"), key=lambda p: int(p.name.split("_")[0])
    )
    assert [summary(j)["gpu_slot"] for j in jobs] == [0, 1, 0]
