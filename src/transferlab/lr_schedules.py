"""Learning-rate schedules of the `scheduler` config group, built on torch's own schedulers.

Every schedule scales each parameter group from that group's own `lr` (backbone_lr_mult,
layer_decay and gradual unfreezing give groups different rates), so OneCycle and Cyclic
get one peak per group. The config's `interval` says whether Lightning steps the
schedule after every optimizer step or every epoch; the schedule's state rides in the
checkpoint, so a resumed run continues on the same curve.
"""

from __future__ import annotations

import inspect
from typing import Any

from hydra.utils import instantiate
from torch.optim import Optimizer
from torch.optim.lr_scheduler import (
    CosineAnnealingLR,
    CyclicLR,
    LinearLR,
    LRScheduler,
    OneCycleLR,
    SequentialLR,
)

INTERVALS = ("step", "epoch")


def _group_lrs(optimizer: Optimizer) -> list[float]:
    return [group["lr"] for group in optimizer.param_groups]


def one_cycle(
    optimizer: Optimizer, total_steps: int, cycle_momentum: bool = True, **options: Any
) -> OneCycleLR:
    """OneCycleLR peaking at each group's configured lr over the whole run; `options` are
    OneCycleLR's own (pct_start, div_factor, final_div_factor, anneal_strategy)."""
    return OneCycleLR(
        optimizer,
        max_lr=_group_lrs(optimizer),
        total_steps=total_steps,
        cycle_momentum=_cycles_momentum(optimizer, cycle_momentum),
        **options,
    )


def warmup_cosine(
    optimizer: Optimizer,
    total_steps: int,
    warmup_frac: float = 0.1,
    start_factor: float = 0.01,
    eta_min: float = 0.0,
) -> SequentialLR:
    """Linear warm-up from lr * start_factor to lr, then cosine decay to eta_min."""
    warmup = max(1, round(total_steps * warmup_frac))
    return SequentialLR(
        optimizer,
        [
            LinearLR(optimizer, start_factor=start_factor, total_iters=warmup),
            CosineAnnealingLR(optimizer, T_max=max(1, total_steps - warmup), eta_min=eta_min),
        ],
        milestones=[warmup],
    )


def cyclic(
    optimizer: Optimizer,
    steps_per_epoch: int,
    base_lr_div: float = 10.0,
    epochs_per_half_cycle: float = 0.5,
    cycle_momentum: bool = False,
    **options: Any,
) -> CyclicLR:
    """CyclicLR between each group's lr / base_lr_div and its lr, half a cycle in epochs;
    `options` are CyclicLR's own (mode)."""
    peaks = _group_lrs(optimizer)
    return CyclicLR(
        optimizer,
        base_lr=[lr / base_lr_div for lr in peaks],
        max_lr=peaks,
        step_size_up=max(1, round(steps_per_epoch * epochs_per_half_cycle)),
        cycle_momentum=_cycles_momentum(optimizer, cycle_momentum),
        **options,
    )


def _cycles_momentum(optimizer: Optimizer, wanted: bool) -> bool:
    # Adam's beta1 cycles like SGD's momentum; RMSprop without momentum has neither.
    defaults = optimizer.defaults
    return wanted and ("betas" in defaults or bool(defaults.get("momentum")))


def lightning_config(cfg: dict, optimizer: Optimizer, trainer) -> dict[str, Any]:
    """The `lr_scheduler` entry of configure_optimizers for a `scheduler` config.

    Lengths a schedule needs (total_steps, steps_per_epoch) come from the trainer, so they
    follow epochs, batch size, accumulate_grad_batches and DDP without anyone counting.
    """
    cfg = dict(cfg)
    interval = cfg.pop("interval", "epoch")
    factory = instantiate(cfg)
    wanted = inspect.signature(factory.func).parameters
    sizes: dict[str, int] = {}
    if "total_steps" in wanted or "steps_per_epoch" in wanted:
        total = int(trainer.estimated_stepping_batches)
        sizes["total_steps"] = total if interval == "step" else int(trainer.max_epochs)
        sizes["steps_per_epoch"] = max(1, total // max(1, int(trainer.max_epochs)))
    scheduler: LRScheduler = factory(
        optimizer=optimizer, **{k: v for k, v in sizes.items() if k in wanted}
    )
    # monitor only matters to ReduceLROnPlateau; the others ignore it.
    return {"scheduler": scheduler, "monitor": "val/loss", "interval": interval}
