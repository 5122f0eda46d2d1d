"""Transferability scores of frozen features: LogME evidence, kNN accuracy, a linear probe.

Each needs one feature pass per split, no fine-tuning: LogME reads the train features
alone; kNN and the probe are fitted on train and scored on val.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neighbors import KNeighborsClassifier
from sklearn.preprocessing import StandardScaler

from transferlab.features.heads import estimator

_EPSILON = 1e-5  # as the authors' code: keeps alpha and beta finite on a perfect fit


@dataclass(frozen=True)
class Evidence:
    """One target's maximised log evidence per sample, at the prior and noise precisions
    (alpha, beta) the fixed-point iteration settled on."""

    per_sample: float
    alpha: float
    beta: float


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME (You et al., ICML 2021): the mean over classes of each one-hot target's
    maximised log evidence per sample under Bayesian linear regression on `features`.

    Higher means the features explain the labels with a simpler linear model.
    """
    classes = np.unique(labels)
    one_hot = (np.asarray(labels)[:, None] == classes[None, :]).astype(np.float64)
    return float(np.mean([e.per_sample for e in evidences(features, one_hot)]))


def evidences(features: np.ndarray, targets: np.ndarray) -> list[Evidence]:
    """Each target column's maximised evidence; one SVD of the features serves all."""
    f = np.asarray(features, dtype=np.float64)
    s, to_u = _svd(f)
    return [_evidence(to_u @ y, y @ y, s, *f.shape) for y in np.asarray(targets).T]


def _svd(f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F = U diag(sqrt(s)) Vᵀ as (s, Uᵀ), from the eigenvectors of the smaller of F Fᵀ and
    FᵀF: on 1,257 x 1,280 Lite0 features that is several times faster than `svd(F)`.
    When D > N, FᵀF's other D - N eigenvalues are zeros: directions the prior alone fills."""
    n, d = f.shape
    if n <= d:
        s, u = np.linalg.eigh(f @ f.T)
        return np.clip(s, 0.0, None), u.T
    s, v = np.linalg.eigh(f.T @ f)
    s = np.clip(s, 0.0, None)  # rounding leaves null directions a little below zero
    sigma = np.sqrt(s)
    kept = sigma > 1e-12 * max(sigma.max(), 1e-300)
    inverse = np.divide(1.0, sigma, out=np.zeros_like(sigma), where=kept)
    return s, (v * inverse).T @ f.T  # rows u_i = F v_i / sigma_i


def _evidence(z: np.ndarray, yy: float, s: np.ndarray, n: int, d: int) -> Evidence:
    """MacKay's fixed point for one target y (z = Uᵀy): alpha = gamma / |m|², beta =
    (N - gamma) / |y - Fm|², gamma = sum(beta s / (alpha + beta s)), m the posterior mean."""
    alpha, beta = 1.0, 1.0
    for _ in range(11):  # the paper: converges in two or three steps, at most ten
        gamma, norm, residual = _posterior(z, yy, s, alpha, beta)
        alpha_new = gamma / (norm + _EPSILON)
        beta_new = (n - gamma) / (residual + _EPSILON)
        done = abs(alpha_new / beta_new - alpha / beta) / (alpha / beta) < 0.01
        alpha, beta = alpha_new, beta_new
        if done:
            break
    # The evidence at the final (alpha, beta), with the posterior mean they give.
    _, norm, residual = _posterior(z, yy, s, alpha, beta)
    log_det = np.log(alpha + beta * s).sum() + (d - len(s)) * math.log(alpha)
    evidence = (
        d / 2 * math.log(alpha)
        + n / 2 * math.log(beta)
        - 0.5 * log_det
        - beta / 2 * residual
        - alpha / 2 * norm
        - n / 2 * math.log(2 * math.pi)
    )
    return Evidence(float(evidence) / n, alpha, beta)


def _posterior(z, yy: float, s, alpha: float, beta: float) -> tuple[float, float, float]:
    """(gamma, |m|², |y - Fm|²) for m = beta A⁻¹Fᵀy, A = alpha I + beta FᵀF, in F's SVD."""
    shrink = beta * s / (alpha + beta * s)  # how much of each direction the fit keeps
    norm = float((shrink**2 * z**2 / np.where(s > 0, s, 1.0)).sum())
    # y's part outside F's column space stays in the residual whatever m is.
    residual = float(((1 - shrink) ** 2 * z**2).sum() + max(yy - (z**2).sum(), 0.0))
    return float(shrink.sum()), norm, residual


def knn_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, k: int = 20
) -> float:
    """Val accuracy of a majority vote among the k most cosine-similar train features."""
    knn = KNeighborsClassifier(n_neighbors=min(k, len(train_x)), metric="cosine", algorithm="brute")
    return float((knn.fit(train_x, train_y).predict(val_x) == val_y).mean())


def probe_accuracy(
    train_x: np.ndarray,
    train_y: np.ndarray,
    val_x: np.ndarray,
    val_y: np.ndarray,
    probe: dict,
    seed: int,
) -> float:
    """Val accuracy of head=logreg's estimator fitted on standardised train features."""
    scaler = StandardScaler().fit(train_x)
    clf = estimator({**probe, "name": "logreg"}, seed)
    with warnings.catch_warnings():
        # A probe a few iterations short still ranks; the score is what it reached.
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(scaler.transform(train_x), train_y)
    return float((clf.predict(scaler.transform(val_x)) == val_y).mean())
