"""Fitting a study to its budget: what is cut, in which order, and when it refuses.

The plan starts at the preferred candidates of `study.*` and is cut, one step at a time,
until the estimate from the probe fills at most FILL of the budget. The order, stated in
each report: epochs of the large sizes down to 3 (every run still trains at least
study.min_steps steps, so the small sizes are never starved), then the largest training-set
sizes, then the image size, then epochs down to 1, then an optimizer (the costliest), then
the lr grid to its middle value, then arms: first the costliest of a family that keeps
another (gradual before fine-tune itself), so scratch, frozen features and fine-tuning each
keep a recipe while they can, then whole families, down to two arms. Seeds never go below
study.seeds. What a late cut frees pays for earlier cuts again (dropping SGD alone may
leave room for the whole training set), and seeds grow toward max_seeds with what is left.
When not even two arms fit, it refuses and names the smallest budget that would.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import replace

from transferlab.errors import UserError
from transferlab.study.plan import Counts, Settings

# The fraction of the budget a plan may fill: the rest absorbs estimate error, because
# finishing more than 15% over is a bug and the runner stops at that point.
FILL = 0.85


def fit(
    candidates: dict,
    budget_s: float,
    seconds: Callable[[Settings], float],
    counts: Counts,
    sizes: tuple[int | None, ...],
    families: dict[str, str] | None = None,
    folds: int | None = None,
) -> Settings:
    """The preferred settings whose estimate `seconds(settings)` fills at most FILL of the
    budget (`budget_s`: what is left of study.budget_minutes after the probe). `families`:
    each arm's family (arm_kinds.FAMILIES); an arm not in it is a family of its own.
    `folds`: k of the cross-validation (plan.cv_folds): seed s runs fold s, so at most k."""
    epochs, images = list(candidates["epochs"]), list(candidates["image_sizes"]) or [None]
    cuts = [None, *[c for c in candidates["train_cuts"] if c < counts.train]]
    base = Settings(
        epochs[0],
        images[0],
        None,
        int(candidates["seeds"]),
        tuple(sizes),
        min_steps=int(candidates.get("min_steps") or 0),
        folds=folds,
    )
    most_seeds = int(candidates["max_seeds"])
    most_seeds = min(most_seeds, folds) if folds else most_seeds
    if folds and base.seeds > folds:
        raise UserError(
            f"study.seeds={base.seeds} is more than study.folds={folds}: with cross-validation "
            "each seed's run validates on its own fold. Fix: study.folds="
            f"{base.seeds} (or more), or study.seeds={folds}."
        )
    target = FILL * budget_s
    ladder = _steps(base, epochs, images, cuts)
    settings = base
    while seconds(settings) > target:
        cheaper = next(ladder, None) or _dropped(settings, candidates, seconds, families or {})
        if cheaper is None:
            spent_s = float(candidates["budget_minutes"]) * 60 - budget_s
            raise too_small(candidates, spent_s + seconds(settings) / FILL, settings)
        settings = cheaper
    settings = _given_back(settings, base, epochs, images, cuts, lambda s: seconds(s) <= target)
    while settings.seeds < most_seeds:
        more = replace(settings, seeds=settings.seeds + 1)
        if seconds(more) > target:
            break
        settings = more
    return replace(settings, cuts=tuple(described(base, settings, counts)))


def _steps(base: Settings, epochs: list[int], images: list, cuts: list) -> Iterator[Settings]:
    s = base
    for e in [e for e in epochs if e >= 3][1:]:
        yield (s := replace(s, epochs=e))
    if s.sizes == (None,):
        for c in cuts[1:]:
            yield (s := replace(s, train_cut=c))
    while len(s.sizes) > 1:  # the largest first; the smallest size always stays
        yield (s := replace(s, sizes=s.sizes[:-1]))
    for size in images[1:]:
        yield (s := replace(s, image_size=size))
    for e in [e for e in epochs if e < 3 and e < s.epochs]:
        yield (s := replace(s, epochs=e))


def _dropped(s: Settings, candidates: dict, seconds, families: dict) -> Settings | None:
    """The costliest optimizer dropped (one always stays), else one lr per optimizer, else
    the costliest arm of a family that keeps another, else the costliest arm (two stay)."""
    optimizers = [o for o in candidates["optimizers"] if o not in s.optimizers_dropped]
    if len(optimizers) > 1:
        # reversed: of two that cost the same, the one listed last goes
        tries = [replace(s, optimizers_dropped=(*s.optimizers_dropped, o)) for o in optimizers]
        return min(reversed(tries), key=seconds)
    if not s.one_lr and _has_grid(candidates, optimizers):
        return replace(s, one_lr=True)
    arms = [a for a in candidates["arms"] if a not in s.arms_dropped]
    if len(arms) > 2:
        family = [families.get(a, a) for a in arms]
        kin = [a for a, f in zip(arms, family, strict=True) if family.count(f) > 1]
        tries = [replace(s, arms_dropped=(*s.arms_dropped, a)) for a in kin or arms]
        return min(reversed(tries), key=seconds)
    return None


def _has_grid(candidates: dict, optimizers: list[str]) -> bool:
    """study.lr=grid with more than one lr for an optimizer still planned."""
    grids = candidates.get("lr_grid") or {}
    return candidates.get("lr") == "grid" and any(len(grids.get(o) or ()) > 1 for o in optimizers)


def _given_back(s: Settings, base: Settings, epochs: list, images: list, cuts: list, fits):
    """The ladder's cuts undone, most valuable first, each while the plan still fits:
    dropped arms (the last dropped first: dropping a costlier one may have made room), the
    lr grid, dropped sizes (smallest first), more training images, larger images, more
    epochs."""
    for arm in reversed(s.arms_dropped):
        more = replace(s, arms_dropped=tuple(a for a in s.arms_dropped if a != arm))
        s = more if fits(more) else s
    if s.one_lr and fits(replace(s, one_lr=False)):
        s = replace(s, one_lr=False)
    for size in [n for n in base.sizes if n not in s.sizes]:
        more = replace(s, sizes=tuple(n for n in base.sizes if n in s.sizes or n == size))
        s = more if fits(more) else s
    tries = []
    if s.train_cut is not None:  # cuts: None (all) first, then smaller and smaller
        tries += [("train_cut", c) for c in reversed(cuts[: cuts.index(s.train_cut)])]
    if s.image_size is not None:
        tries += [("image_size", px) for px in sorted(p for p in images if p > s.image_size)]
    tries += [("epochs", e) for e in sorted(e for e in epochs if s.epochs < e <= base.epochs)]
    for key, value in tries:
        more = replace(s, **{key: value})
        if fits(more):
            s = more
    return s


def described(base: Settings, s: Settings, counts: Counts) -> list[str]:
    """What was cut to fit, in words, in the order the cuts are made."""
    out = []
    if s.epochs != base.epochs:
        floor = f" (every run still >= {s.min_steps} steps)" if s.min_steps else ""
        out.append(f"epochs {base.epochs} -> {s.epochs}{floor}")
    if s.train_cut is not None:
        out.append(f"training set cut to {s.train_cut:,} of {counts.train:,} images")
    if dropped := [n for n in base.sizes if n not in s.sizes]:
        out.append("sizes dropped: " + ", ".join(f"{n:,}" for n in dropped))
    if s.image_size != base.image_size:
        out.append(f"image size {base.image_size} -> {s.image_size} px (arms reading more)")
    if s.optimizers_dropped:
        out.append("optimizers dropped: " + ", ".join(s.optimizers_dropped))
    if s.one_lr:
        out.append("lr grid narrowed to its middle value (one lr per optimizer)")
    if s.arms_dropped:
        out.append("arms dropped: " + ", ".join(s.arms_dropped))
    if s.seeds > base.seeds:
        out.append(f"seeds {base.seeds} -> {s.seeds} (room in the budget)")
    return out


def too_small(candidates: dict, needed_s: float, s: Settings) -> UserError:
    minutes = math.ceil(needed_s / 60)
    arms = [a for a in candidates["arms"] if a not in s.arms_dropped]
    optimizers = [o for o in candidates["optimizers"] if o not in s.optimizers_dropped]
    return UserError(
        f"study.budget_minutes={candidates['budget_minutes']:g} is too small: even the "
        f"smallest plan (arms {', '.join(arms)}; {', '.join(optimizers)}; {s.epochs} "
        f"epoch(s), {s.image_size} px, {s.seeds} seeds, at least {s.min_steps} steps a run) "
        f"needs about {needed_s / 60:.1f} minutes here, the probe included. Fix: "
        f"study.budget_minutes={minutes}, or fewer steps a run (study.min_steps)."
    )
