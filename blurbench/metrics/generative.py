"""Small-N generative metrics on Inception features: KID and precision/recall/density/coverage.

Why: FID from N ≤ a few hundred 2048-d features is strongly biased and its covariance is
rank-deficient (protocol.md, "Statistics"). KID (Bińkowski et al. 2018) is an unbiased estimate
of MMD² at any N ≥ 2; precision, recall, density and coverage (Naeem et al. 2020) split fidelity
from diversity. Both come with paired intervals for the comparison against a reference method.

KID uses the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³ on all N features at once (no
subsets; torch-fidelity's `kid_features_to_metric` with one subset of size N computes the same
number). Kernel matrices are computed once per feature set, so a bootstrap resample with counts w
costs a few N×N matrix-vector products (`kid_recon_stat`, `kid_gen_stat`, for `stats.paired_set_diff`).
Its bootstrap (resampling="bootstrap"; one seed: centred on the estimate) covered 0.92–0.97 at N = 24 and 128 in
tests/test_generative_metrics.py, where the methods differ along the data's own variation. When
the difference is dominated by the degenerate (second-order) part of the U-statistic (methods
nearly equal, or differing only orthogonally to the data's variation), it is conservative (0.99–1.0
measured): a resample's pairs of duplicates inflated that part's variance 2.7-fold.

PRDC follows the `prdc` package (k = 5; "real" = test features, "fake" = the model's). A
bootstrap with duplicates shrinks the k-NN radii (a duplicate is its own neighbour at distance
0), so its interval comes from subsampling without replacement instead (`prdc_paired_diff`).
"""

from __future__ import annotations

import numpy as np

from ..stats import LEVEL, Estimate, Evaluate, Stat, centred_estimate

PRDC_K = 5             # nearest neighbours (Naeem et al. 2020; the prdc package's examples)
PRDC_METRICS = ("precision", "recall", "density", "coverage")
N_SUBSAMPLES = 1000    # subsamples for a PRDC interval
PRDC_MIN_N = 128       # smallest N of (24, 40, 64, 128) whose reconstruction intervals covered (see below)
SUBSAMPLE_FRACTION = 0.8  # of the items per subsample: half-samples undercover (0.86–0.90 at N = 128)


