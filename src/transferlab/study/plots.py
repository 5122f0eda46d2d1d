"""The study page's PNGs: test accuracy per recipe and against training images.

The winner's confusion matrix is drawn by the run plots' own `save_confusion`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # not pyplot: no GUI backend, no global state

from transferlab.runs.plots import _save  # the same dpi and margins as the run plots

# A recipe's test accuracy as plotted: label, mean, interval low and high (NaN: one seed).
Point = tuple[str, float, float, float]
# One recipe's curve: (training images, mean, low, high) per size.
Curve = Sequence[tuple[float, float, float, float]]


def save_recipes(points: Sequence[Point], winner: str | None, path: Path) -> None:
    """Horizontal error bars, best validation first; the winner drawn in its own colour."""
    fig = Figure(figsize=(7, 1.4 + 0.42 * len(points)))
    ax = fig.subplots()
    for row, (label, mean, low, high) in enumerate(points):
        if math.isnan(mean):
            continue
        color = "tab:red" if label == winner else "tab:blue"
        err = None if math.isnan(low) else [[100 * (mean - low)], [100 * (high - mean)]]
        ax.errorbar(100 * mean, row, xerr=err, fmt="o", color=color, capsize=4)
        text = f"{100 * mean:.1f}%" + ("" if err else " (1 seed)")
        ax.annotate(
            text,
            (100 * mean, row),
            xytext=(0, 7),
            textcoords="offset points",
            ha="center",
            fontsize=7,
        )
    ax.set_yticks(range(len(points)), [p[0] for p in points], fontsize=8)
    ax.set_ylim(len(points) - 0.5, -0.7)  # best at the top, room for the top label
    ax.set(
        title="test accuracy per recipe (mean and 95% interval over seeds)",
        xlabel="test accuracy (%)",
    )
    ax.margins(x=0.12)  # room for the value labels at either end
    ax.grid(axis="x", alpha=0.3)
    _save(fig, path)


def save_data_efficiency(curves: dict[str, Curve], path: Path) -> None:
    """Test accuracy against training images per recipe: log x, mean line, interval band."""
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.subplots()
    for label, curve in curves.items():
        points = sorted(p for p in curve if not math.isnan(p[1]))
        if not points:
            continue
        xs, means, lows, highs = (np.array(v, dtype=float) for v in zip(*points, strict=True))
        (line,) = ax.plot(xs, 100 * means, marker="o", markersize=4, label=label)
        banded = ~np.isnan(lows)  # a size with one seed has no band
        if banded.sum() >= 2:
            ax.fill_between(
                xs,
                100 * np.where(banded, lows, means),
                100 * np.where(banded, highs, means),
                color=line.get_color(),
                alpha=0.15,
                linewidth=0,
            )
        elif banded.any():
            err = [100 * (means - lows)[banded], 100 * (highs - means)[banded]]
            ax.errorbar(
                xs[banded],
                100 * means[banded],
                yerr=err,
                fmt="none",
                color=line.get_color(),
                capsize=3,
            )
    ax.set_xscale("log")
    tried = sorted({p[0] for curve in curves.values() for p in curve})
    ax.set_xticks(tried, [f"{x:,.0f}" for x in tried], fontsize=8)  # the sizes, not 10^k
    ax.minorticks_off()
    ax.set(
        title="test accuracy against training images (band: 95% interval over seeds)",
        xlabel="training images (log scale)",
        ylabel="test accuracy (%)",
    )
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    _save(fig, path)
