"""The PNGs of `eval.py visualize=true`: filters, feature maps, misclassified images,
Grad-CAM overlays and a 2-D embedding. Plain arrays in, one figure file out."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure  # not pyplot: no GUI backend, no global state

from transferlab.runs.plots import _save  # the same dpi and margins as the run plots


def displayable(image: torch.Tensor) -> np.ndarray:
    """A (C, H, W) network input as an (H, W) or (H, W, 3) array in [0, 1].

    Stretched per image rather than un-normalised with the dataset's mean and std: the
    picture stays right wherever and however the input pipeline normalises.
    """
    image = image.detach().float().cpu()
    low, high = image.min(), image.max()
    image = (image - low) / (high - low) if high > low else torch.zeros_like(image)
    array = image.permute(1, 2, 0).numpy()
    return array[..., 0] if array.shape[-1] == 1 else array[..., :3]


def _show(ax, array: np.ndarray, title: str = "", fontsize: int = 7) -> None:
    ax.imshow(array, cmap="gray" if array.ndim == 2 else None, interpolation="nearest")
    ax.set_title(title, fontsize=fontsize)
    ax.axis("off")


def _grid(n: int, columns: int, cell: float = 1.3, extra_height: float = 0.6):
    rows = max(1, -(-n // columns))
    columns = max(1, min(columns, n))
    fig = Figure(figsize=(cell * columns, cell * rows + extra_height))
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False).ravel())
    for ax in axes[n:]:
        ax.axis("off")
    return fig, axes


def save_filters(weight: torch.Tensor, layer: str, path: Path, limit: int = 64) -> None:
    """The first conv layer's kernels: RGB when it reads 3 channels, grey otherwise."""
    out, chans, kh, kw = weight.shape
    fig, axes = _grid(min(out, limit), columns=8, cell=0.9)
    for ax, kernel in zip(axes, weight[:limit], strict=False):
        # the mean over input channels when there are neither 1 nor 3
        kernel = kernel if chans in (1, 3) else kernel.mean(0, keepdim=True)
        _show(ax, displayable(kernel))
    shown = f", first {limit} shown" if out > limit else ""
    fig.suptitle(
        f"first conv layer {layer}: {out} filters {kh}x{kw}, {chans} input channel(s){shown}",
        fontsize=9,
    )
    _save(fig, path)


def save_feature_maps(
    images: torch.Tensor, maps: torch.Tensor, layer: str, path: Path, channels: int = 8
) -> None:
    """Per image (row): the input, then the `channels` maps strongest on these images."""
    strongest = maps.mean(dim=(0, 2, 3)).argsort(descending=True)[:channels].tolist()
    columns = 1 + len(strongest)
    fig = Figure(figsize=(1.2 * columns, 1.25 * len(images) + 0.6))
    axes = fig.subplots(len(images), columns, squeeze=False)
    for row, (image, fmap) in enumerate(zip(images, maps, strict=True)):
        _show(axes[row, 0], displayable(image), "input" if row == 0 else "")
        for col, channel in enumerate(strongest, start=1):
            array = fmap[channel].float().cpu().numpy()
            axes[row, col].imshow(array, cmap="viridis", interpolation="nearest")
            axes[row, col].set_title(f"ch {channel}" if row == 0 else "", fontsize=7)
            axes[row, col].axis("off")
    _, c, h, w = maps.shape
    fig.suptitle(
        f"feature maps of {layer} ({c} channels, {h}x{w}): the {len(strongest)} most active",
        fontsize=9,
    )
    _save(fig, path)


def save_misclassified(
    images: Sequence[torch.Tensor], captions: Sequence[str], title: str, path: Path
) -> None:
    """A grid of images, each captioned with its true and predicted class."""
    fig, axes = _grid(max(1, len(images)), columns=8, cell=1.45)
    if not images:
        axes[0].text(0.5, 0.5, "none", ha="center", va="center")
    for ax, image, caption in zip(axes, images, captions, strict=False):
        _show(ax, displayable(image), caption, fontsize=6)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def save_gradcam(
    images: Sequence[torch.Tensor],
    cams: Sequence[tuple[np.ndarray, np.ndarray]],
    captions: Sequence[tuple[str, str]],
    layer: str,
    path: Path,
) -> None:
    """Per row: the image, where the predicted class's evidence lies, where the true one's."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    fig = Figure(figsize=(5.4, 1.8 * len(images) + 0.6))
    axes = fig.subplots(len(images), 3, squeeze=False)
    for row, (image, pair, caption_pair) in enumerate(zip(images, cams, captions, strict=True)):
        rgb = displayable(image)
        rgb = np.repeat(rgb[..., None], 3, axis=-1) if rgb.ndim == 2 else rgb
        _show(axes[row, 0], rgb, "image")
        for col, (cam, caption) in enumerate(zip(pair, caption_pair, strict=True), start=1):
            overlay = show_cam_on_image(rgb.astype(np.float32), cam, use_rgb=True)
            _show(axes[row, col], overlay, caption)
    fig.suptitle(f"Grad-CAM at {layer}: misclassified test images", fontsize=9)
    _save(fig, path)


def save_embedding(
    points: np.ndarray,
    labels: np.ndarray,
    wrong: np.ndarray,
    classes: Sequence[str],
    title: str,
    path: Path,
) -> None:
    """Points coloured by true class; misclassified ones also get a black cross."""
    fig = Figure(figsize=(7.5, 6))
    ax = fig.subplots()
    cmap = "tab10" if len(classes) <= 10 else "tab20"
    scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap=cmap, s=10, alpha=0.8)
    scatter.set_clim(-0.5, len(classes) - 0.5)
    if wrong.any():
        ax.scatter(*points[wrong].T, marker="x", c="black", s=16, linewidths=0.8)
    if len(classes) <= 20:
        handles = [
            ax.scatter([], [], color=scatter.cmap(scatter.norm(i)), s=18, label=str(name))
            for i, name in enumerate(classes)
        ]
        handles.append(ax.scatter([], [], marker="x", c="black", s=16, label="misclassified"))
        ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    else:
        fig.colorbar(scatter, ax=ax, label="class index")
    ax.set(title=title, xticks=[], yticks=[])
    _save(fig, path)
