"""What each `backbones=[...]` item names, and the rank options, checked before torch loads.

An item is a model config of conf/model/ (built with its own pretrained setting),
`random:<model>` (that architecture from random init: the floor), a run's checkpoint
(`.ckpt`), or `<model>=<weights file>` (quoted in the list: Hydra reads `=` as an override).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, ListConfig

from transferlab.checks.overrides import closest
from transferlab.errors import UserError

RANDOM = "random:"
SCORES = ("logme", "knn", "probe")  # scores.SCORES, here without importing numpy or sklearn
_FILE_ENDINGS = (".pth", ".pt", ".pth.tar", ".safetensors", ".ckpt", ".bin")


@dataclass(frozen=True)
class Candidate:
    """One backbone to rank: `kind` is model | random | checkpoint | weights."""

    item: str
    kind: str
    model: str | None = None
    path: str | None = None


def parse(item: str, conf_dir: str | Path) -> Candidate:
    """The candidate an item names, or UserError saying how to write it."""
    item = str(item).strip()
    if item.startswith(RANDOM):
        return Candidate(item, "random", model=_model(item[len(RANDOM) :], item, conf_dir))
    if "=" in item:
        model, path = item.split("=", 1)
        return Candidate(item, "weights", model=_model(model, item, conf_dir), path=path)
    if item.endswith(".ckpt"):
        return Candidate(item, "checkpoint", path=item)
    if item.endswith(_FILE_ENDINGS) or "/" in item:
        raise UserError(
            f"The backbone {item!r} is a weights file without its model. Give the model "
            f"config it fits, quoted in the list: backbones=['resnet18={item}'] (a run's "
            ".ckpt needs none)."
        )
    return Candidate(item, "model", model=_model(item, item, conf_dir))


def _model(name: str, item: str, conf_dir: str | Path) -> str:
    options = sorted(p.stem for p in (Path(conf_dir) / "model").glob("*.yaml"))
    if name in options:
        return name
    near = closest(name, options)
    hint = f" (did you mean {' or '.join(near)}?)" if near else ""
    # The hint stays in the first sentence: a skipped row's reason is that sentence.
    raise UserError(
        f"Unknown backbone {item!r}: no model config conf/model/{name}.yaml{hint}. An item "
        f"is one of {', '.join(options)}, random:<model>, a run's .ckpt or "
        "'<model>=<weights file>'."
    )


def check(cfg: DictConfig) -> None:
    """The rank options that cannot work, refused before any backbone is built."""
    items = cfg.get("backbones")
    if not isinstance(items, ListConfig | list) or not items:
        raise UserError(
            f"backbones={items} is not a list of backbones. Give one or more in brackets, "
            "e.g. backbones=[efficientnet_lite0,random:efficientnet_lite0]."
        )
    score = cfg.rank.get("score")
    if score not in SCORES:
        raise UserError(
            f"Unknown rank.score={score!r}. Choose one of {', '.join(SCORES)}, e.g. "
            "rank.score=logme."
        )
    k = cfg.rank.get("knn_k")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise UserError(f"rank.knn_k={k} must be a whole number of at least 1, e.g. rank.knn_k=20.")
