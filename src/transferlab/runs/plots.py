"""PNG plots: each run's curves and test confusion matrix, and the comparison's overlays."""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import CSVLogger
from matplotlib.figure import Figure  # not pyplot: no GUI backend, no global state
from matplotlib.ticker import MaxNLocator
from torchmetrics.classification import MulticlassConfusionMatrix

CURVES = {"accuracy": ("train/acc", "val/acc"), "loss": ("train/loss", "val/loss")}

# One curve: its label and (epoch, value) points.
Series = tuple[str, Sequence[tuple[float, float]]]


class RunPlots(Callback):
    """Saves plots/accuracy.png, plots/loss.png and plots/lr.png after fitting, and after
    testing plots/confusion_matrix.png with its counts in plots/confusion_matrix.csv and
    each class's precision, recall, F1 and support in plots/per_class.csv."""

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.history: list[dict[str, float]] = []
        self._hook = None
        self._confusion: MulticlassConfusionMatrix | None = None

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        metrics = trainer.callback_metrics
        keys = [k for pair in CURVES.values() for k in pair if k in metrics]
        epoch = trainer.current_epoch + 1  # counted from 1 on the plots
        self.history.append({"epoch": epoch, **{k: float(metrics[k]) for k in keys}})

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not (trainer.is_global_zero and self.history):
            return
        for name, keys in CURVES.items():
            series = [
                (key, [(row["epoch"], row[key]) for row in self.history if key in row])
                for key in keys
            ]
            save_lines(series, self.dirpath / f"{name}.png", title=name, ylabel=name)
        csv_logger = next((lg for lg in trainer.loggers if isinstance(lg, CSVLogger)), None)
        if csv_logger is not None:
            csv_logger.save()  # rows still buffered would be missing from the curve
            save_lr_curve(Path(csv_logger.log_dir) / "metrics.csv", self.dirpath / "lr.png")

    def on_test_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        criterion = getattr(pl_module, "criterion", None)
        n = pl_module.hparams.get("num_classes")
        if not isinstance(criterion, torch.nn.Module) or not n:
            return
        self._confusion = MulticlassConfusionMatrix(n).to(pl_module.device)
        # The loss sees every test batch's logits and targets, whatever the batch holds.
        self._hook = criterion.register_forward_hook(self._count)

    def _count(self, module, inputs, output) -> None:
        self._confusion.update(inputs[0].detach(), inputs[1].detach())

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._hook is None:
            return
        self._hook.remove()
        self._hook = None
        confusion = self._confusion.compute().cpu()  # summed over DDP processes
        if trainer.is_global_zero:
            classes = pl_module.hparams.get("classes") or [str(i) for i in range(len(confusion))]
            save_confusion(confusion, [str(c) for c in classes], self.dirpath)
            save_per_class(confusion, [str(c) for c in classes], self.dirpath / "per_class.csv")


def lr_series(metrics_csv: Path) -> list[Series]:
    """(step, lr) points of every parameter group LearningRateMonitor logged.

    Each group's no-decay twin (norms and biases) shares its lr, so it is left out.
    """
    if not metrics_csv.is_file():
        return []
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    keys = [
        k
        for k in (rows[0] if rows else {})
        if k.startswith("lr-") and not k.endswith(("-momentum", "-weight_decay", "/no_decay"))
    ]
    return [(k, [(float(r["step"]), float(r[k])) for r in rows if r.get(k)]) for k in keys]


def save_lr_curve(metrics_csv: Path, path: Path) -> None:
    """plots/lr.png: the learning rate of each parameter group against optimizer steps."""
    series = lr_series(metrics_csv)
    if any(points for _, points in series):
        save_lines(series, path, title="learning rate", ylabel="lr", xlabel="step")


def save_lr_find(
    lrs: Sequence[float], losses: Sequence[float], suggestion: float | None, dirpath: Path
) -> None:
    """plots/lr_find.png: the range test's loss against lr (log scale), suggestion marked."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    ax.plot(lrs, losses, label="train loss (smoothed)")
    if suggestion is not None:
        label = f"suggestion {suggestion:.3g}"
        ax.axvline(suggestion, color="tab:red", linestyle="--", label=label)
    ax.set(title="learning-rate finder", xlabel="lr", ylabel="loss", xscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, dirpath / "lr_find.png")


def save_lines(
    series: Sequence[Series], path: Path, title: str, ylabel: str, xlabel: str = "epoch"
) -> None:
    """One figure with a line per series against epochs (or `xlabel`); the legend names each."""
    fig = Figure(figsize=(7, 4.5))
    ax = fig.subplots()
    for label, points in series:
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", markersize=3, label=label)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if len(series) > 8:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        ax.legend(fontsize=8)
    _save(fig, path)


def save_bars(values: Mapping[str, float], path: Path, title: str, xlabel: str) -> None:
    """Horizontal bars, best at the top, each labelled with its value."""
    labels, heights = list(values), list(values.values())
    fig = Figure(figsize=(7, 1.2 + 0.4 * len(labels)))
    ax = fig.subplots()
    bars = ax.barh(range(len(labels)), heights, color="tab:blue")
    ax.bar_label(bars, fmt="%.4f", padding=3, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel, xlim=(0, max([1.0, *heights]) * 1.12))
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def save_per_class(confusion: torch.Tensor, classes: list[str], path: Path) -> None:
    """Per class name (rows = true class): test precision, recall, F1 and support, as CSV.

    A class never predicted has precision 0 (sklearn's zero_division=0), as torchmetrics
    counts it in macro-F1.
    """
    confusion = confusion.double()
    hits, predicted, support = confusion.diag(), confusion.sum(0), confusion.sum(1)
    precision = hits / predicted.clamp(min=1)
    recall = hits / support.clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-12)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["class", "precision", "recall", "f1", "support"])
        for row in zip(classes, precision, recall, f1, support.long(), strict=True):
            writer.writerow([row[0], *(f"{float(v):.4f}" for v in row[1:4]), int(row[4])])


def save_confusion(confusion: torch.Tensor, classes: list[str], dirpath: Path) -> None:
    """The test confusion matrix (rows = true class) as PNG and as CSV counts."""
    dirpath.mkdir(parents=True, exist_ok=True)
    with open(dirpath / "confusion_matrix.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["true \\ predicted", *classes])
        writer.writerows([c, *row] for c, row in zip(classes, confusion.tolist(), strict=True))
    n = len(classes)
    accuracy = confusion.diag().sum().item() / max(1, confusion.sum().item())
    fig = Figure(figsize=(min(12, 2 + 0.5 * n), min(11, 1.5 + 0.5 * n)))
    ax = fig.subplots()
    image = ax.imshow(confusion, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046)
    if n <= 30:
        ax.set_xticks(range(n), classes, rotation=90 if n > 10 else 0, fontsize=8)
        ax.set_yticks(range(n), classes, fontsize=8)
    if n <= 20:
        high = confusion.max().item() / 2
        for (i, j), count in zip(
            torch.cartesian_prod(torch.arange(n), torch.arange(n)).tolist(),
            confusion.flatten().tolist(),
            strict=True,
        ):
            color = "white" if count > high else "black"
            ax.text(j, i, count, ha="center", va="center", fontsize=7, color=color)
    ax.set(
        title=f"test confusion matrix (accuracy {accuracy:.4f})", xlabel="predicted", ylabel="true"
    )
    _save(fig, dirpath / "confusion_matrix.png")


def _save(fig: Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120, bbox_inches="tight")
