"""What a study runs and what it costs: cells, settings, each run's steps, time estimates.

A cell is one recipe (arm x optimizer) at one training-set size; it runs once per seed.
Budgets are optimizer steps, not epochs: every run trains at least `study.min_steps` steps
(or until early stopping on validation says it converged), so small sizes run many epochs.
budget.py shrinks the settings until the estimate fits. Torch-free: the numbers come from
the probe (probe.py) and the split sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from transferlab.arm_kinds import ArmKind

# A validation or test batch (forward only) against a training batch (forward + backward):
# measured on 2 CPU cores, Lite0 at 32 px and the CNN at 28 px on MNIST's 10,000 val and
# test images took about half a training batch each (a third had priced 100-image runs at
# half their time).
EVAL_SHARE = 1 / 2
# Validations a run that min_steps stretched over many epochs gets (one every few epochs):
# enough for runs/convergence.py's last-quarter rule and early stopping, without paying a
# full validation pass for every 2-batch epoch of a 100-image run.
VALIDATIONS = 10
# With cross-validation (study.folds), each lr of the grid is tried on this many folds and
# kept on their mean: one fold of a small set is as noisy as the validation split it replaces.
LR_FOLDS = 3


@dataclass(frozen=True)
class Arm:
    name: str
    label: str
    kind: ArmKind  # its row of arm_kinds.KINDS, as its conf/arm YAML declares
    own_size: int | None = None  # the side it reads as configured (None: left to the network)
    family: str = "scratch"  # its row of arm_kinds.FAMILIES, as its YAML declares
    probe: tuple[str, ...] = ()  # overrides its timed probe adds (modes.Mode.probe_at_end)

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
    min_steps: int = 0  # every trained run: at least this many optimizer steps
    optimizers_dropped: tuple[str, ...] = ()  # cut to fit the budget
    arms_dropped: tuple[str, ...] = ()
    # study.lr=grid: each optimizer's grid narrowed to its middle value, to fit the budget
    one_lr: bool = False
    # k of a k-fold cross-validation on the training images (cv_folds): run with seed s
    # validates on fold s; None: the validation split picks
    folds: int | None = None

    def seeds_at(self, size: int | None) -> int:
        return 1 if size in self.few_seed_sizes else self.seeds

    def lr_seeds_at(self, size: int | None) -> int:
        """Seeds of the first phase, where the lr grid is tried: one, or LR_FOLDS folds."""
        return min(LR_FOLDS, self.seeds_at(size)) if self.folds else 1


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


def cv_folds(spec, counts: Counts) -> int | None:
    """k when lr and winner are picked by k-fold cross-validation on the training images:
    `study.folds` is set and the validation split holds fewer than `study.cv_below` images
    (picking among recipes a few points apart on 15 images is picking noise)."""
    k = spec.get("folds")
    if not k or counts.val >= int(spec.get("cv_below") or 0):
        return None
    return int(k)


def cells(arms: list[Arm], optimizers: list[str], sizes: tuple[int | None, ...]) -> list[Cell]:
    out = []
    for size in sizes:
        for arm in arms:
            opts = optimizers if arm.kind.needs_optimizer else [None]
            out.extend(Cell(arm, opt, size) for opt in opts)
    return out


def planned(arms: list[Arm], optimizers: list[str], settings: Settings) -> list[Cell]:
    """The cells the settings keep: the arms and optimizers the budget did not drop."""
    return cells(
        [a for a in arms if a.name not in settings.arms_dropped],
        [o for o in optimizers if o not in settings.optimizers_dropped],
        settings.sizes,
    )


def train_images(cell: Cell, settings: Settings, counts: Counts) -> int:
    """Images a run trains on: with cross-validation, the cell's images less its fold."""
    n = _images(cell, settings, counts)
    return n - math.ceil(n / settings.folds) if settings.folds else n


def val_images(cell: Cell, settings: Settings, counts: Counts) -> int:
    """Images a run validates on: the validation split, or its fold of the cell's images."""
    if not settings.folds:
        return counts.val
    return math.ceil(_images(cell, settings, counts) / settings.folds)


def _images(cell: Cell, settings: Settings, counts: Counts) -> int:
    limit = cell.size if cell.size is not None else settings.train_cut
    return counts.train if limit is None else min(limit, counts.train)


@dataclass(frozen=True)
class Schedule:
    """How a cell's runs train: epochs, validation every n epochs, optimizer steps."""

    epochs: int
    val_every: int
    steps: int


def schedule(cell: Cell, settings: Settings, counts: Counts) -> Schedule:
    """At least min_steps optimizer steps (small sizes: more epochs), about VALIDATIONS
    validations when min_steps stretched the run; a classical head takes no steps."""
    per_epoch = math.ceil(train_images(cell, settings, counts) / max(counts.batch_size, 1))
    if not cell.arm.kind.needs_optimizer:
        return Schedule(settings.epochs, 1, 0)
    epochs = max(settings.epochs, math.ceil(settings.min_steps / per_epoch))
    every = 1 if epochs == settings.epochs else max(1, epochs // VALIDATIONS)
    return Schedule(epochs, every, epochs * per_epoch)


def job_seconds(
    cell: Cell, cost: Cost, settings: Settings, counts: Counts, lr_batches: int = 0
) -> float:
    """One run of a cell: overhead, then its schedule's training and validations, the test."""
    n_train = train_images(cell, settings, counts)
    batches = math.ceil
    batch_s, per_image = cost.at(cell.arm.size_at(settings.image_size))
    bs = counts.batch_size
    # Frozen-feature arms pay one feature pass over every image (the probe timed one).
    n_val = val_images(cell, settings, counts)
    features = per_image * (n_train + n_val + counts.test)
    if not cell.arm.kind.needs_optimizer:  # scikit-learn fits the head once: no epochs
        return cost.job_s + features
    plan = schedule(cell, settings, counts)
    validations = math.ceil(plan.epochs / plan.val_every)
    evals = EVAL_SHARE * batches(n_val / bs) * validations
    test = EVAL_SHARE * batches(counts.test / bs)
    steps = plan.epochs * batches(n_train / bs) + evals + test + lr_batches
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
    """Seconds for the whole grid: every cell x its seeds (x the lr grid at the first seeds),
    plus each process's start and each arm's warm-up in the processes it runs in."""
    total = process_s * processes
    # A cell runs in one process at its first seed and one for the rest (an upper bound:
    # cells sharing a process share the warm-up).
    total += sum(2 * costs[cell.arm.name].warmup_s for cell in plan_cells)
    for cell in plan_cells:
        runs = settings.seeds_at(cell.size)
        if cell.arm.kind.needs_optimizer:
            runs += (grid - 1) * settings.lr_seeds_at(cell.size)  # the grid's other lrs
        lr = lr_batches if cell.arm.kind.needs_optimizer else 0
        total += runs * job_seconds(cell, costs[cell.arm.name], settings, counts, lr)
    return total
