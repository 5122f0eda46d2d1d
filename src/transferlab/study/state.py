"""plan.json as types: the study's plan and each cell's state, saved atomically in one place.

The report reads the same file as plain JSON (report.py), so the field names here are the
file's keys. `job_name` is the one place a study run's folder is named.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from transferlab.atomic import atomic_write_text
from transferlab.study.plan import Counts, Settings


def job_name(seed: int | str, lr: str | None = None) -> str:
    """A run's folder below its cell's: seed<k>[-lr<lr>] (also Hydra's, with ${...} in)."""
    return f"seed{seed}" + (f"-lr{lr}" if lr else "")


@dataclass
class CellState:
    """One cell in plan.json: what it is, its command, lr and status."""

    id: str
    arm: str | None = None
    arm_label: str | None = None
    arm_family: str | None = None  # arm_kinds.FAMILIES (None in a plan older than the field)
    optimizer: str | None = None
    size: int | None = None
    train_images: int | None = None
    steps: int | None = None  # optimizer steps planned for each run
    folder: str | None = None
    lr: str | None = None
    command: str | None = None
    status: str = "pending"
    stopped: str | None = None  # why the budget stopped it, once it did


@dataclass
class StudyPlan:
    command: str
    data: str | None
    backbone: str
    budget_minutes: float
    estimate_minutes: float
    started: str
    settings: dict
    counts: dict
    cuts: list[str] = field(default_factory=list)
    elapsed_minutes: float | None = None
    elapsed_so_far: float | None = None  # minutes, at the last save: a resume goes on from it
    val_split: int | None = None  # with cross-validation: the validation split it replaced
    cells: list[CellState] = field(default_factory=list)

    @classmethod
    def new(cls, settings: Settings, counts: Counts, lr: str, **fields_) -> StudyPlan:
        s = settings
        return cls(
            settings={
                "epochs": s.epochs,
                "image_size": s.image_size,
                "train_cut": s.train_cut,
                "seeds": list(range(s.seeds)),
                "few_seed_sizes": list(s.few_seed_sizes),
                "sizes": list(s.sizes),
                "lr": lr,
                "min_steps": s.min_steps,
                "optimizers_dropped": list(s.optimizers_dropped),
                "arms_dropped": list(s.arms_dropped),
                "one_lr": s.one_lr,
                "folds": s.folds,
            },
            counts={
                "train": counts.train,
                "val": counts.val,
                "test": counts.test,
                "batch_size": counts.batch_size,
            },
            cuts=list(s.cuts),
            **fields_,
        )

    @classmethod
    def load(cls, path: Path) -> StudyPlan | None:
        if not path.is_file():
            return None
        data = json.loads(path.read_text())
        known = {f.name for f in fields(CellState)}
        cells = [CellState(**{k: v for k, v in c.items() if k in known}) for c in data["cells"]]
        own = {f.name for f in fields(cls)} - {"cells"}
        return cls(**{k: v for k, v in data.items() if k in own}, cells=cells)

    def save(self, path: Path) -> None:
        atomic_write_text(path, json.dumps(asdict(self), indent=2) + "\n")

    def cell(self, cell_id: str) -> CellState:
        """The cell's entry, added when it has none yet."""
        found = next((c for c in self.cells if c.id == cell_id), None)
        if found is None:
            found = CellState(cell_id)
            self.cells.append(found)
        return found

    def typed_settings(self) -> Settings:
        s = self.settings
        return Settings(
            epochs=s["epochs"],
            image_size=s["image_size"],
            train_cut=s["train_cut"],
            seeds=len(s["seeds"]),
            sizes=tuple(s["sizes"]),
            few_seed_sizes=tuple(s["few_seed_sizes"]),
            min_steps=s.get("min_steps", 0),
            optimizers_dropped=tuple(s.get("optimizers_dropped", ())),
            arms_dropped=tuple(s.get("arms_dropped", ())),
            one_lr=bool(s.get("one_lr", False)),
            folds=s.get("folds"),
        )

    def typed_counts(self) -> Counts:
        c = self.counts
        return Counts(c["train"], c["val"], c["test"], c.get("batch_size", 1))
