"""The kinds of study arm, one row each: how study.py runs an arm of that kind.

Each `conf/arm/<name>.yaml` declares its `arm: {name, label, kind, family}`. Every part of the
study that depends on the kind (which network it runs on, whether it takes an optimizer,
a learning rate and steps, which arms share a process, the order they run in) asks this
table, so a new arm is one YAML, and a new kind one row here too. Torch-free.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from transferlab.errors import UserError, row_of


@dataclass(frozen=True)
class ArmKind:
    name: str
    # Runs on the study's backbone (`model=<study.backbone>`); False: on the network its
    # YAML names (the scratch CNN), whatever the backbone.
    on_backbone: bool
    # Its head is fitted once by scikit-learn on frozen features: no optimizer, no learning
    # rate to search or find, no optimizer steps (heads.Head.fitted_by_sklearn, checked).
    fitted_by_sklearn: bool = False

    @property
    def needs_optimizer(self) -> bool:
        """Trained by gradient descent: an optimizer, a learning rate, steps to budget."""
        return not self.fitted_by_sklearn


# Cheapest first: the study runs the kinds in this order, so a budget that runs out costs
# the fewest cells their seeds.
KINDS = {
    k.name: k
    for k in (
        ArmKind("classical", on_backbone=True, fitted_by_sklearn=True),
        ArmKind("random_init", on_backbone=False),
        ArmKind("trained", on_backbone=True),
    )
}


@dataclass(frozen=True)
class Family:
    """What an arm does with pretrained weights, as the verdict's crossover sentence ("where
    fine-tuning overtakes frozen features") groups arms."""

    name: str
    frozen: bool = False  # the frozen-features side
    # On the fine-tuning side: the family of the lowest rank present stands for it (whole
    # fine-tuning; partial or gradual only where the study has none). None: neither side.
    tuned_rank: int | None = None


FAMILIES = {
    f.name: f
    for f in (
        Family("scratch"),
        Family("frozen_features", frozen=True),
        Family("finetune", tuned_rank=0),
        Family("partial_finetune", tuned_rank=1),
    )
}


def family(name) -> Family:
    """The arm family called `name`, or UserError listing the families there are."""
    return row_of(FAMILIES, name, "arm family", "family: finetune")


def get(name) -> ArmKind:
    """The arm kind called `name`, or UserError listing the kinds there are."""
    return row_of(KINDS, name, "arm kind", "kind: trained")


def of(arm: Mapping | None, source: str) -> ArmKind:
    """The kind an `arm` config node declares; `source` names where the node came from."""
    if not arm or not all(arm.get(k) for k in ("kind", "label", "family")):
        raise UserError(
            f"{source} declares no `arm: {{name, label, kind, family}}` node (seen: {arm!r}). "
            f"Add one: the label the study page shows, a kind, one of {', '.join(KINDS)}, and "
            f"a family, one of {', '.join(FAMILIES)}."
        )
    family(arm["family"])
    return get(arm["kind"])
