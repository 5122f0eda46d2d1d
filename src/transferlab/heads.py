"""The heads, one row each: how the classifier on top of the backbone is made.

Every part that depends on the head asks this table (the config checks, the feature path,
the module's metrics and step, the study's arm kinds), so a head made of these properties
is one row here plus its `conf/head/<name>.yaml`. Torch-free: the checks read it first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from transferlab.errors import row_of


@dataclass(frozen=True)
class Head:
    name: str
    # "module:Class" of the scikit-learn classifier fitted once on cached features (it takes
    # C, max_iter, random_state); None: gradient descent trains it with the network.
    estimator: str | None
    # Its softmax is a probability, so calibration error means something (not SVM margins).
    calibrated: bool

    @property
    def fitted_by_sklearn(self) -> bool:
        return self.estimator is not None

    @property
    def needs_optimizer(self) -> bool:
        """Trained by gradient descent: an optimizer, a learning rate, epochs that step."""
        return not self.fitted_by_sklearn


HEADS = {
    h.name: h
    for h in (
        Head("linear", estimator=None, calibrated=True),
        Head("svm", estimator="sklearn.svm:LinearSVC", calibrated=False),
        Head("logreg", estimator="sklearn.linear_model:LogisticRegression", calibrated=True),
    )
}
DEFAULT = "linear"  # conf/train.yaml's head default; a config without a head node gets it


def get(name) -> Head:
    """The head called `name`, or UserError listing the heads there are."""
    return row_of(HEADS, name, "head", "head=svm")


def of(head: Mapping | None) -> Head:
    """The head a `head` config node names (none: the default)."""
    return get((head or {}).get("name") or DEFAULT)
