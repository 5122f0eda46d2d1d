"""Whether a run had finished learning: summary.json's `converged`, and compare.py's column."""

import pytest

from tests.conftest import QUIET, run_cli, run_dirs, summary
from transferlab.runs.convergence import still_improving

CNN = ["model=cnn", "mode=scratch", "callbacks.early_stopping=null", QUIET]


def test_the_rule_flags_a_climb_over_the_last_quarter_and_not_a_plateau():
    climbing = [0.30, 0.45, 0.55, 0.63, 0.70, 0.75, 0.79, 0.83]
    plateau = [0.30, 0.80, 0.90, 0.91, 0.91, 0.912, 0.91, 0.909]
    assert still_improving(climbing) == (False, 0.08)
    converged, gain = still_improving(plateau)
    assert converged is True and gain < 0.005
    assert still_improving([0.5, 0.6, 0.7]) == (None, None)  # too few to tell
    # lower is better (a loss) is handled by the callback negating the scores
    assert still_improving([-s for s in [0.9, 0.5, 0.4, 0.3, 0.2, 0.1]])[0] is False


@pytest.mark.slow
def test_a_still_climbing_run_is_flagged_and_a_flat_one_is_not(tmp_path):
    # lr 3e-4 on digits: val/acc still rises epoch after epoch at epoch 8; lr 1e-9 moves
    # nothing, so its val/acc is flat from the start.
    for task, lr in (("climbing", "3e-4"), ("flat", "1e-9")):
        proc = run_cli("train.py", *CNN, "epochs=8", f"lr={lr}", f"task_name={task}", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr[-3000:]
    (climbing,) = run_dirs(tmp_path / "logs", "climbing/runs/*")
    (flat,) = run_dirs(tmp_path / "logs", "flat/runs/*")
    assert summary(climbing)["converged"] is False and summary(climbing)["convergence_gain"] > 0.005
    assert summary(flat)["converged"] is True and summary(flat)["validations"] == 8
    report = run_cli("compare.py", str(tmp_path / "logs"), cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    assert "still learning" in report.stdout and "yes" in report.stdout


@pytest.mark.slow
def test_an_early_stopped_run_counts_as_converged(tmp_path):
    proc = run_cli(
        "train.py",
        "model=cnn",
        "mode=scratch",
        "epochs=30",
        "lr=1e-9",
        "callbacks.early_stopping.patience=1",
        QUIET,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(tmp_path / "logs")
    assert summary(run)["converged"] is True and summary(run)["epochs"] < 30
