"""Whether a run had finished learning: summary.json's `converged` and `convergence_gain`.

The rule: split the run's validation scores into the last quarter and everything before it.
If the best of the last quarter beats the best before it by at least `min_gain`, the run
was still improving when it stopped (`converged: false`); otherwise it had levelled off
(`true`). A run that early stopping ended has converged by that callback's own test. Fewer
than `min_validations` scores cannot tell a trend from noise: `null` (unknown).

Why a quarter and half a point: the last quarter is long enough that one lucky epoch on a
small validation split rarely decides it, short enough that a slow climb at the end still
shows; 0.005 accuracy is under two images of a 270-image validation split (digits), so a
single image flipping does not count as learning.
"""

from __future__ import annotations

import math
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback, EarlyStopping


def still_improving(
    scores: list[float], tail: float = 0.25, min_gain: float = 0.005, min_validations: int = 4
) -> tuple[bool | None, float | None]:
    """(converged, gain) from validation scores in order, higher better; (None, None) if too few."""
    scores = [s for s in scores if s is not None and math.isfinite(s)]
    if len(scores) < max(min_validations, 2):
        return None, None
    last = max(1, math.ceil(len(scores) * tail))
    gain = max(scores[-last:]) - max(scores[:-last])
    return gain < min_gain, round(gain, 6)


class Convergence(Callback):
    """Records the monitored validation score after every validation; resumes with it."""

    def __init__(
        self,
        monitor: str = "val/acc",
        mode: str = "max",
        tail: float = 0.25,
        min_gain: float = 0.005,
        min_validations: int = 4,
    ) -> None:
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
        self.monitor, self.mode = monitor, mode
        self.tail, self.min_gain, self.min_validations = tail, min_gain, min_validations
        self.scores: list[float] = []

    @property
    def state_key(self) -> str:
        return f"Convergence{{monitor={self.monitor}}}"

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None:
            self.scores.append(float(value))

    def state_dict(self) -> dict[str, Any]:
        return {"scores": list(self.scores)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.scores = list(state_dict.get("scores", []))

    def verdict(self, trainer: L.Trainer) -> dict[str, Any]:
        """The summary.json fields: converged (true | false | null) and the gain."""
        sign = 1.0 if self.mode == "max" else -1.0
        converged, gain = still_improving(
            [sign * s for s in self.scores], self.tail, self.min_gain, self.min_validations
        )
        stopped = any(
            isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in trainer.callbacks
        )
        if stopped:
            converged = True
        return {"converged": converged, "convergence_gain": gain, "validations": len(self.scores)}

    @staticmethod
    def of(trainer: L.Trainer) -> Convergence | None:
        return next((c for c in trainer.callbacks if isinstance(c, Convergence)), None)
