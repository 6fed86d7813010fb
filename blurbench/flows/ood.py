"""The OOD score of issue 26: the Mahalanobis distance of a condition's features from the training
conditions' features, and how well it predicts "this condition produced an artifact".

Covariance: Ledoit–Wolf shrinkage towards μI (μ = mean variance), Σ = (1 − δ) S + δ μ I with S the
maximum-likelihood covariance (1/N) and δ = min(b̄², d²)/d², d² = ‖S − μI‖²_F/d and
b̄² = (Σ_k ‖x_k‖⁴ − N ‖S‖²_F)/(N² d) on centred features (Ledoit and Wolf 2004; the same estimator
as sklearn's LedoitWolf). Shrinkage keeps Σ invertible when there are fewer conditions than feature
dimensions, as with pooled conditioner features. `shrinkage="none"` uses S (pseudo-inverted), as
sklearn's EmpiricalCovariance. The score is the distance itself, not its square.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import linalg, stats

SHRINKAGES = ("ledoit_wolf", "none")


def _features(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or not np.isfinite(a).all():
        raise ValueError(f"{name}: expected a finite (N, d) array, got shape {a.shape}"
                         + ("" if a.ndim != 2 else " with non-finite values"))
    return a


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """(shrunk covariance, shrinkage δ ∈ [0, 1]) of centred (N, d) features; see the module doc."""
    n, d = x.shape
    s = x.T @ x / n
    mu = np.trace(s) / d
    d2 = ((s - mu * np.eye(d)) ** 2).sum() / d
    b2 = ((np.einsum("ij,ij->i", x, x) ** 2).sum() - n * (s ** 2).sum()) / (n * n * d)
    delta = 0.0 if d2 == 0 else min(b2, d2) / d2
    return (1 - delta) * s + delta * mu * np.eye(d), float(delta)


class MahalanobisOOD:
    """Fit on training-condition features (N, d); score new features by their Mahalanobis distance."""

    def __init__(self, shrinkage: str = "ledoit_wolf"):
        if shrinkage not in SHRINKAGES:
            raise ValueError(f"shrinkage: unknown {shrinkage!r}; expected one of {', '.join(SHRINKAGES)}")
        self.shrinkage = shrinkage

    def fit(self, features) -> "MahalanobisOOD":
        """Mean and (shrunk) covariance of the training features; needs N ≥ 2."""
        x = _features(features, "features")
        if x.shape[0] < 2:
            raise ValueError(f"features: {x.shape[0]} row(s); the covariance needs at least 2")
        self.mean_ = x.mean(axis=0)
        xc = x - self.mean_
        if self.shrinkage == "ledoit_wolf":
            self.covariance_, self.shrinkage_ = ledoit_wolf(xc)
        else:
            self.covariance_, self.shrinkage_ = xc.T @ xc / x.shape[0], 0.0
        self.precision_ = linalg.pinvh(self.covariance_)
        return self

    def score(self, features) -> np.ndarray:
        """(N,) Mahalanobis distances √((x − m)ᵀ Σ⁻¹ (x − m)) of new features."""
        x = _features(features, "features")
        if x.shape[1] != self.mean_.size:
            raise ValueError(f"features: {x.shape[1]} dimensions, but the score was fitted on {self.mean_.size}")
        xc = x - self.mean_
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", xc, self.precision_, xc), 0))


def auroc(scores, positive) -> float:
    """Area under the ROC curve of `scores` for the binary `positive`, via the Mann–Whitney U statistic
    (ties count one half); NaN when either class is empty."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(positive, dtype=bool).ravel()
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = stats.rankdata(s)  # average ranks for ties
    u = ranks[y].sum() - n1 * (n1 + 1) / 2
    return float(u / (n1 * n0))


def score_vs_artifacts(scores, artifact) -> dict[str, float]:
    """Spearman ρ (with its p-value) and AUROC of the OOD score against "produced an artifact", per
    condition; NaN where undefined (no artifacts, all artifacts, or a constant score)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(artifact, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"artifact: {y.size} labels for {s.size} scores; expected one per score")
    if y.all() or not y.any() or np.ptp(s) == 0:
        rho, p = math.nan, math.nan
    else:
        res = stats.spearmanr(s, y)
        rho, p = float(res.statistic), float(res.pvalue)
    return {"spearman_rho": rho, "spearman_p": p, "auroc": auroc(s, y), "n": int(s.size),
            "n_artifacts": int(y.sum())}
