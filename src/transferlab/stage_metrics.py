"""What each stage (train, val, test) measures: loss, accuracy, top-5 accuracy, balanced
accuracy and macro-F1 (val and test) and calibration error, under the metric names of
shared/DESIGN.md (`val/acc`, `test/balanced_acc`, `test/ece`...)."""

from __future__ import annotations

import torch
from torch import nn
from torchmetrics import MeanMetric, Metric
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassCalibrationError,
    MulticlassF1Score,
)

STAGES = ("train", "val", "test")
MACRO = (("balanced_acc", MulticlassAccuracy), ("macro_f1", MulticlassF1Score))


class StageMetrics(nn.Module):
    """Per-stage torchmetrics, keyed "<stage>_" because nn.Module owns the attribute `train`."""

    def __init__(self, num_classes: int, calibrated: bool) -> None:
        super().__init__()
        self.loss = nn.ModuleDict({f"{s}_": MeanMetric() for s in STAGES})
        self.acc = nn.ModuleDict(
            {f"{s}_": MulticlassAccuracy(num_classes, average="micro") for s in STAGES}
        )
        # top-5 only says something when there are more than five classes.
        self.acc5 = nn.ModuleDict(
            {f"{s}_": MulticlassAccuracy(num_classes, top_k=5, average="micro") for s in STAGES[1:]}
            if num_classes > 5
            else {}
        )
        # Expected calibration error: how far softmax confidence strays from accuracy. Not
        # for head=svm: a softmax of SVM margins is no probability, so its "error" (0.44 at
        # 95% accuracy on digits) would measure the margins' scale, not calibration.
        self.ece = nn.ModuleDict(
            {
                f"{s}_": MulticlassCalibrationError(num_classes, n_bins=15, norm="l1")
                for s in STAGES[1:]
            }
            if calibrated
            else {}
        )
        # Micro accuracy rewards "always the big class"; balanced accuracy and macro-F1 don't.
        self.class_means = nn.ModuleDict(
            {f"{s}_{n}": m(num_classes, average="macro") for s in STAGES[1:] for n, m in MACRO}
        )

    def update(
        self, stage: str, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor
    ) -> dict[str, tuple[Metric, bool]]:
        """Add a batch (hard labels) to the stage's metrics; returns {name: (metric, on the
        progress bar)} for the module to log."""
        key = f"{stage}_"
        # weighted by batch size: the mean over samples, however batches fall across ranks
        self.loss[key](loss, weight=len(y))
        self.acc[key](logits, y)
        logged = {f"{stage}/loss": (self.loss[key], True), f"{stage}/acc": (self.acc[key], True)}
        if key in self.acc5:
            self.acc5[key](logits, y)
            logged[f"{stage}/acc_top5"] = (self.acc5[key], False)
        for name, _ in MACRO if stage != "train" else ():
            self.class_means[key + name](logits, y)
            logged[f"{stage}/{name}"] = (self.class_means[key + name], False)
        if key in self.ece:
            # in float32: half-precision logits (precision=16-mixed) would round the confidences
            self.ece[key](logits.float().softmax(dim=1), y)
            logged[f"{stage}/ece"] = (self.ece[key], False)
        return logged
