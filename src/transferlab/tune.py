"""The `tune` config group: Lightning's learning-rate finder before training."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.tuner import Tuner

from transferlab.runs.plots import save_lr_find

log = logging.getLogger("transferlab")


def steepest_descent(
    lrs: list[float], losses: list[float], skip_begin: int = 10, skip_end: int = 1
) -> float | None:
    """The lr where the loss falls fastest per decade of lr (fastai's "steep" rule).

    Lightning's own suggestion takes the slope against lr itself; with exponentially
    spaced lrs, tiny wiggles among the smallest lrs then win (on digits it picks 2.8e-5
    where the loss has not started to fall). It is recorded beside this one.
    """
    pairs = [
        (lr, loss)
        for lr, loss in zip(lrs[skip_begin:-skip_end], losses[skip_begin:-skip_end], strict=True)
        if math.isfinite(loss) and lr > 0
    ]
    if len(pairs) < 3:
        return None
    lr_t = torch.tensor([lr for lr, _ in pairs], dtype=torch.float64)
    loss_t = torch.tensor([loss for _, loss in pairs], dtype=torch.float64)
    slope = torch.gradient(loss_t, spacing=[lr_t.log10()])[0]
    return float(lr_t[int(torch.argmin(slope))])


def find_lr(tune: dict, trainer: L.Trainer, module, datamodule, plots_dir: Path) -> dict[str, Any]:
    """Run the range test, plot it, and (tune.apply=true) train with its suggestion.

    Returns the summary.json entry. The module's own divergence check is off while the
    test runs: driving the loss up is the point of it.
    """
    args = {k: v for k, v in tune.items() if k not in ("name", "apply")}
    # Lightning stops the test at max_epochs too: on a small dataset that cuts it short.
    max_epochs = trainer.fit_loop.max_epochs
    trainer.fit_loop.max_epochs = max(max_epochs or 1, int(args.get("num_training", 100)))
    try:
        with module.searching_lr():
            finder = Tuner(trainer).lr_find(
                module, datamodule=datamodule, update_attr=False, **args
            )
    finally:
        trainer.fit_loop.max_epochs = max_epochs
    lightning_pick = finder.suggestion() if finder is not None else None
    suggestion = steepest_descent(finder.results["lr"], finder.results["loss"]) if finder else None
    configured = module.hparams.optimizer["lr"]
    applied = bool(tune.get("apply")) and suggestion is not None
    if trainer.is_global_zero and finder is not None:
        save_lr_find(finder.results["lr"], finder.results["loss"], suggestion, plots_dir)
    if suggestion is None:
        log.warning(
            "The lr finder found no suggestion (too few batches before the loss diverged); "
            "training keeps lr=%g. Raise tune.num_training or lower tune.max_lr.",
            configured,
        )
    else:
        log.info(
            "lr finder suggests lr=%.3g (configured %g)%s",
            suggestion,
            configured,
            "; training with it" if applied else "; tune.apply=true trains with it",
        )
    if applied:
        module.use_lr(suggestion)
    return {
        "suggestion": suggestion,
        "configured_lr": configured,
        "applied": applied,
        "lightning_suggestion": lightning_pick,
        "plot": str(plots_dir / "lr_find.png"),
    }
