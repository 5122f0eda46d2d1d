"""How long a run waited for its first training batch, and each epoch took: `RunTimer`."""

from __future__ import annotations

import time

import lightning as L

import transferlab

# Hydra runs a sweep's jobs one after another in one process: only the first job waited
# through the imports, so only it counts from the process's start. Process-wide by
# nature (a RunTimer lives for one job), hence the one module-level flag.
_process_start_counted = False


def job_started() -> float:
    """Where this job's start-up counts from: the process's start for its first job, now
    for a sweep's later jobs in the same process."""
    global _process_start_counted
    if _process_start_counted:
        return time.perf_counter()
    _process_start_counted = True
    return transferlab.STARTED


class RunTimer(L.Callback):
    """Logs `time/epoch_s` each training epoch and keeps when the first training batch began.

    Last in the callback list, so an epoch's time includes the other callbacks' work in it
    (validation and checkpoint writes too). The lr range test (tune=lr_find) runs without
    the trainer's callbacks: for the timer it is start-up.
    """

    def __init__(self) -> None:
        self.first_batch_at: float | None = None  # perf_counter of the first training batch
        self._epoch_start = 0.0

    @staticmethod
    def of(trainer: L.Trainer) -> RunTimer:
        """The trainer's RunTimer (as `trainer.checkpoint_callback` finds its checkpoint)."""
        for callback in trainer.callbacks:
            if isinstance(callback, RunTimer):
                return callback
        raise LookupError("This trainer has no RunTimer: build it with pipeline.build_trainer.")

    def startup_s(self, started: float) -> float | None:
        """Seconds from `started` to the first training batch; None before one ran."""
        return None if self.first_batch_at is None else round(self.first_batch_at - started, 3)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.first_batch_at is None:
            self.first_batch_at = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._epoch_start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        pl_module.log("time/epoch_s", time.perf_counter() - self._epoch_start)
