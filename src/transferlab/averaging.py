"""`model.ema=<decay>`: an exponential moving average of the weights, Lightning's callback."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import EMAWeightAveraging
from lightning.pytorch.trainer.states import TrainerFn


class EMA(EMAWeightAveraging):
    """Validation, test and every checkpoint's `state_dict` hold the averaged weights.

    The raw weights and the average's own state ride along in the checkpoint
    (`current_model_state`, `averaging_state`), so a resumed run continues both. Outside
    fit nothing is restored: Lightning's callback would otherwise swap the raw weights
    back in when the run tests best.ckpt, and test/acc would not be the average's.
    """

    def __init__(self, decay: float) -> None:
        super().__init__(decay=decay)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module, checkpoint: dict) -> None:
        if trainer.state.fn == TrainerFn.FITTING:
            super().on_load_checkpoint(trainer, pl_module, checkpoint)
