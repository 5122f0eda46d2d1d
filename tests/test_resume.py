"""A run killed with SIGKILL mid-epoch continues in its own folder and ends identical."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import (
    QUIET,
    killed_and_resumed,
    logged,
    read_checkpoint,
    run_cli,
    run_dirs,
    summary,
)
from transferlab.runs.resume import continue_metrics_csv

RUN = [
    "model=cnn",
    "mode=scratch",
    "data.image_size=24",
    "epochs=5",
    "trainer.deterministic=true",
    "callbacks.early_stopping=null",
    QUIET,
]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_an_uninterrupted_run(tmp_path):
    reference, killed = killed_and_resumed(*RUN, cwd=tmp_path)  # resumed in its own folder
    a, b = (read_checkpoint(r, "last.ckpt")["state_dict"] for r in (reference, killed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [int(e) for e in logged(killed, "epoch", when="val/acc")] == [0, 1, 2, 3, 4]
    assert summary(killed)["status"] == "completed"
    # the convergence record lives in the checkpoint: the resumed run judged all 5 epochs
    assert summary(killed)["validations"] == summary(reference)["validations"] == 5
    assert summary(killed)["converged"] == summary(reference)["converged"]


def test_resume_of_a_folder_without_a_checkpoint_is_a_clear_error(tmp_path):
    proc = run_cli("train.py", f"resume={tmp_path}", cwd=tmp_path)
    assert proc.returncode == 2 and "last.ckpt" in proc.stderr


def test_rows_of_the_interrupted_epoch_are_dropped(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text(
        "epoch,step,val/acc,lr\n,0,,0.1\n0,9,0.5,\n,10,,0.1\n1,19,0.6,\n,20,,0.1\n2,29,0.7,\n"
    )
    rows, keys = continue_metrics_csv(path, epoch=1, global_step=20)
    assert [(r["epoch"], r["step"]) for r in rows] == [
        ("", "0"),
        ("0", "9"),
        ("", "10"),
        ("1", "19"),
    ]
    assert keys == ["epoch", "step", "val/acc", "lr"]


@pytest.mark.slow
def test_resume_continues_the_same_wandb_run(tmp_path):
    quick = ["model=cnn", "mode=scratch", "logger=wandb", "extras.print_config=false"]
    offline = {"WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    first = run_cli("train.py", *quick, "epochs=1", cwd=tmp_path, env=offline)
    assert first.returncode == 0, first.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs", "train/runs/*")
    again = run_cli("train.py", f"resume={run}", "epochs=2", cwd=tmp_path, env=offline)
    assert again.returncode == 0, again.stderr[-3000:]
    ids = {p.name.rsplit("-", 1)[1] for p in (run / "wandb").glob("offline-run-*")}
    assert len(list((run / "wandb").glob("offline-run-*"))) == 2 and len(ids) == 1
