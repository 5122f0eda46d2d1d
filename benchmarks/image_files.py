"""Image files on disk: our loader against torchvision's ImageFolder, and start-up on a big folder.

    python benchmarks/image_files.py [--images 2000] [--sizes 224 64] [--workers auto]
        [--batch 64] [--repeats 3] [--files 100000] [--dir /tmp/image_files_bench]

Throughput: a folder of real-photo JPEGs (skimage.data photos, one class per photo,
random crops and flips at 256-512 px on the shorter side, quality 90) is read one epoch
at a time by (a) our ImageDataModule's loader plus the batch stage that normalises on the
CPU, and (b) torchvision `ImageFolder` + `DataLoader` with the usual recipe (Resize,
CenterCrop, ToTensor, Normalize in the workers), both shuffled, the same batch size and
workers, alternated `--repeats` times: images/s and the median ratio, per size (goals:
>= 1.0x at 224 px, >= 1.5x at 64 px).

Start-up: a folder of `--files` image files (hard links to one small JPEG: listing cost
does not depend on the pixels) in up to 100 classes; the first run builds the file index, the
second reuses it. Printed: both listing times (`ImageFolderSource.train_files`), the old listing
(`sorted(rglob)` + `is_file`, and a stat per file for the feature-cache fingerprint) for
reference, and second/first (goal < 10%); the same for the whole data start-up (listing,
the seeded split and the feature cache's fingerprint). The page cache is warm in both runs
(this script made the files): on a cold disk or network storage the first run costs more.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from skimage import data as photos
from torch.utils.data import DataLoader
from torchvision import datasets
from torchvision import transforms as T

from transferlab.data import ImageDataModule, Preprocess
from transferlab.data.image_folder import ImageFolderSource
from transferlab.features.cache import dataset_fingerprint
from transferlab.image_files import is_image

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina", "cat")
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def write_photo_folder(root: Path, images: int, seed: int = 0) -> None:
    """`images` JPEGs in one class per photo: random crops, flips, 256-512 px shorter side."""
    rng = np.random.default_rng(seed)
    for c, name in enumerate(PHOTOS):
        photo = Image.fromarray(getattr(photos, name)()).convert("RGB")
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(c, images, len(PHOTOS)):
            w, h = photo.size
            side = rng.uniform(0.6, 1.0)
            cw, ch = int(w * side), int(h * side)
            x, y = rng.integers(0, w - cw + 1), rng.integers(0, h - ch + 1)
            crop = photo.crop((x, y, x + cw, y + ch))
            shorter = int(rng.integers(256, 513))
            scale = shorter / min(crop.size)
            crop = crop.resize((round(crop.width * scale), round(crop.height * scale)))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crop.save(root / name / f"{i:06d}.jpg", quality=90)


def ours(root: Path, size: int, batch: int, workers: int) -> float:
    """Images/s of our train loader plus its CPU batch stage (normalised float batches)."""
    pre = Preprocess(image_size=size, channels=3, mean=MEAN, std=STD)
    source = ImageFolderSource(root, val_fraction=0.0, test_fraction=0.0)
    dm = ImageDataModule(source, pre, batch_size=batch, num_workers=workers)
    start, seen = time.perf_counter(), 0
    for images, labels in dm.train_dataloader():
        seen += len(dm.prepare_batch(images, labels, train=False)[0])
    return seen / (time.perf_counter() - start)


def torchvision_folder(root: Path, size: int, batch: int, workers: int) -> float:
    """Images/s of torchvision's ImageFolder + DataLoader, the usual eval recipe."""
    recipe = [T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize(MEAN, STD)]
    start, seen = time.perf_counter(), 0
    folder = datasets.ImageFolder(str(root), transform=T.Compose(recipe))
    loader = DataLoader(folder, batch_size=batch, shuffle=True, num_workers=workers)
    for images, _ in loader:
        seen += len(images)
    return seen / (time.perf_counter() - start)


