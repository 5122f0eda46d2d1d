"""One image file -> the PIL image the network should see, whatever the camera or editor wrote.

Torch-free. `convert("RGB")` alone gets several files wrong: it ignores EXIF orientation
(a phone's portrait photo arrives on its side), clips 16-bit greyscale to 8 bits instead
of scaling it (a 16-bit photo arrives nearly white), and warns on palette images with
transparency. CMYK JPEGs (Adobe's inverted ones too) are converted by Pillow's own rules.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# Pillow's modes for 16-bit greyscale (PNG, TIFF); "I" is 32-bit but holds 16-bit PNGs
# in older Pillows, so its values are read as 0..65535 too.
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def open_image(path: str | Path, mode: str, draft_size: int | None = None) -> Image.Image:
    """The file as a loaded `mode` ("RGB" or "L") image, oriented as its EXIF says.

    `draft_size`: the shorter side the image will be resized to; a JPEG then decodes at
    the smallest DCT scale (1/2, 1/4, 1/8) that still keeps both sides at least that big.
    """
    with Image.open(path) as img:
        if draft_size is not None and img.format == "JPEG":
            img.draft(img.mode, (draft_size, draft_size))  # both sides stay >= it
        img.load()
        ImageOps.exif_transpose(img, in_place=True)  # not in place, it copies every image
        return in_mode(img, mode)


def in_mode(img: Image.Image, mode: str) -> Image.Image:
    """`img` in `mode`, with 16-bit values scaled (not clipped) to 8 bits."""
    if img.mode in _SIXTEEN_BIT:
        values = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(np.rint(values / 257), 0, 255).astype(np.uint8), "L")
    elif img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # Pillow warns when a palette's transparency is dropped
    return img if img.mode == mode else img.convert(mode)


def readable(path: str | Path) -> bool:
    """Whether the whole file decodes (JPEGs at 1/8 scale: a full pass, far cheaper)."""
    try:
        with Image.open(path) as img:
            img.draft(img.mode, (1, 1))
            img.load()
        return True
    except Exception:  # any failure means the training loop could not read it either
        return False
