"""Each trial reports `optimized_metric` to its Optuna trial after every validation; when the
pruner calls it hopeless the run stops after that epoch and ends as `pruned`: tested,
checkpointed and summarised like any run (summary.json status `pruned`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import lightning as L

from transferlab.search.study import PRUNED_ATTR, trial_of

log = logging.getLogger("transferlab")


class TrialPruning(L.Callback):
    """Report `monitor` per epoch to trial `trial` of the search's study; stop if pruned."""

    def __init__(self, monitor: str, trial: int, search: Mapping) -> None:
        self.monitor = monitor
        self.number = int(trial)
        self.search = search
        self.trial: Any = None
        self.pruned_epoch: int | None = None

    @staticmethod
    def pruned_epoch_of(trainer: L.Trainer) -> int | None:
        """The epoch after which the trial was pruned; None if it was not (or not a trial)."""
        for callback in trainer.callbacks:
            if isinstance(callback, TrialPruning):
                return callback.pruned_epoch
        return None

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.trial = trial_of(self.search, self.number)
            if self.trial is None:
                log.warning("Trial %d is in another process's memory: no pruning.", self.number)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        value = trainer.callback_metrics.get(self.monitor)
        if trainer.is_global_zero and self.trial is not None and value is not None:
            self.trial.report(float(value), step=trainer.current_epoch)
            prune = self.trial.should_prune()
        if trainer.strategy.broadcast(prune):
            self.pruned_epoch = trainer.current_epoch
            if self.trial is not None:  # the sweeper reads it when the job returns
                self.trial.set_user_attr(PRUNED_ATTR, self.pruned_epoch)
            trainer.should_stop = True
            log.info(
                "Trial %d pruned after epoch %d (%s = %.4f).",
                self.number,
                trainer.current_epoch,
                self.monitor,
                float(value) if value is not None else float("nan"),
            )

    def state_dict(self) -> dict[str, Any]:
        return {"pruned_epoch": self.pruned_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.pruned_epoch = state_dict.get("pruned_epoch")
