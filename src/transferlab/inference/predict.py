"""predict.py: a checkpoint's classes for new, unlabelled images -> predictions.csv.

Images are read and resized exactly as the run's test images were (the checkpoint's
`Preprocess`, `ImageFiles`' decoding), in DataLoader workers, in input order.
"""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from transferlab import heads
from transferlab.data.image_folder import ImageFiles
from transferlab.data.transforms import BatchTransform, Preprocess, item_transform
from transferlab.errors import UserError
from transferlab.inference.inputs import Inputs
from transferlab.module import ClassifierModule

log = logging.getLogger("transferlab")


class PredictImages(Dataset):
    """Each file as a uint8 tensor of the run's size; an unreadable one as (blank, its error)."""

    def __init__(self, files: list[Path], pre: Preprocess) -> None:
        self.files = ImageFiles(files, [0] * len(files), "RGB" if pre.channels == 3 else "L")
        self.transform = item_transform(pre, {}, train=False)
        self.blank = torch.zeros(
            pre.channels, pre.image_size or 1, pre.image_size or 1, dtype=torch.uint8
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, str]:
        try:
            image, _ = self.files[i]
        except UserError as err:
            return self.blank, str(err.__cause__ or err)
        return self.transform(image), ""


def _collate(items: list[tuple[torch.Tensor, str]]) -> tuple[torch.Tensor | None, list[str]]:
    errors = [e for _, e in items]
    good = [t for t, e in items if not e]
    return (torch.stack(good) if good else None), errors


def workers(value: int | str) -> int:
    if value == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(0, min(8, (cores or 1) - 1))  # one core is left to the forward pass
    return int(value)


def loader(
    files: list[Path], pre: Preprocess, batch_size: int, num_workers: int | str
) -> DataLoader:
    n = workers(num_workers)
    return DataLoader(
        PredictImages(files, pre),
        batch_size=batch_size,
        num_workers=n,
        collate_fn=_collate,
        persistent_workers=False,
        prefetch_factor=4 if n else None,
    )


@torch.inference_mode()
def predict(module: ClassifierModule, inputs: Inputs, opts: Mapping[str, Any], out: Path) -> dict:
    """Write predictions.csv (and skipped.csv when a file was skipped); returns the counts."""
    pre, classes = module.preprocess, list(module.hparams["classes"])
    module.eval()
    to_tensor = BatchTransform(pre, [])
    top_k = max(1, min(int(opts.get("top_k", 5)), len(classes)))
    scores = "probability" if heads.of(module.hparams.get("head")).calibrated else "score"
    if scores == "score":
        log.info(
            "head=%s: the score columns are the classifier's softmax of its decision values, "
            "not calibrated probabilities.",
            module.hparams["head"]["name"],
        )
    skipped = list(inputs.skipped)
    rows = 0
    images = inputs.images
    with open(out / "predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        header = ["path", "class", scores]
        for k in range(1, top_k + 1):
            header += [f"top{k}_class", f"top{k}_{scores}"]
        writer.writerow(header)
        start = 0
        for batch, errors in loader(images, pre, int(opts["batch_size"]), opts["num_workers"]):
            paths = images[start : start + len(errors)]
            start += len(errors)
            skipped += [(p, e) for p, e in zip(paths, errors, strict=True) if e]
            if batch is None:
                continue
            probs = module(to_tensor(batch)).float().softmax(dim=1)
            p, idx = probs.topk(top_k, dim=1)
            good = [path for path, e in zip(paths, errors, strict=True) if not e]
            for path, pk, ik in zip(good, p.tolist(), idx.tolist(), strict=True):
                row = [str(path), classes[ik[0]], f"{pk[0]:.6f}"]
                for c, v in zip(ik, pk, strict=True):
                    row += [classes[c], f"{v:.6f}"]
                writer.writerow(row)
                rows += 1
    if skipped:
        with open(out / "skipped.csv", "w", newline="") as f:
            csv.writer(f).writerows([("path", "reason"), *((str(p), why) for p, why in skipped)])
        log.warning("Skipped %d file(s), listed in skipped.csv:", len(skipped))
        for path, why in skipped:
            log.warning("  %s: %s", path, why)
    log.info("Wrote %d prediction(s) to %s", rows, out / "predictions.csv")
    return {"predicted": rows, "skipped": len(skipped)}


def run(cfg, output_dir: Path) -> dict[str, Any]:
    """The predict command: the checkpoint's network over `input`, into the run folder."""
    import time

    from transferlab.inference.inputs import list_inputs
    from transferlab.module import load_run

    start = time.perf_counter()
    inputs = list_inputs(str(cfg.input))
    module = load_run(Path(str(cfg.ckpt_path)).expanduser())
    counts = predict(module, inputs, cfg.predict, output_dir)
    return {
        "metrics": {},
        "epochs": 0,
        "checkpoint": str(Path(str(cfg.ckpt_path)).expanduser().resolve()),
        "predictions": str(output_dir / "predictions.csv"),
        **counts,
        "wall_time_s": round(time.perf_counter() - start, 3),
    }
