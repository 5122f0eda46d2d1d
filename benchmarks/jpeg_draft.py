"""What decoding JPEGs at reduced scale (data.jpeg_draft) does to accuracy, on real images.

    python benchmarks/jpeg_draft.py [--per-class 100] [--size 64] [--dir /tmp/jpeg_draft]

Two folders of JPEGs with train/, val/ and test/ splits: real MNIST digits (the offline
copy data=mnist reads) upscaled to 256 px, and crops of the skimage.data photos (one class
per photo, 10-30% of its area, 256-512 px on the shorter side). On each, the real command
line trains a logistic-regression head on frozen EfficientNet-Lite0 features at `--size`
px, once with data.jpeg_draft=true (JPEGs decoded at 1/2, 1/4 or 1/8 scale) and once
false: test accuracy and wall time of each, and the difference.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as photos

from transferlab.data.packaged import Mnist

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina", "cat")
SPLITS = {"train": 0, "val": 1, "test": 2}


def write_mnist(root: Path, per_class: int) -> None:
    """Real MNIST digits as 256 px JPEGs: `per_class` per class in train, half in val, test."""
    cache = Path(os.environ.get("TRANSFERLAB_CACHE", Path.home() / ".cache/transferlab"))
    splits = Mnist(root=root / "raw", cache_dir=cache / "datasets").splits(seed=0)
    for split, dataset in zip(SPLITS, splits, strict=True):
        want = per_class if split == "train" else per_class // 2
        counts = dict.fromkeys(range(10), 0)
        for i in range(len(dataset)):
            image, label = dataset[i]
            if counts[label] >= want:
                if min(counts.values()) >= want:
                    break
                continue
            counts[label] += 1
            folder = root / split / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            pixels = image.reshape(28, 28).numpy() if hasattr(image, "numpy") else image
            big = Image.fromarray(np.asarray(pixels, dtype=np.uint8)).resize((256, 256), 3)
            big.save(folder / f"{i:05d}.jpg", quality=90)


def write_photo_crops(root: Path, per_class: int, seed: int = 0) -> None:
    """Crops of 10-30% of each photo's area, 256-512 px on the shorter side."""
    rng = np.random.default_rng(seed)
    for name in PHOTOS:
        photo = Image.fromarray(getattr(photos, name)()).convert("RGB")
        for split in SPLITS:
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class if split == "train" else per_class // 2):
                side = np.sqrt(rng.uniform(0.1, 0.3))
                w, h = photo.size
                cw, ch = int(w * side), int(h * side)
                x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
                crop = photo.crop((x, y, x + cw, y + ch))
                scale = int(rng.integers(256, 513)) / min(crop.size)
                crop = crop.resize((round(crop.width * scale), round(crop.height * scale)), 3)
                crop.save(folder / f"{i:05d}.jpg", quality=90)


def run(folder: Path, size: int, draft: bool, work: Path) -> tuple[float, float]:
    """Test accuracy and wall time of one feature-extract run."""
    overrides = [
        "data=image_folder",
        f"data.source.root={folder}",
        f"data.image_size={size}",
        f"data.jpeg_draft={str(draft).lower()}",
        "mode=feature_extract",
        "head=logreg",
        "features.cache=off",
        "extras.print_config=false",
        f"task_name=draft_{folder.name}_{draft}",
    ]
    env = {**os.environ, "PROJECT_ROOT": str(work)}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "train.py"), *overrides],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    (summary,) = (work / "logs" / f"draft_{folder.name}_{draft}" / "runs").glob("*/summary.json")
    return json.loads(summary.read_text())["metrics"]["test/acc"], wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=100, help="training JPEGs per class")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    work = args.dir or Path(tempfile.mkdtemp(prefix="jpeg_draft_"))
    for name, write in (("mnist_jpeg", write_mnist), ("photo_crops", write_photo_crops)):
        folder = work / name
        if not folder.is_dir():
            write(folder, args.per_class)
        results = {draft: run(folder, args.size, draft, work) for draft in (True, False)}
        (on, on_s), (off, off_s) = results[True], results[False]
        print(
            f"{name} at {args.size} px: test acc draft {on:.4f} ({on_s:.0f} s), full decode "
            f"{off:.4f} ({off_s:.0f} s), difference {on - off:+.4f}"
        )
    if args.dir is None:  # a failed run stops above and keeps its logs
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