def throughput(root: Path, sizes: list[int], batch: int, workers: int, repeats: int) -> None:
    print(
        f"\nThroughput: {sum(1 for _ in root.rglob('*.jpg'))} JPEGs, batch {batch}, "
        f"{workers} workers, {repeats} alternated repeats"
    )
    for size in sizes:
        rates: dict[str, list[float]] = {"ours": [], "torchvision": []}
        for _ in range(repeats):
            rates["ours"].append(ours(root, size, batch, workers))
            rates["torchvision"].append(torchvision_folder(root, size, batch, workers))
        ratios = [a / b for a, b in zip(rates["ours"], rates["torchvision"], strict=True)]
        print(
            f"  {size:>3} px: ours {statistics.median(rates['ours']):7.1f} img/s, torchvision "
            f"ImageFolder {statistics.median(rates['torchvision']):7.1f} img/s, "
            f"ratio ours/torchvision {statistics.median(ratios):.2f}x "
            f"(goal >= {1.0 if size >= 224 else 1.5:.1f}x)"
        )


def write_big_folder(root: Path, files: int) -> None:
    """`files` image files in up to 100 class folders (at least 50 files each): hard links
    to one small JPEG per class (file systems cap the links to one file, ext4 at 65,000)."""
    classes = max(2, min(100, files // 50))
    root.mkdir(parents=True)
    seed = Image.fromarray(photos.chelsea()[::16, ::16])
    for c in range(classes):
        (root / f"class_{c:03d}").mkdir()
        seed.save(root / f"seed_{c:03d}.jpg")
    for i in range(files):
        c = i % classes
        os.link(root / f"seed_{c:03d}.jpg", root / f"class_{c:03d}" / f"{i:07d}.jpg")
    for c in range(classes):
        (root / f"seed_{c:03d}.jpg").unlink()


def old_listing(root: Path) -> float:
    """What every run did before the index: sorted rglob + is_file, then a stat per file."""
    start = time.perf_counter()
    found = [
        sorted(p for p in (root / c.name).rglob("*") if is_image(p) and p.is_file())
        for c in sorted(root.iterdir())
    ]
    for files in found:
        for path in files:
            path.stat()
    return time.perf_counter() - start


def startup(root: Path, index_dir: Path) -> None:
    classes = sum(1 for _ in root.iterdir())
    print(f"\nStart-up: {sum(1 for _ in root.rglob('*.jpg')):,} files in {classes} classes")
    listing, whole = [], []
    for _ in ("first", "second"):
        start = time.perf_counter()
        files, _ = ImageFolderSource(root, index_dir=index_dir / "listing").train_files()
        listing.append(time.perf_counter() - start)
    for _ in ("first", "second"):
        start = time.perf_counter()
        train, _, _ = ImageFolderSource(root, index_dir=index_dir / "run").splits(seed=0)
        dataset_fingerprint(train)
        whole.append(time.perf_counter() - start)
    first, second = listing
    print(f"  listing ({len(files):,} images): first {first:.3f} s, second {second:.3f} s")
    print(
        f"  listing, split and feature-cache fingerprint: first {whole[0]:.3f} s, "
        f"second {whole[1]:.3f} s"
    )
    print(f"  old listing (sorted rglob + is_file + a stat per file): {old_listing(root):.3f} s")
    print(
        f"  ratio second/first listing {listing[1] / listing[0]:.3f} (goal < 0.10); "
        f"whole data start-up {whole[1] / whole[0]:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000, help="JPEGs for the throughput")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 64])
    parser.add_argument("--workers", default="auto", help="loader workers, both loaders")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--files", type=int, default=100_000, help="files for the start-up")
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # the main process only normalises; workers do the decoding
    workers = max(1, (os.cpu_count() or 2) - 1) if args.workers == "auto" else int(args.workers)
    work = args.dir or Path(tempfile.mkdtemp(prefix="image_files_bench_"))
    try:
        photo_dir = work / f"photos_{args.images}"
        if not photo_dir.is_dir():
            write_photo_folder(photo_dir, args.images)
        throughput(photo_dir, args.sizes, args.batch, workers, args.repeats)
        big = work / f"files_{args.files}"
        shutil.rmtree(big, ignore_errors=True)
        shutil.rmtree(work / "index", ignore_errors=True)
        write_big_folder(big, args.files)
        startup(big, work / "index")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
