"""mode=partial with the frozen prefix cached vs run on every batch, whole process.

    python benchmarks/partial_cache.py [--epochs 10] [--image-size 64] [--limit N]
                                       [--no-sweep] [--no-half] [--epoch-costs]

On digits with efficientnet_lite0 (its packaged ImageNet weights), runs train.py with
`mode=partial model.unfreeze=1` and `=2` uncached (features.cache=off: the frozen layers
run on every batch of every epoch) and cached (features.cache=auto), then a
`-m model.unfreeze=1,2,3` sweep both ways, and prints each one's process wall time, the
ratio, and the test accuracies (which must be identical). `--no-half` skips the
features.dtype=float16 run that measures what the half-precision store costs in accuracy.
Last, the memory of one image's stored activations at each cut, at 64 and 224 px. Early
stopping is off so every run trains the same number of epochs. `--limit` cuts each split
to N images for a quick check on a busy machine. `--epoch-costs` prints only what caching
can buy per epoch at `--image-size` (one process: the whole network's train step and eval
pass against the cached tail's, for unfreeze=1, 2 and 3), in a minute or two.
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


def _lite0(size: int, unfreeze: int):
    """Lite0 with its ImageNet weights, the last `unfreeze` groups trainable, and its cut."""
    from transferlab.features.prefix import find_cut
    from transferlab.finetune.freeze import eval_frozen_modules, set_trainable
    from transferlab.models.backbones import timm_classifier

    net = timm_classifier(
        name="efficientnet_lite0",
        num_classes=10,
        in_chans=3,
        image_size=size,
        head={},
        pretrained=True,
        weights=None,
    )
    set_trainable(net, unfreeze)
    eval_frozen_modules(net.train())
    return net, find_cut(net.backbone)[0]


def _seconds(step, repeats: int = 6) -> float:
    import time

    step(), step()  # warm-up: the first calls allocate
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def _step_costs(size: int, unfreeze: int) -> tuple[float, float, float, float]:
    """Seconds per batch of 32: (train whole, train tail, eval whole, eval tail)."""
    import torch

    torch.manual_seed(0)
    net, cut = _lite0(size, unfreeze)
    images, labels = torch.randn(32, 3, size, size), torch.randint(0, 10, (32,))
    with torch.inference_mode():
        stored = cut.part()(images).clone()
    opt = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], 1e-3)
    loss = torch.nn.CrossEntropyLoss()
    whole, tail = (lambda: net(images)), (lambda: net.head(cut.tail(stored)))

    def train(forward) -> float:
        def step():
            opt.zero_grad()
            loss(forward(), labels).backward()
            opt.step()

        return _seconds(step)

    def evaluate(forward) -> float:
        def step():
            with torch.inference_mode():
                forward()

        return _seconds(step)

    return train(whole), train(tail), evaluate(whole), evaluate(tail)


def epoch_costs(size: int, train_images: int = 1257, val_images: int = 270) -> None:
    """Per epoch, the whole network's train steps and eval passes against the cached tail's,
    timed in this process (batch 32, Adam): what caching can buy before any start-up."""
    print(f"Per epoch at {size} px ({train_images:,} train, {val_images} val images, batch 32):")
    batches, val_batches = train_images / 32, val_images / 32
    totals = [0.0, 0.0]
    for k in (1, 2, 3):
        train_whole, train_tail, eval_whole, eval_tail = _step_costs(size, k)
        whole = batches * train_whole + val_batches * eval_whole
        tail = batches * train_tail + val_batches * eval_tail
        totals = [totals[0] + whole, totals[1] + tail]
        print(
            f"  unfreeze={k}: {whole:6.1f} s uncached, {tail:6.1f} s cached ({whole / tail:.2f}x)"
        )
    print(
        f"  a -m model.unfreeze=1,2,3 sweep's epochs: {totals[0] / totals[1]:.2f}x at most, "
        "before start-up and the prefix pass"
    )


def activation_memory() -> None:
    """Bytes of one image's stored activations at each cut of Lite0, 64 and 224 px."""
    import torch

    print("Stored activations per image (float32; float16 is half):")
    for size in (64, 224):
        for k in (1, 2, 3):
            _, cut = _lite0(size, k)
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
    parser.add_argument(
        "--epoch-costs",
        action="store_true",
        help="only the per-epoch train+val cost, whole network vs cached tail, unfreeze=1,2,3",
    )
    args = parser.parse_args()
    if args.epoch_costs:
        epoch_costs(args.image_size)
        return
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
