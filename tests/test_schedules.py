"""Learning-rate schedules: their shapes, per-group peaks, plots/lr.png and resumed runs."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import QUIET, killed_and_resumed, read_checkpoint, run_cli, run_dirs, summary
from transferlab import lr_schedules
from transferlab.finetune.param_groups import param_groups
from transferlab.models.scratch import cnn
from transferlab.runs.plots import lr_series

QUICK = ["model=cnn", "mode=scratch", "epochs=2", QUIET]


def _head_lrs(run) -> list[float]:
    (head,) = [points for key, points in lr_series(run / "csv/metrics.csv") if key.endswith("head")]
    return [lr for _, lr in head]


def _net():
    return cnn(num_classes=10, in_chans=1, image_size=8)


def _stepped(optimizer, schedule, steps: int = 20) -> list[list[float]]:
    """Each group's lr before each of `steps` optimizer steps under `schedule`."""
    seen = []
    for _ in range(steps):
        seen.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        schedule.step()
    return seen


def test_one_cycle_peaks_at_each_groups_own_lr_under_layer_decay():
    groups = param_groups(_net(), lr=0.1, layer_decay=0.5)
    configured = [g["lr"] for g in groups]
    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    seen = _stepped(optimizer, lr_schedules.one_cycle(optimizer, total_steps=20))
    peaks = [max(step[i] for step in seen) for i in range(len(groups))]
    assert len(set(configured)) > 1  # the groups really differ
    assert peaks == pytest.approx(configured)
    assert seen[0] == pytest.approx([lr / 25 for lr in configured])


def test_cyclic_swings_each_group_between_its_lr_over_ten_and_its_lr():
    groups = param_groups(_net(), lr=0.1, backbone_lr_mult=0.1)
    optimizer = torch.optim.Adam(groups)
    seen = _stepped(optimizer, lr_schedules.cyclic(optimizer, steps_per_epoch=10))
    head = [step[-1] for step in seen]
    backbone = [step[0] for step in seen]
    assert max(head) == pytest.approx(0.1) and min(head) == pytest.approx(0.01)
    assert max(backbone) == pytest.approx(0.01) and min(backbone) == pytest.approx(0.001)
    assert head.index(max(head)) == 5  # half a cycle up, half down, per epoch


def _shape_onecycle(lrs, lr):
    top = lrs.index(max(lrs))
    assert lrs[0] == pytest.approx(lr / 25) and max(lrs) == pytest.approx(lr, rel=0.05)
    assert 0.2 < top / len(lrs) < 0.4 and lrs[-1] < lr / 100


def _shape_cyclic(lrs, lr):
    assert lrs[0] == pytest.approx(lr / 10) and max(lrs) == pytest.approx(lr)
    assert sum(1 for a, b, c in zip(lrs, lrs[1:], lrs[2:], strict=False) if b > a and b > c) == 2


def _shape_warmup_cosine(lrs, lr):
    top = lrs.index(max(lrs))
    assert lrs[0] == pytest.approx(lr / 100) and max(lrs) == pytest.approx(lr)
    assert top / len(lrs) <= 0.15 and lrs[-1] < lr / 50


def _shape_exponential(lrs, lr):
    assert lrs == pytest.approx([lr, lr * 0.9])


@pytest.mark.parametrize(
    "schedule",
    [
        "onecycle",
        pytest.param("cyclic", marks=pytest.mark.slow),
        pytest.param("warmup_cosine", marks=pytest.mark.slow),
        pytest.param("exponential", marks=pytest.mark.slow),
    ],
)
def test_each_schedule_trains_and_plots_its_shape(tmp_path, schedule):
    proc = run_cli(
        "train.py",
        *QUICK,
        f"scheduler={schedule}",
        "lr=0.002",
        "trainer.log_every_n_steps=1",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    assert summary(run)["metrics"]["test/acc"] > 0.5
    assert (run / "plots/lr.png").stat().st_size > 10_000
    globals()[f"_shape_{schedule}"](_head_lrs(run), 0.002)


def test_a_bad_interval_is_refused_before_training(tmp_path):
    proc = run_cli(
        "train.py", *QUICK, "scheduler=onecycle", "scheduler.interval=batch", cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "scheduler.interval=batch" in proc.stderr and "interval=step" in proc.stderr


KILLED = [
    "model=cnn",
    "mode=scratch",
    "data.image_size=24",
    "epochs=4",
    "scheduler=onecycle",
    "model.ema=0.9",
    "trainer.log_every_n_steps=1",
    "trainer.deterministic=true",
    "callbacks.early_stopping=null",
    QUIET,
]


@pytest.mark.slow
def test_a_killed_then_resumed_one_cycle_run_follows_the_same_lr_values_and_ema(tmp_path):
    reference, killed = killed_and_resumed(*KILLED, cwd=tmp_path)
    want, got = lr_series(reference / "csv/metrics.csv"), lr_series(killed / "csv/metrics.csv")
    assert [k for k, _ in got] == [k for k, _ in want]
    for (_, a), (_, b) in zip(want, got, strict=True):
        assert len(a) > 40 and [s for s, _ in b] == [s for s, _ in a]
        assert [lr for _, lr in b] == pytest.approx([lr for _, lr in a], rel=1e-12)
    # The weights' average was checkpointed and continued: both states end identical.
    a, b = (read_checkpoint(r, "last.ckpt") for r in (reference, killed))
    for key in ("state_dict", "current_model_state"):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
