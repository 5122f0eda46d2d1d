"""Gradual unfreezing as a Lightning callback whose state lives in the checkpoint."""

from __future__ import annotations

import logging

import lightning as L
import torch
import torch.distributed as dist

from transferlab.finetune import freeze

log = logging.getLogger("transferlab")


class GradualUnfreezing(L.Callback):
    """Train the head alone for `freeze_epochs`, then unfreeze `groups_per_step` more
    layer groups (deepest first) every `unfreeze_every` epochs.

    Unfreezing only flips requires_grad: every parameter sits in the optimizer from the
    start with its own (discriminative) lr, so schedulers and resumed runs see the same
    groups throughout. Under DDP, parameters frozen when the model was wrapped are not in
    DDP's reducer; their gradients are averaged here instead, so find_unused_parameters
    stays off and the ranks never drift apart (the trap of Lightning's BackboneFinetuning).
    """

    def __init__(self, freeze_epochs: int = 1, unfreeze_every: int = 1, groups_per_step: int = 1):
        self.freeze_epochs = freeze_epochs
        self.unfreeze_every = max(1, unfreeze_every)
        self.groups_per_step = max(1, groups_per_step)
        self.unfrozen = 0
        self._synced_by_ddp: set[int] = set()

    def groups_at(self, epoch: int, n_groups: int) -> int:
        """How many of the last groups train during `epoch` (0-based)."""
        if epoch < self.freeze_epochs:
            return 0
        steps = (epoch - self.freeze_epochs) // self.unfreeze_every + 1
        return min(n_groups, steps * self.groups_per_step)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        # Called before the strategy wraps the model: what trains now is what DDP syncs.
        self._synced_by_ddp = {id(p) for p in pl_module.parameters() if p.requires_grad}

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        net = pl_module.net
        k = self.groups_at(trainer.current_epoch, len(net.groups))
        freeze.set_trainable(net, k)
        pl_module.train()  # re-applies eval mode to whatever is still frozen
        if k != self.unfrozen:
            names = [g.name for g in net.groups[len(net.groups) - k :]]
            log.info(
                "Epoch %d: training the head and %d layer groups %s",
                trainer.current_epoch,
                k,
                names,
            )
        self.unfrozen = k

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.world_size < 2 or not dist.is_available() or not dist.is_initialized():
            return
        grads = [
            p.grad
            for p in pl_module.parameters()
            if p.grad is not None and id(p) not in self._synced_by_ddp
        ]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)  # SUM: gloo has no AVG
        flat /= trainer.world_size
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def state_dict(self) -> dict:
        return {"unfrozen": self.unfrozen}

    def load_state_dict(self, state_dict: dict) -> None:
        self.unfrozen = state_dict["unfrozen"]
