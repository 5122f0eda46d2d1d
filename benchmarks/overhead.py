"""What does transferlab's loop cost over a plain PyTorch loop doing the same work?

    python benchmarks/overhead.py [--epochs 5] [overrides ...]     (default: the embedded default)

One real run, built as `python train.py` builds it (Trainer, callbacks, loggers,
checkpoints, progress bar), trains `epochs + 1` epochs. Before each of its training and
validation steps a callback runs the plain loop's step: a batch from the same loaders,
prepared the same way, through a copy of the same network, with its own optimizer of the
same class and settings, on the same threads. transferlab's epoch is the epoch's wall time
less the plain steps in it, so every hook, metric, log line, checkpoint write and redraw
stays on its side; the progress bar's thread, which also runs during plain steps, has all
its CPU time charged to transferlab. The first epoch warms caches and is not counted.
Prints each epoch's ratio, where transferlab's time went, and the median (goal: <= 1.05).

Interleaving step by step is what makes one run enough: this machine's speed drifts by 10%
within a minute, and both sides drift together. (Whole epochs in separate runs, alternating
which went first, gave medians from 0.97 to 1.09 for the same code.)
Run it as `make` runs training, with GLIBC_TUNABLES set (see the Makefile).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from transferlab.cli import CONF_DIR
from transferlab.finetune import freeze
from transferlab.pipeline import build_run


def config(overrides: list[str], epochs: int, out: Path):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", [f"epochs={epochs}", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        if cfg.callbacks.get("early_stopping"):  # kept, but may not end the run early
            cfg.callbacks.early_stopping.patience = 10**6
        del cfg.hydra
    return cfg


def background_cpu_s() -> float:
    """CPU seconds so far of this process's Python threads but the main one (Linux /proc)."""
    ticks = 0
    for thread in threading.enumerate():
        if thread is threading.main_thread() or thread.native_id is None:
            continue
        try:  # fields 14 and 15 of stat, utime and stime; the name before ")" may hold spaces
            stat = Path(f"/proc/self/task/{thread.native_id}/stat").read_text()
        except OSError:  # not Linux, or the thread has just ended
            continue
        fields = stat.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class PlainSteps(L.Callback):
    """Runs a plain loop's step before each of the run's steps and times both sides.

    The plain side fetches its own batches from the same loaders, prepares them the same
    way, and steps a copy of the network with its own optimizer of the same class and
    settings. A run's epoch is its wall time (between this callback's epoch-start hooks)
    less the plain steps run inside it: every hook, log line, metric, checkpoint write and
    progress-bar redraw of transferlab's epoch stays on its side.
    """

    def __init__(self, datamodule) -> None:
        self.data = datamodule
        self.plain: list[float] = []  # seconds of plain steps per epoch
        self.ours: list[float] = []  # seconds of transferlab per epoch
        self.redraws: list[float] = []  # CPU seconds of its other threads, in `ours`
        self.steps: list[float] = []  # of `ours`: from its batch start hooks to batch end
        self._epoch_start: float | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.net = copy.deepcopy(pl_module.net)
        used = trainer.optimizers[0]
        trainable = [p for p in self.net.parameters() if p.requires_grad]
        self.optimizer = type(used)(trainable, **used.defaults)
        self.loss_fn = torch.nn.CrossEntropyLoss()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._close_epoch()
        self._epoch_start, self._in_epoch, self._steps = time.perf_counter(), 0.0, 0.0
        self.net.train()
        freeze.eval_frozen_modules(self.net)  # as the module's train() does
        self._batches = iter(self.data.train_dataloader())

    def on_train_end(self, trainer, pl_module) -> None:
        self._close_epoch()

    def _close_epoch(self) -> None:
        background = background_cpu_s()
        if self._epoch_start is not None:
            # The progress bar redraws from a thread of its own, during plain steps too:
            # all its CPU time is charged to transferlab, as if it had run in between.
            redraws = background - self._background
            self.plain.append(self._in_epoch)
            self.redraws.append(redraws)
            self.steps.append(self._steps)
            self.ours.append(time.perf_counter() - self._epoch_start - self._in_epoch + redraws)
        self._background = background

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        start = time.perf_counter()
        x, y = self.data.prepare_batch(*next(self._batches), train=True)
        loss = self.loss_fn(self.net(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._step_start = time.perf_counter()
        self._in_epoch += self._step_start - start

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self._steps += time.perf_counter() - self._step_start

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self.net.eval()
        self._batches = iter(self.data.val_dataloader())
        self.correct = 0

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        start = time.perf_counter()  # Lightning runs this hook under inference mode
        x, y = self.data.prepare_batch(*next(self._batches), train=False)
        self.correct += int((self.net(x).argmax(1) == y).sum())  # accuracy, as ours logs
        self._step_start = time.perf_counter()
        self._in_epoch += self._step_start - start

    def on_validation_batch_end(
        self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0
    ):
        self._steps += time.perf_counter() - self._step_start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5, help="measured epochs")
    args, overrides = parser.parse_known_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = config(overrides, args.epochs + 1, Path(tmp))
        module, datamodule, trainer = build_run(cfg, Path(tmp))
        plain = PlainSteps(datamodule)
        trainer.callbacks.append(plain)
        trainer.fit(module, datamodule=datamodule)
    ratios = []
    for i in range(1, len(plain.ours)):  # the first epoch warms caches and kernels
        ours, steps = plain.ours[i], plain.plain[i]
        ratios.append(ours / steps)
        print(f"epoch {i}: transferlab {ours:.2f} s, plain loop {steps:.2f} s, ratio "
              f"{ratios[-1]:.3f}; of transferlab's: {plain.steps[i]:.2f} s in steps, "
              f"{ours - plain.steps[i] - plain.redraws[i]:.2f} s between them, "
              f"{plain.redraws[i]:.2f} s the bar's thread", flush=True)  # fmt: skip
    total = sum(plain.ours[1:]) / sum(plain.plain[1:])
    print(f"all {len(ratios)} epochs together: ratio {total:.3f}")
    print(f"median ratio transferlab / plain over {len(ratios)} epochs: "
          f"{statistics.median(ratios):.3f} (goal <= 1.05)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
