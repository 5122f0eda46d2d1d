"""mode=partial with the frozen prefix cached vs run on every batch, whole process.

    python benchmarks/partial_cache.py [--epochs 10] [--image-size 64] [--limit N]
                                       [--no-sweep] [--no-half]

On digits with efficientnet_lite0 (its packaged ImageNet weights), runs train.py with
`mode=partial model.unfreeze=1` and `=2` uncached (features.cache=off: the frozen layers
run on every batch of every epoch) and cached (features.cache=auto), then a
`-m model.unfreeze=1,2,3` sweep both ways, and prints each one's process wall time, the
ratio, and the test accuracies (which must be identical). `--no-half` skips the
features.dtype=float16 run that measures what the half-precision store costs in accuracy.
Last, the memory of one image's stored activations at each cut, at 64 and 224 px. Early
stopping is off so every run trains the same number of epochs. `--limit` cuts each split
to N images for a quick check on a busy machine.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from feature_extract import train as run_train_py  # this folder is on sys.path

ROOT = Path(__file__).resolve().parents[1]
COMMON = [
    "mode=partial",
    "model=efficientnet_lite0",
    "data=digits",
    "callbacks.early_stopping=null",
    "callbacks.rich_progress_bar=null",
    "extras.print_config=false",
]


def train(root: Path, *overrides: str) -> tuple[float, list[float]]:
    """Run train.py with logs under a fresh folder of `root`: (process wall time, test/acc of
    each run or sweep job in order)."""
    elapsed = run_train_py(root, *overrides)
    summaries = sorted((root / "logs").glob("*/runs/*/summary.json")) + sorted(
        (root / "logs").glob("*/multiruns/*/*/summary.json")
    )
    found = [json.loads(p.read_text()) for p in summaries]
    if any(s.get("status") != "completed" for s in found):
        sys.exit(f"train.py {' '.join(overrides)}: a job failed (see {root / 'logs'})")
    return elapsed, [s["metrics"].get("test/acc", float("nan")) for s in found]


def timed(label: str, *overrides: str) -> tuple[float, list[float]]:
    root = Path(tempfile.mkdtemp(prefix="tl-bench-partial-"))
    elapsed, accs = train(root, *overrides)  # a failed job exits, keeping its logs
    shutil.rmtree(root)
    print(f"  {label:<34}{elapsed:8.1f} s   test/acc {', '.join(f'{a:.4f}' for a in accs)}")
    return elapsed, accs


def compare(label: str, *overrides: str) -> tuple[float, bool]:
    """Uncached then cached: (speed-up, identical test accuracy)."""
    print(label)
    off, off_acc = timed("uncached (features.cache=off)", *overrides, "features.cache=off")
    on, on_acc = timed("cached (features.cache=auto)", *overrides, "features.cache=auto")
    same = off_acc == on_acc
    print(f"  speed-up {off / on:.2f}x; test accuracy {'identical' if same else 'DIFFERS'}")
    return off / on, same


def activation_memory() -> None:
    """Bytes of one image's stored activations at each cut of Lite0, 64 and 224 px."""
    import torch

    from transferlab.features.prefix import find_cut
    from transferlab.finetune.freeze import eval_frozen_modules, set_trainable
    from transferlab.models.backbones import timm_classifier

    print("Stored activations per image (float32; float16 is half):")
    for size in (64, 224):
        net = timm_classifier(
            name="efficientnet_lite0",
            num_classes=10,
            in_chans=3,
            image_size=size,
            head={},
            pretrained=True,
            weights=None,
        )
        for k in (1, 2, 3):
            set_trainable(net, k)
            eval_frozen_modules(net.train())
            cut, _ = find_cut(net.backbone)
            with torch.inference_mode():
                out = cut.part()(torch.zeros(1, 3, size, size))
            shape = "x".join(str(n) for n in out.shape[1:])
            print(
                f"  {size:>3} px unfreeze={k}: after {cut.after:<10} {shape:<12}"
                f"{out.numel() * 4 / 1024:8.1f} KiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=None, help="images per split")
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--no-half", action="store_true")
    args = parser.parse_args()
    common = [*COMMON, f"epochs={args.epochs}", f"data.image_size={args.image_size}"]
    if args.limit:
        common += [f"data.source.limit={args.limit}", f"data.source.eval_limit={args.limit}"]
    print(f"Lite0 mode=partial on digits, {args.epochs} epochs at {args.image_size} px")
    results = {k: compare(f"model.unfreeze={k}", *common, f"model.unfreeze={k}") for k in (1, 2)}
    if not args.no_half:
        print("model.unfreeze=1, features.dtype=float16 (cached)")
        timed("cached float16", *common, "model.unfreeze=1", "features.dtype=float16")
    if not args.no_sweep:
        results["sweep"] = compare("-m model.unfreeze=1,2,3", "-m", *common, "model.unfreeze=1,2,3")
    activation_memory()
    goals = {1: 3.0, 2: 1.0, "sweep": 2.0}
    for name, (ratio, same) in results.items():
        met = ratio >= goals[name] and same
        print(f"goal {name}: {ratio:.2f}x (goal >= {goals[name]}x), {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    main()
