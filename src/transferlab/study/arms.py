"""What a study compares: each arm as its conf/arm YAML declares it, checked, and the
overrides each kind of arm runs with."""

from __future__ import annotations

import copy
from pathlib import Path

from hydra import compose
from omegaconf import DictConfig, OmegaConf

from transferlab import arm_kinds, heads, input_size, modes
from transferlab.arm_kinds import ArmKind
from transferlab.checks.commands import validate_train
from transferlab.config_dirs import CONF_DIR
from transferlab.errors import UserError
from transferlab.study.plan import Arm, Counts

QUIET = ["extras.print_config=false", "task_name=study"]


def arm_of(name: str, overrides: list[str], backbone: str) -> Arm:
    """An arm as its YAML declares it (label, kind, family), its composed config checked as
    train.py would check it."""
    cfg = _composed(name, overrides)
    kind = arm_kinds.of(cfg.get("arm"), f"conf/arm/{name}.yaml")
    if kind.on_backbone:
        cfg = _composed(name, overrides, f"model={backbone}")
    head = heads.of(cfg.get("head"))
    if kind.fitted_by_sklearn != head.fitted_by_sklearn:
        raise UserError(
            f"conf/arm/{name}.yaml declares kind {kind.name!r}, but its head {head.name!r} is "
            f"{'not ' * kind.fitted_by_sklearn}fitted by scikit-learn. Declare the kind that "
            "matches the head (the kinds: transferlab/arm_kinds.py)."
        )
    validate_train(cfg)
    size = input_size.resolve(cfg).pixels
    probe = modes.get(cfg.mode.name).probe_at_end
    return Arm(name, str(cfg.arm.label), kind, size, family=str(cfg.arm.family), probe=probe)


def _composed(name: str, overrides: list[str], *after: str) -> DictConfig:
    try:
        return compose("train", overrides=[*overrides, f"arm={name}", *after])
    except Exception as err:  # hydra's MissingConfigException and friends
        options = sorted(p.stem for p in (Path(CONF_DIR) / "arm").glob("*.yaml"))
        raise UserError(
            f"study.arms has {name!r}, which is not an arm ({type(err).__name__}: {err}). "
            f"Arms are the files in conf/arm: {', '.join(options)}; add a file there for "
            "another recipe."
        ) from None


def backbone_of(cfg: DictConfig, given: list[str]) -> tuple[str, list[str]]:
    """`model=<name>` on the command line is the pretrained arms' backbone."""
    models = [o.split("=", 1)[1] for o in given if o.startswith("model=")]
    backbone = models[-1] if models else str(cfg.study.backbone)
    return backbone, [o for o in given if not o.startswith("model=")]


def base_overrides(kind: ArmKind, passed: list[str], backbone: str) -> list[str]:
    """What every run of an arm of this kind starts from: the study's own overrides, and
    the backbone where the kind runs on it."""
    extra = [f"model={backbone}"] if kind.on_backbone else []
    return [*passed, *extra, *QUIET]


def split_counts(cfg: DictConfig) -> Counts:
    """Images per split of the data as configured, batch size and classes."""
    from hydra.utils import instantiate

    source = instantiate(cfg.data.source)
    train, val, test = (len(s) for s in source.splits(int(cfg.seed)))
    return Counts(train, val, test, int(cfg.batch_size), len(source.classes))


def cv_overrides(cfg: DictConfig, passed: list[str], folds: int) -> list[str]:
    """A cross-validated study's runs: seed s trains on the other folds of the training
    images and validates on fold s (data/folds.py); a carved validation split joins the
    training images first (val_fraction 0), unless the user set its fraction."""
    out = [f"data.folds={folds}", "data.fold=${seed}"]
    return out + ["data.source.val_fraction=0"] * _pools_val(cfg, passed)


def cv_counts(cfg: DictConfig, passed: list[str]) -> Counts:
    """The split counts a cross-validated study runs on: its validation split pooled."""
    if not _pools_val(cfg, passed):
        return split_counts(cfg)
    pooled = copy.deepcopy(cfg)
    OmegaConf.update(pooled, "data.source.val_fraction", 0, merge=False)
    return split_counts(pooled)


def _pools_val(cfg: DictConfig, passed: list[str]) -> bool:
    given = any(o.lstrip("+").startswith("data.source.val_fraction=") for o in passed)
    return "val_fraction" in cfg.data.source and not given
