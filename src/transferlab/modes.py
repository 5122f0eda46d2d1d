"""The training modes, one row each: what trains, what weights it needs, what it adds.

Every part of transferlab that depends on the mode asks this table (checks, freezing, the
pipeline, the feature path), so a mode made of these properties is one row here plus its
`conf/mode/<name>.yaml`. Torch-free: the config checks read it before torch loads.
"""

from __future__ import annotations

from dataclasses import dataclass

from transferlab.errors import row_of


@dataclass(frozen=True)
class Mode:
    name: str
    # Backbone layer groups that train at the start: "all", "none" (head only), or
    # "unfreeze" (the last model.unfreeze groups).
    trains: str
    # "ignored": random init even when model.weights is given (a sweep's baseline arm);
    # "expected": trains without, but warns that it is then the same as scratch;
    # "required": refused without pretrained weights or a weights file;
    # "optional": random init is a normal start (a distilled student).
    weights: str
    # The frozen backbone's features may be computed once and the head trained on them,
    # which also allows the scikit-learn heads and checkpoints without the backbone.
    feature_cache: bool = False
    # The frozen first groups stay frozen all run: their output may be computed once per
    # image and each epoch run only the trainable tail (features/prefix.py).
    prefix_cache: bool = False
    # Groups unfreeze during the run (a callback), so no prefix stays frozen throughout.
    unfreezes_during_run: bool = False
    # Overrides that start a run where its schedule ends, every group training: the study's
    # probe times that, since most of a run's steps train there (a probe of its first two
    # epochs timed the head alone and priced gradual unfreezing at a third of its cost).
    probe_at_end: tuple[str, ...] = ()
    # A frozen teacher (distill.*) adds its softened logits to the training loss.
    teacher: bool = False
    # Callbacks the mode adds, "module:Class", built from the mode node's other keys.
    callbacks: tuple[str, ...] = ()

    def trainable_groups(self, n_groups: int, unfreeze):
        """How many of the last backbone groups train at the start of a run (`unfreeze` as
        given: `finetune.freeze.set_trainable` refuses a count the network cannot take)."""
        return {"all": n_groups, "none": 0}.get(self.trains, unfreeze)

    @property
    def ignores_weights(self) -> bool:
        return self.weights == "ignored"


MODES = {
    m.name: m
    for m in (
        Mode("scratch", trains="all", weights="ignored"),
        Mode("finetune", trains="all", weights="expected"),
        Mode("feature_extract", trains="none", weights="required", feature_cache=True),
        Mode("partial", trains="unfreeze", weights="required", prefix_cache=True),
        Mode(
            "gradual",
            trains="none",
            weights="required",
            unfreezes_during_run=True,
            probe_at_end=("mode.freeze_epochs=0", "mode.groups_per_step=1000"),
            callbacks=("transferlab.finetune.gradual:GradualUnfreezing",),
        ),
        Mode("distill", trains="all", weights="optional", teacher=True),
    )
}


def get(name) -> Mode:
    """The mode called `name`, or UserError listing the modes there are."""
    return row_of(MODES, name, "mode", "mode=finetune")


def of(cfg) -> Mode:
    """The mode of a composed config (`cfg.mode.name`)."""
    return get(cfg.mode.name)


def names_weights(model) -> bool:
    """Whether a model config names weights: model.pretrained, or a model.weights file."""
    return bool(model.get("pretrained") or model.get("weights"))


def starts_from_weights(cfg) -> bool:
    """Whether the run's network starts from weights: its config names some and its mode
    does not ignore them. Everything that depends on it (input size, checks, the pipeline's
    warnings, the ranking, the study's arm kinds) asks here."""
    return not of(cfg).ignores_weights and names_weights(cfg.model)


def callbacks(cfg) -> list:
    """The mode's own callbacks, given the `mode` node's keys other than its name."""
    import importlib

    options = {k: v for k, v in cfg.mode.items() if k != "name"}
    built = []
    for path in of(cfg).callbacks:
        module, name = path.split(":")
        built.append(getattr(importlib.import_module(module), name)(**options))
    return built
