"""predict's images/s against a plain PyTorch loop over the same files (goal: >= 0.9x).

    python benchmarks/predict.py --ckpt <run>/checkpoints/best.ckpt [--images 512] [--pairs 3]

Writes `--images` JPEGs of varied sizes to a temporary folder, then alternates the two
paths `--pairs` times, each from the same loaded checkpoint: transferlab's (`inference.
predict.predict`: workers decode and resize, top-k rows into predictions.csv) and a plain
loop (a DataLoader with the same workers and batch size doing PIL open, torchvision's
Resize, CenterCrop and Normalize per image, the network, softmax, top-k, the same CSV).
Prints each pair's images/s and the median ratio transferlab / plain.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from transferlab.data.transforms import INTERPOLATIONS  # noqa: E402
from transferlab.inference.inputs import list_inputs  # noqa: E402
from transferlab.inference.predict import predict, workers  # noqa: E402
from transferlab.module import load_run  # noqa: E402


class PlainFiles(Dataset):
    def __init__(self, files, pre) -> None:
        self.files = files
        mode = INTERPOLATIONS[pre.interpolation]
        self.transform = v2.Compose(
            [
                v2.ToImage(),
                v2.Resize(pre.image_size, interpolation=mode, antialias=True),
                v2.CenterCrop(pre.image_size),
                v2.ToDtype(torch.float32, scale=True),
                v2.Normalize(pre.mean, pre.std),
            ]
        )

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as img:
            return self.transform(img.convert("RGB"))


@torch.inference_mode()
def plain_loop(net, files, pre, classes, batch_size, num_workers, out: Path) -> None:
    loader = DataLoader(PlainFiles(files, pre), batch_size=batch_size, num_workers=num_workers)
    with open(out, "w", newline="") as f:
        writer = csv.writer(f)
        done = 0
        for x in loader:
            p, idx = net(x).softmax(dim=1).topk(min(5, len(classes)), dim=1)
            rows = zip(files[done : done + len(x)], p.tolist(), idx.tolist(), strict=True)
            for path, pk, ik in rows:
                writer.writerow([str(path), classes[ik[0]], *pk])
            done += len(x)


def write_images(folder: Path, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for i in range(n):
        h, w = rng.integers(96, 320, size=2)
        pixels = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i:05d}.jpg", quality=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt", required=True)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--num-workers", default="auto")
    args = parser.parse_args()
    module = load_run(args.ckpt).eval()
    pre, classes = module.preprocess, list(module.hparams["classes"])
    n_workers = workers(args.num_workers)
    opts = {"top_k": 5, "batch_size": args.batch_size, "num_workers": n_workers}
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "images", Path(tmp) / "out"
        folder.mkdir()
        out.mkdir()
        write_images(folder, args.images)
        inputs = list_inputs(str(folder))
        print(f"{args.images} JPEGs (96-320 px) at {pre.image_size} px, batch {args.batch_size}, "
              f"{n_workers} workers, {torch.get_num_threads()} threads")  # fmt: skip
        ratios = []
        for pair in range(args.pairs):
            timings = {}
            for name in ("transferlab", "plain") if pair % 2 == 0 else ("plain", "transferlab"):
                start = time.perf_counter()
                if name == "transferlab":
                    predict(module, inputs, opts, out)
                else:
                    plain_loop(module.net, inputs.images, pre, classes, args.batch_size, n_workers,
                               out / "plain.csv")  # fmt: skip
                timings[name] = args.images / (time.perf_counter() - start)
            ratios.append(timings["transferlab"] / timings["plain"])
            ours, plain = timings["transferlab"], timings["plain"]
            print(f"pair {pair}: transferlab {ours:.1f} images/s, "
                  f"plain loop {plain:.1f} images/s, ratio {ratios[-1]:.3f}")  # fmt: skip
        print(f"median ratio transferlab / plain over {args.pairs} pairs: "
              f"{statistics.median(ratios):.3f} (goal >= 0.9)")  # fmt: skip


if __name__ == "__main__":
    main()
