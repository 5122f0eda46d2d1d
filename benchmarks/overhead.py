"""What does transferlab's loop cost over a plain PyTorch loop doing the same work?

    python benchmarks/overhead.py [--pairs 3] [overrides ...]     (default: the embedded default)

Each pair runs one epoch (training, then validation with accuracy) through transferlab's
real Trainer, callbacks, loggers and progress bar (`time/epoch_s`, as every run logs it),
and one epoch of a plain loop over the same batches: the same network (copied from the
same start), optimizer, preprocessing and threads. Pairs alternate the order, so drift on
this noisy machine falls on both sides; the median ratio is printed (goal: <= 1.05).
Run it as `make` runs training, with GLIBC_TUNABLES set (see the Makefile).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.core.hydra_config import HydraConfig
from omegaconf import open_dict

from transferlab.cli import CONF_DIR
from transferlab.pipeline import build_run


def config(overrides: list[str], out: Path):
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["epochs=1", *overrides], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        cfg.paths.output_dir = str(out)
        del cfg.hydra
    return cfg


def transferlab_epoch(cfg, out: Path) -> tuple[float, object, object]:
    module, datamodule, trainer = build_run(cfg, out)
    start = copy.deepcopy(module.net.state_dict())
    trainer.fit(module, datamodule=datamodule)
    module.net.load_state_dict(start)  # the plain loop starts where this one started
    return float(trainer.callback_metrics["time/epoch_s"]), module, datamodule


def plain_epoch(module, datamodule) -> float:
    """The same epoch as a plain loop: train on every batch, then score the val set."""
    net, lr = module.net, module.hparams["optimizer"]["lr"]
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    start = time.perf_counter()
    net.train()
    for images, labels in datamodule.train_dataloader():
        x, y = datamodule.prepare_batch(images, labels, train=True)
        loss = loss_fn(net(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    net.eval()
    correct = total = 0
    with torch.inference_mode():
        for images, labels in datamodule.val_dataloader():
            x, y = datamodule.prepare_batch(images, labels, train=False)
            correct += int((net(x).argmax(1) == y).sum())
            total += len(y)
    assert total > 0 and correct >= 0
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    args, overrides = parser.parse_known_args()
    ratios = []
    for pair in range(args.pairs):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = config(overrides, Path(tmp))
            if pair % 2 == 0:
                ours, module, data = transferlab_epoch(cfg, Path(tmp))
                plain = plain_epoch(module, data)
            else:  # the plain loop first: the same build, fit afterwards
                module, data, _ = build_run(cfg, Path(tmp))
                plain = plain_epoch(module, data)
                ours, _, _ = transferlab_epoch(cfg, Path(tmp))
        ratios.append(ours / plain)
        print(f"pair {pair + 1}: transferlab {ours:.2f} s, plain loop {plain:.2f} s, "
              f"ratio {ratios[-1]:.3f}", flush=True)  # fmt: skip
    print(f"median ratio transferlab / plain over {len(ratios)} pairs: "
          f"{statistics.median(ratios):.3f} (goal <= 1.05)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
