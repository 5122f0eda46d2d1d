"""Classical heads on frozen features: scikit-learn's linear SVM and logistic regression.

The fitted coefficients (with the optional standardisation folded in) are copied into the
network's own linear head, so the checkpoint stays plain tensors, eval.py needs no special
path, and the network's predictions on images are the scikit-learn model's predictions on
their features.
"""

from __future__ import annotations

import importlib
import logging
import time
import warnings
from collections.abc import Mapping

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from torch import nn

from transferlab import heads
from transferlab.errors import UserError

log = logging.getLogger("transferlab")


def estimator(head: Mapping, seed: int, balanced: bool = False):
    """The scikit-learn classifier a head fitted by scikit-learn (heads.HEADS) configures;
    `balanced` (data.balance=weights|sampler) weighs classes as class_weight="balanced"."""
    C, max_iter = float(head.get("C", 1.0)), int(head.get("max_iter", 1000))
    if C <= 0:
        raise UserError(f"head.C={C} must be positive (inverse regularisation), e.g. head.C=1.0.")
    module, name = heads.get(head["name"]).estimator.split(":")
    weights = "balanced" if balanced else None
    return getattr(importlib.import_module(module), name)(
        C=C, max_iter=max_iter, random_state=seed, class_weight=weights
    )


def linear_layer(head: nn.Module) -> nn.Linear:
    """The one nn.Linear a classical head fills; an MLP head has no place for it."""
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if len(linears) != 1:
        raise UserError(
            f"A classical head (head=svm or head=logreg) is one linear layer, but this head has "
            f"{len(linears)} (model.head.hidden is set). Use model.head.hidden=[] with it, or "
            "head=linear to train an MLP head."
        )
    return linears[0]


def fit_head(
    head: nn.Module,
    cfg: Mapping,
    features: torch.Tensor,
    labels: torch.Tensor,
    seed: int,
    balanced: bool = False,
) -> float:
    """Fit `cfg` (head=svm|logreg) on the features and copy it into `head`; returns train acc."""
    layer = linear_layer(head)
    x, y = features.double().numpy(), labels.numpy()
    classes = np.unique(y)
    if len(classes) < 2:
        raise UserError(
            f"head={cfg['name']} needs training images of at least two classes, but the train "
            f"features hold {len(classes)} of the {layer.out_features}. Give the train split "
            "images of each class (check data.source.limit / val_fraction / test_fraction)."
        )
    if len(classes) < layer.out_features:
        log.warning(
            "head=%s: %d of the %d classes have no training image; it never predicts them.",
            cfg["name"],
            layer.out_features - len(classes),
            layer.out_features,
        )
    scaler = StandardScaler() if cfg.get("standardize", True) else None
    clf = estimator(cfg, seed, balanced)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        clf.fit(scaler.fit_transform(x) if scaler else x, y)
    if any(issubclass(w.category, ConvergenceWarning) for w in caught):
        log.warning(
            "head=%s did not converge in head.max_iter=%s iterations; the result may be off. "
            "Raise head.max_iter, lower head.C, or set head.standardize=true.",
            cfg["name"],
            cfg.get("max_iter"),
        )
    weight, bias = _full_logits(*_logit_weights(clf, scaler), clf.classes_, layer.out_features)
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight, dtype=layer.weight.dtype))
        layer.bias.copy_(torch.as_tensor(bias, dtype=layer.bias.dtype))
    accuracy = float((np.argmax(x @ weight.T + bias, axis=1) == y).mean())
    log.info(
        "head=%s: %s fitted on %d x %d train features in %.1f s (train acc %.4f)",
        cfg["name"],
        clf,
        *x.shape,
        time.perf_counter() - start,
        accuracy,
    )
    return accuracy


def _full_logits(
    weight: np.ndarray, bias: np.ndarray, fitted: np.ndarray, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows for every class: a class the estimator never saw gets a logit far below the rest."""
    full_weight = np.zeros((num_classes, weight.shape[1]))
    full_bias = np.full(num_classes, -1e4)
    full_weight[fitted], full_bias[fitted] = weight, bias
    return full_weight, full_bias


def _logit_weights(clf, scaler: StandardScaler | None) -> tuple[np.ndarray, np.ndarray]:
    """(classes, features) weight and (classes,) bias whose argmax is `clf.predict` on raw x.

    Binary problems give one decision value s; logits [0, s] keep its sign, and for
    logistic regression softmax([0, s]) is exactly predict_proba.
    """
    weight, bias = np.asarray(clf.coef_, dtype=np.float64), np.asarray(clf.intercept_, np.float64)
    if weight.shape[0] == 1:
        weight = np.vstack([np.zeros_like(weight), weight])
        bias = np.concatenate([[0.0], bias])
    if (
        scaler is not None
    ):  # w . (x - mean) / scale + b  ==  (w / scale) . x + (b - w . mean / scale)
        weight = weight / scaler.scale_
        bias = bias - weight @ scaler.mean_
    return weight, bias