def _features(name: str, feats, n_min: int = 2) -> np.ndarray:
    """Features as float64 (N, d), checked: 2-D, at least `n_min` rows, finite."""
    f = np.asarray(feats, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < n_min:
        raise ValueError(f"{name}: expected features (N ≥ {n_min}, d), got shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError(f"{name}: {int((~np.isfinite(f)).any(axis=1).sum())} feature rows are not finite")
    return f


def _same_dim(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names}: feature dimensions differ ({a.shape[1]} and {b.shape[1]})")


def _same_n(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[0] != b.shape[0]:
        raise ValueError(f"{names}: expected paired features of one length N, got {a.shape[0]} and {b.shape[0]}")


def poly_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """KID's kernel matrix k(x_i, y_j) = (x_iᵀ y_j / d + 1)³."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


# ------------------------------------------------------------------------------------------ KID
def _within(k: np.ndarray) -> float:
    """Σ_{i≠j} k_ij / (n (n − 1)): the U-statistic of one sample."""
    n = k.shape[0]
    return float((k.sum() - np.trace(k)) / (n * (n - 1)))


def kid(x_feats, y_feats) -> float:
    """Unbiased MMD² (cubic kernel) between independent samples X (N, d) and Y (M, d).

    Within-set terms exclude i = j; the cross term averages all N·M pairs.
    """
    x, y = _features("KID x_feats", x_feats), _features("KID y_feats", y_feats)
    _same_dim(x, y, "KID")
    return _within(poly_kernel(x, x)) + _within(poly_kernel(y, y)) - 2 * float(poly_kernel(x, y).mean())


def kid_paired(recon_feats, test_feats) -> float:
    """Unbiased MMD² between reconstructions and their own test images (both (N, d), row i paired).

    The cross term leaves out i = j: k(recon_i, test_i) pairs an image with its own reconstruction,
    which is not an independent draw of the two distributions, so including it would bias the
    estimate (downwards, for good reconstructions). The cross term is Σ_{i≠j} k(recon_i, test_j) /
    (N (N − 1)); this is torch-fidelity's `mmd2(..., mmd_est="u-statistic")`.
    """
    x, y = _features("KID recon_feats", recon_feats), _features("KID test_feats", test_feats)
    _same_dim(x, y, "KID")
    _same_n(x, y, "KID recon/test")
    return _within(poly_kernel(x, x)) + _within(poly_kernel(y, y)) - 2 * _within(poly_kernel(x, y))


def _weighted_within(k: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per row of counts w (R, N): Σ_{i≠j} w_i w_j k_ij / (m² − Σ w_i²), m = Σ w.

    Pairs of copies of one original item are left out, as i = j is in the unweighted statistic,
    so every resample is a U-statistic of distinct items (all-ones counts give `_within`).
    """
    w2 = w * w
    num = np.einsum("rj,rj->r", w @ k, w) - w2 @ np.diag(k)
    return num / (w.sum(axis=1) ** 2 - w2.sum(axis=1))


def _check_counts(counts, n: int) -> np.ndarray:
    w = np.atleast_2d(np.asarray(counts))
    if w.ndim != 2 or w.shape[1] != n or (w < 0).any():
        raise ValueError(f"counts: expected non-negative (R, {n}), got shape {w.shape}")
    if ((w > 0).sum(axis=1) < 2).any():
        raise ValueError("counts: a U-statistic needs at least 2 distinct items per resample")
    return w.astype(np.float64)


def kid_recon_stat(items) -> Evaluate:
    """KID of reconstructions, resampled by test image; items (N, 2, d): [i, 0] recon, [i, 1] test.

    A resample draws test images and with them both their reconstructions and the test side (the
    same counts), so each resample compares the same images; with all-ones counts it is
    `kid_paired`. Kernel matrices are computed once; a resample costs three N×N products.
    """
    items = np.asarray(items, dtype=np.float64)
    if items.ndim != 3 or items.shape[1] != 2:
        raise ValueError(f"KID recon items: expected (N, 2, d) of (recon, test) features, got {items.shape}")
    x, y = _features("KID recon", items[:, 0]), _features("KID test", items[:, 1])
    kxx, kyy, kxy = poly_kernel(x, x), poly_kernel(y, y), poly_kernel(x, y)
    n = x.shape[0]

    def evaluate(counts) -> np.ndarray:
        w = _check_counts(counts, n)
        return _weighted_within(kxx, w) + _weighted_within(kyy, w) - 2 * _weighted_within(kxy, w)
    return evaluate


def kid_gen_stat(test_feats) -> Stat:
    """KID of generated features (items (N, d), paired across methods by prior draw) to the test set.

    The test side is resampled too, with the same counts as the generated side: the reference set
    varies from test set to test set as much as the samples do, and holding it fixed undercovers
    (coverage 0.775 at N = 24 in tests/test_generative_metrics.py, ≈ 0.80 at N = 128). Generated samples and test images are independent, so
    row i's (sample, test image) pairs are i.i.d. and drawing them together is a valid bootstrap
    of both; this needs as many test features as samples (the first N of the test split).
    The cross term of independent sets keeps all pairs, as in `kid`.
    """
    y = _features("KID test_feats", test_feats)
    kyy = poly_kernel(y, y)

    def bind(items) -> Evaluate:
        x = _features("KID generated", items)
        _same_dim(x, y, "KID")
        _same_n(x, y, "KID generated/test (the test side is resampled with the same counts)")
        kxx, kxy = poly_kernel(x, x), poly_kernel(x, y)
        n = x.shape[0]

        def evaluate(counts) -> np.ndarray:
            w = _check_counts(counts, n)
            m = w.sum(axis=1)
            cross = np.einsum("rj,rj->r", w @ kxy, w) / m ** 2
            return _weighted_within(kxx, w) + _weighted_within(kyy, w) - 2 * cross
        return evaluate
    return bind


# ----------------------------------------------------------------------------------------- PRDC
def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distance matrix (float64; exact zeros on the diagonal when a is b)."""
    sq = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2 * a @ b.T
    d = np.sqrt(np.clip(sq, 0, None))
    if a is b:
        np.fill_diagonal(d, 0.0)
    return d


def _radii(d: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest neighbour other than itself (prdc's radius)."""
    return np.partition(d, k, axis=1)[:, k]


def _prdc(d_tt: np.ndarray, d_xx: np.ndarray, d_tx: np.ndarray, k: int) -> np.ndarray:
    """(precision, recall, density, coverage) from test–test, model–model and test–model distances."""
    inside_test = d_tx < _radii(d_tt, k)[:, None]      # model j inside test i's k-NN ball
    inside_model = d_tx < _radii(d_xx, k)[None, :]     # test i inside model j's k-NN ball
    return np.array([inside_test.any(axis=0).mean(), inside_model.any(axis=1).mean(),
                     inside_test.sum(axis=0).mean() / k, inside_test.any(axis=1).mean()])


def _prdc_diff(d: dict, i: np.ndarray, j: np.ndarray, k: int) -> np.ndarray:
    """PRDC of method − reference on model items i and test items j (distance matrices in d)."""
    tt, ii, ti = d["tt"][np.ix_(j, j)], np.ix_(i, i), np.ix_(j, i)
    return _prdc(tt, d["mm"][ii], d["tm"][ti], k) - _prdc(tt, d["rr"][ii], d["tr"][ti], k)


def _check_k(k: int, *sizes: int) -> None:
    if k < 1 or min(sizes) <= k:
        raise ValueError(f"PRDC with k = {k} nearest neighbours needs k ≥ 1 and more than k features "
                         f"per set, got set sizes {sizes}")


def prdc(model_feats, test_feats, k: int = PRDC_K) -> dict[str, float]:
    """Precision, recall, density and coverage of model features against test ("real") features.

    The `prdc` package's definitions (Naeem et al. 2020): k-NN balls around each real and each
    fake point, the k-th neighbour not counting the point itself.
    """
    x, t = _features("PRDC model_feats", model_feats), _features("PRDC test_feats", test_feats)
    _same_dim(x, t, "PRDC")
    _check_k(k, x.shape[0], t.shape[0])
    values = _prdc(_distances(t, t), _distances(x, x), _distances(t, x), k)
    return dict(zip(PRDC_METRICS, map(float, values)))


def prdc_paired_diff(method_feats, reference_feats, test_feats, *, paired: bool, k: int = PRDC_K,
                     n_sub: int = N_SUBSAMPLES, level: float = LEVEL, seed: int = 0) -> dict[str, Estimate]:
    """method − reference for each PRDC metric, with a subsampling interval.

    `paired=True` (reconstructions): row i of each set comes from test image i; a subsample takes
    the same images on all three. `paired=False` (samples): row i of method and reference share
    prior draw i; the draws and, independently, the test images are subsampled.
    Subsamples (b = 0.8 N without replacement) have no duplicates, which would shrink the k-NN
    radii. The spread of a subsample's difference about the subsamples' median, times √(b / (N − b))
    (the finite-population factor: Var of a b-subsample mean ≈ σ² (1/b − 1/N)), estimates the
    full-N sampling spread; the interval reflects its quantiles about the point estimate (the basic
    interval, `stats.centred_estimate`). Coverage (tests/test_generative_metrics.py, nominal 0.95,
    200 data sets): for reconstructions 0.94–0.97 at N = PRDC_MIN_N = 128 (0.95–0.965 when the
    spread was centred on its mean), but the worst metric's falls to 0.87 at N = 64, 0.67 at 40 and
    0.34 at 24 (measured with the mean; precision and coverage near 1 saturate in small subsamples),
    so below PRDC_MIN_N show the value without a verdict. For samples 0.935–0.995 at N = 128
    (0.935–1.0 at N = 24–128 with the mean), conservative for precision and recall, likely because
    subsampling the draws and the test images independently overstates the part of the spread from
    their interaction.
    """
    xm, xr = _features("PRDC method_feats", method_feats), _features("PRDC reference_feats", reference_feats)
    t = _features("PRDC test_feats", test_feats)
    _same_dim(xm, t, "PRDC method/test")
    _same_dim(xr, t, "PRDC reference/test")
    _same_n(xm, xr, "PRDC method/reference")
    if paired:
        _same_n(xm, t, "PRDC reconstructions/test")
    if n_sub < 1 or not 0 < level < 1:
        raise ValueError(f"expected n_sub ≥ 1 and 0 < level < 1, got {n_sub} and {level}")
    n, m = xm.shape[0], t.shape[0]
    b = min(round(n * SUBSAMPLE_FRACTION), n - 1)
    bt = b if paired else min(round(m * b / n), m - 1)
    _check_k(k, b, bt)
    d = dict(tt=_distances(t, t), mm=_distances(xm, xm), rr=_distances(xr, xr),
             tm=_distances(t, xm), tr=_distances(t, xr))
    diff = _prdc_diff(d, np.arange(n), np.arange(m), k)
    rng = np.random.default_rng(seed)
    sub = np.empty((n_sub, len(PRDC_METRICS)))
    for s in range(n_sub):
        i = rng.choice(n, b, replace=False)
        sub[s] = _prdc_diff(d, i, i if paired else rng.choice(m, bt, replace=False), k)
    what = "test images" if paired else "prior draws and test images"
    method = f"subsampling (basic) interval over {n} {what}, {n_sub} subsamples of {b} without replacement"
    return {name: centred_estimate(float(v), sub[:, c], level, method, what, scale=np.sqrt(b / (n - b)))
            for c, (name, v) in enumerate(zip(PRDC_METRICS, diff))}
