"""runs.timing: where a job's start-up counts from, and RunTimer's bookkeeping."""

from __future__ import annotations

import time

import transferlab
from transferlab.runs import timing
from transferlab.runs.timing import RunTimer


def test_only_a_processs_first_job_counts_start_up_from_the_process_start(monkeypatch):
    monkeypatch.setattr(timing, "_process_start_counted", False)
    assert timing.job_started() == transferlab.STARTED  # it waited through the imports
    before = time.perf_counter()
    assert before <= timing.job_started() <= time.perf_counter()  # a sweep's later job


def test_run_timer_knows_start_up_only_after_a_training_batch():
    timer = RunTimer()
    assert timer.startup_s(time.perf_counter()) is None
    started = time.perf_counter()
    timer.on_train_batch_start(None, None, None, 0)
    first = timer.first_batch_at
    timer.on_train_batch_start(None, None, None, 1)  # later batches change nothing
    assert timer.first_batch_at == first
    assert timer.startup_s(started) == round(first - started, 3) >= 0
