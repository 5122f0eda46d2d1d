"""What a study runs, and how big it can be in its budget: cells, settings, time estimates.

A cell is one recipe (arm x optimizer) at one training-set size; it runs once per seed.
The settings (epochs, image size, training-set cut, seeds) start at the preferred candidates
of `study.*` and shrink, one step at a time, until the estimate from the probe fits.
Torch-free: the numbers come from the probe (probe.py) and the split sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from transferlab.errors import UserError

# The fraction of the budget a plan may fill: the rest absorbs estimate error, because
# finishing more than 15% over is a bug and the runner stops at that point.
FILL = 0.85
# A validation or test batch (forward only) against a training batch (forward + backward):
# measured on 2 CPU cores, Lite0 at 32 px and the CNN at 28 px on MNIST's 10,000 val and
# test images took about half a training batch each (a third had priced 100-image runs at
# half their time).
EVAL_SHARE = 1 / 2


# The kind of an arm whose network starts from random init (mode=scratch: modes.py's word).
RANDOM_INIT = "random_init"


@dataclass(frozen=True)
class Arm:
    name: str
    label: str
    kind: str  # random_init (our CNN) | trained (a pretrained backbone) | classical (SVM...)
    own_size: int | None = None  # the side it reads as configured (None: left to the network)

    def size_at(self, image_size: int | None) -> int | None:
        """The side this arm runs at in a study at `image_size`: never above its own, since
        upscaling costs time and adds no detail (digits stay 8 px for the CNN)."""
        if image_size is None or self.own_size is None:
            return image_size
        return min(image_size, self.own_size)


@dataclass(frozen=True)
class Cost:
    """One arm's probe: seconds per training batch at `image_size`, and per-job overhead."""

    batch_s: float
    job_s: float
    image_size: int | None
    feature_s: float = 0.0  # frozen features: one feature pass over the probed images
    probed_images: int = 1
    warmup_s: float = 0.0  # once per arm and process: its first epoch's or pass's extra
    small: Cost | None = None  # the same arm probed at the smallest candidate image size

    def at(self, image_size: int | None) -> tuple[float, float]:
        """(seconds per training batch, feature-pass seconds per image) at `image_size`.

        Affine in pixel count between the two probed sizes: on a CPU a small image costs
        far more than its share of pixels (Lite0 at 32 px took 0.7x its 64 px time, not
        0.25x), because every layer's fixed cost stays. Outside the probed range the
        nearer probe's numbers are used, never an extrapolation below them.
        """
        per_image = self.feature_s / max(self.probed_images, 1)
        small = self.small
        if not image_size or not self.image_size or small is None or not small.image_size:
            return self.batch_s, per_image
        lo, hi = small.image_size**2, self.image_size**2
        w = min(max((image_size**2 - lo) / (hi - lo), 0.0), 1.0) if hi != lo else 1.0
        small_per_image = small.feature_s / max(small.probed_images, 1)
        return (
            small.batch_s + w * (self.batch_s - small.batch_s),
            small_per_image + w * (per_image - small_per_image),
        )


@dataclass(frozen=True)
class Settings:
    epochs: int
    image_size: int | None
    train_cut: int | None  # sizes=null: training images kept (None: all)
    seeds: int
    sizes: tuple[int | None, ...] = (None,)
    # The largest sizes may run fewer seeds when the budget is short (data-efficiency plots).
    few_seed_sizes: tuple[int, ...] = ()
    cuts: tuple[str, ...] = field(default=(), compare=False)

    def seeds_at(self, size: int | None) -> int:
        return 1 if size in self.few_seed_sizes else self.seeds


@dataclass(frozen=True)
class Counts:
    """Images per split of the data as configured (before the study's cut), and batch size."""

    train: int
    val: int
    test: int
    batch_size: int
    classes: int = 10


@dataclass(frozen=True)
class Cell:
    arm: Arm
    optimizer: str | None  # None: a classical head fits without one
    size: int | None

    @property
    def id(self) -> str:
        parts = [self.arm.name, self.optimizer, None if self.size is None else f"n{self.size}"]
        return "-".join(p for p in parts if p)


def cells(arms: list[Arm], optimizers: list[str], sizes: tuple[int | None, ...]) -> list[Cell]:
    out = []
    for size in sizes:
        for arm in arms:
            opts = [None] if arm.kind == "classical" else optimizers
            out.extend(Cell(arm, opt, size) for opt in opts)
    return out


def train_images(cell: Cell, settings: Settings, counts: Counts) -> int:
    limit = cell.size if cell.size is not None else settings.train_cut
    return counts.train if limit is None else min(limit, counts.train)


def job_seconds(
    cell: Cell, cost: Cost, settings: Settings, counts: Counts, lr_batches: int = 0
) -> float:
    """One run of a cell: overhead, then epochs of training and validation, then the test."""
    n_train = train_images(cell, settings, counts)
    batches = math.ceil
    batch_s, per_image = cost.at(cell.arm.size_at(settings.image_size))
    bs = counts.batch_size
    # Frozen-feature arms pay one feature pass over every image (the probe timed one).
    features = per_image * (n_train + counts.val + counts.test)
    if cell.arm.kind == "classical":  # scikit-learn fits the head once: no epochs
        return cost.job_s + features
    per_epoch = batches(n_train / bs) + EVAL_SHARE * batches(counts.val / bs)
    test = EVAL_SHARE * batches(counts.test / bs)
    steps = settings.epochs * per_epoch + test + lr_batches
    return cost.job_s + features + steps * batch_s


