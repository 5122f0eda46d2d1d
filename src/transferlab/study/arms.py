"""What a study compares: each arm's kind from its composed config, and the overrides
each side (the scratch CNN, the pretrained backbone) runs with."""

from __future__ import annotations

from pathlib import Path

from hydra import compose
from omegaconf import DictConfig

from transferlab import heads, input_size, modes
from transferlab.checks.commands import validate_train
from transferlab.config_dirs import CONF_DIR
from transferlab.errors import UserError
from transferlab.study.plan import RANDOM_INIT, Arm, Counts

LABELS = {
    "scratch": "from scratch (CNN)",
    "features_linear": "frozen features + linear head",
    "features_svm": "frozen multi-layer features + SVM",
    "partial": "partial (last 2 groups)",
    "finetune": "fine-tune",
    "gradual": "gradual unfreezing",
}
QUIET = ["extras.print_config=false", "task_name=study"]


def arm_of(name: str, overrides: list[str], backbone: str) -> Arm:
    """An arm's kind from its composed config, checked as train.py would check it."""
    try:
        cfg = compose("train", overrides=[*overrides, f"arm={name}", f"model={backbone}"])
    except Exception as err:  # hydra's MissingConfigException and friends
        options = sorted(p.stem for p in (Path(CONF_DIR) / "arm").glob("*.yaml"))
        raise UserError(
            f"study.arms has {name!r}, which is not an arm ({type(err).__name__}: {err}). "
            f"Arms are the files in conf/arm: {', '.join(options)}; add a file there for "
            "another recipe."
        ) from None
    if modes.of(cfg).ignores_weights:
        kind, cfg = RANDOM_INIT, compose("train", overrides=[*overrides, f"arm={name}"])
    elif heads.of(cfg.get("head")).fitted_by_sklearn:
        kind = "classical"
    else:
        kind = "trained"
    validate_train(cfg)
    return Arm(name, LABELS.get(name, name), kind, input_size.resolve(cfg).pixels)


def backbone_of(cfg: DictConfig, given: list[str]) -> tuple[str, list[str]]:
    """`model=<name>` on the command line is the pretrained arms' backbone."""
    models = [o.split("=", 1)[1] for o in given if o.startswith("model=")]
    backbone = models[-1] if models else str(cfg.study.backbone)
    return backbone, [o for o in given if not o.startswith("model=")]


def kind_overrides(kind: str, passed: list[str], backbone: str) -> list[str]:
    extra = [] if kind == RANDOM_INIT else [f"model={backbone}"]
    return [*passed, *extra, *QUIET]


def side(arm: Arm) -> str:
    """Which base overrides an arm runs with: the scratch CNN's or the backbone's."""
    return RANDOM_INIT if arm.kind == RANDOM_INIT else "trained"


def split_counts(cfg: DictConfig) -> Counts:
    """Images per split of the data as configured, batch size and classes."""
    from hydra.utils import instantiate

    source = instantiate(cfg.data.source)
    train, val, test = (len(s) for s in source.splits(int(cfg.seed)))
    return Counts(train, val, test, int(cfg.batch_size), len(source.classes))