def estimate(
    plan_cells: list[Cell],
    costs: dict[str, Cost],
    settings: Settings,
    counts: Counts,
    process_s: float,
    processes: int,
    lr_batches: int = 0,
    grid: int = 1,
) -> float:
    """Seconds for the whole grid: every cell x its seeds (x the lr grid at the first seed),
    plus each process's start and each arm's warm-up in the processes it runs in."""
    total = process_s * processes
    # A cell runs in one process at its first seed and one for the rest (an upper bound:
    # cells sharing a process share the warm-up).
    total += sum(2 * costs[cell.arm.name].warmup_s for cell in plan_cells)
    for cell in plan_cells:
        runs = settings.seeds_at(cell.size)
        if cell.arm.kind != "classical":
            runs += grid - 1  # the extra lrs tried at the first seed
        lr = lr_batches if cell.arm.kind != "classical" else 0
        total += runs * job_seconds(cell, costs[cell.arm.name], settings, counts, lr)
    return total


def fit(
    candidates: dict,
    budget_s: float,
    seconds,
    counts: Counts,
    sizes: tuple[int | None, ...],
) -> Settings:
    """The preferred settings whose estimate `seconds(settings)` fills at most FILL of the budget.

    Cuts, in order: epochs down to 3, image size, the training set (or, with sizes, fewer
    seeds at the largest size), epochs down to 1, then the largest sizes. What a late cut
    frees may pay for an earlier one again (dropping 50,000 MNIST images leaves room for 3
    seeds at 3,000), so the earlier cuts are then given back while the plan fits; seeds
    grow toward max_seeds with what is left.
    """
    epochs, images = list(candidates["epochs"]), list(candidates["image_sizes"]) or [None]
    cuts = [None, *[c for c in candidates["train_cuts"] if c < counts.train]]
    base = Settings(epochs[0], images[0], None, int(candidates["seeds"]), tuple(sizes))
    target = FILL * budget_s
    steps = _steps(base, epochs, images, cuts)
    settings = base
    while seconds(settings) > target:
        try:
            settings = next(steps)
        except StopIteration:
            raise too_small(candidates["budget_minutes"], seconds(settings), settings) from None
    settings = _given_back(settings, base, epochs, images, cuts, lambda s: seconds(s) <= target)
    while settings.seeds < int(candidates["max_seeds"]) and not settings.few_seed_sizes:
        more = replace(settings, seeds=settings.seeds + 1)
        if seconds(more) > target:
            break
        settings = more
    return replace(settings, cuts=tuple(_described(base, settings, counts)))


def _given_back(s: Settings, base: Settings, epochs: list, images: list, cuts: list, fits):
    """The ladder's cuts undone, most valuable first, each while the plan still fits:
    every seed at more sizes (smallest first), more epochs, larger images, more images."""
    for size in sorted(s.few_seed_sizes):
        more = replace(s, few_seed_sizes=tuple(n for n in s.few_seed_sizes if n != size))
        s = more if fits(more) else s
    tries = [("epochs", e) for e in sorted(e for e in epochs if s.epochs < e <= base.epochs)]
    if s.image_size is not None:
        tries += [("image_size", px) for px in sorted(p for p in images if p > s.image_size)]
    if s.train_cut is not None:  # cuts: None (all) first, then smaller and smaller
        tries += [("train_cut", c) for c in reversed(cuts[: cuts.index(s.train_cut)])]
    for key, value in tries:
        more = replace(s, **{key: value})
        if fits(more):
            s = more
    return s


def _steps(base: Settings, epochs: list[int], images: list, cuts: list):
    s = base
    for e in [e for e in epochs if e >= 3][1:]:
        yield (s := replace(s, epochs=e))
    for size in images[1:]:
        yield (s := replace(s, image_size=size))
    if s.sizes == (None,):
        for c in cuts[1:]:
            yield (s := replace(s, train_cut=c))
    else:
        top = sorted(x for x in s.sizes if x is not None)
        for size in reversed(top[1:]):
            yield (s := replace(s, few_seed_sizes=(*s.few_seed_sizes, size)))
    for e in [e for e in epochs if e < 3 and e < s.epochs]:
        yield (s := replace(s, epochs=e))
    while len(s.sizes) > 1:
        yield (s := replace(s, sizes=s.sizes[:-1]))


def _described(base: Settings, s: Settings, counts: Counts) -> list[str]:
    out = []
    if s.epochs != base.epochs:
        out.append(f"epochs {base.epochs} -> {s.epochs}")
    if s.image_size != base.image_size:
        out.append(f"image size {base.image_size} -> {s.image_size} px (arms reading more)")
    if s.train_cut is not None:
        out.append(f"training set cut to {s.train_cut:,} of {counts.train:,} images")
    if s.few_seed_sizes:
        out.append("1 seed only at " + ", ".join(f"{n:,}" for n in s.few_seed_sizes) + " images")
    if dropped := [n for n in base.sizes if n not in s.sizes]:
        out.append("sizes dropped: " + ", ".join(f"{n:,}" for n in dropped))
    if s.seeds > base.seeds:
        out.append(f"seeds {base.seeds} -> {s.seeds} (room in the budget)")
    return out


def too_small(budget_minutes: float, needed_s: float, s: Settings) -> UserError:
    return UserError(
        f"study.budget_minutes={budget_minutes:g} is too small: even the smallest plan "
        f"({s.epochs} epoch(s), {s.image_size} px, {s.seeds} seeds) needs about "
        f"{needed_s / 60 / FILL:.1f} more minutes here, after the probe. Fix: raise "
        f"study.budget_minutes by {math.ceil(needed_s / 60 / FILL)}, or compare less at once, e.g. "
        "study.optimizers=[adam] or fewer study.arms."
    )
