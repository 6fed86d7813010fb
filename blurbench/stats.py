"""Paired differences against a reference method: intervals, p-values and multiplicity adjustment.

Why paired: method and reference are scored on the same test images (and the same prior draws),
so image-to-image variation cancels in the difference and the interval only reflects what differs.

One engine serves every metric. A resample of N paired items is a vector of integer counts (how
often each item is taken); the same counts are applied to the method's and the reference's items,
and with several seeds to every seed (the seeds score the same test images). A statistic (`Stat`)
is bound to one seed's items and then evaluated on a batch of count vectors, so per-image means
and HFER are a matrix product and FID needs no materialised resample. Two resamplings:
- "bootstrap" (per-image metrics, HFER, equivalent blur): one seed, the interval is centred on the
  estimate (`centred_estimate`: the bootstrap spread about its median, reflected about θ̂). The
  percentile interval of a set metric whose bootstrap distribution is shifted from its estimate
  misses the truth.
- "jackknife" (FID-recon, FID-gen): delete-one (delete-a-group above JACKKNIFE_GROUPS items), a t
  interval with the jackknife SE. A bootstrap resample's duplicates lower the covariance rank, and
  at d = 2048 a difference of FIDs moves with the number of distinct images, so the bootstrap
  spread overstates the sampling spread (centred bootstrap at N = 128: FID-recon coverage 0.995,
  FID-gen 1.0; at N = 24: 0.88); the jackknife's is right (0.935-0.965 from N = 8 to 128,
  tests/test_fid_coverage.py). It has no Monte-Carlo error and N ≤ 256 evaluations.

The truth an interval covers is the expected difference at the runs' N (FID at N = 24 is a
different quantity from FID at N = 10000: its bias depends on N and on the method). What it covers
(`Estimate.covers`):
- one seed: the variation of the test images (or prior draws) only, for this one trained model;
- S ≥ 2 seeds: seeds and test images. The seeds share the test images, so the difference is
  d[s, i] = μ + a_s (seed) + b_i (image, shared) + c_si, and the seed-averaged estimate has
  variance σ_a²/S + σ_b²/N + σ_c²/(SN). A t interval over the S per-seed differences alone misses
  σ_b²/N (undercovers with no seed variance). Here V = max(B − W, 0)/S + I with B the variance of
  the per-seed differences (σ_a² + σ_c²/N), W the within-seed share σ_c²/N and I the image-level
  variance of the seed average (σ_b²/N + σ_c²/(SN)); a t quantile on Satterthwaite's df. Per-image
  means use the exact two-way ANOVA mean squares; set metrics take I and W from the joint
  resamples (the same counts for every seed), B from the per-seed estimates (`_seed_level`).
  With S = 3 the seed term has 2 df: where seed variance dominates, t quantiles near 4.3.
  Measured coverage (tests/test_stats_coverage.py, tests/test_fid_coverage.py): per-image means
  0.94-0.97 for seed SDs 0, 0.1, 0.3 at N = 256 and 24, S = 3 and 5; FID-recon (jackknife terms,
  S = 3, N = 24) calibrated while the seed SD is up to ≈ 2× the image-level SD, but 0.73 (S = 3) and 0.86 (S = 5) when a
  skewed seed effect is 7× it: 3-5 seeds cannot pin a skewed seed distribution's mean.

p-values (two-sided, for "no difference"): centred bootstrap, T* − c with c = median(T*) taken as
the null distribution of θ̂: p = 2 (min(#{T* − c ≥ θ̂}, #{T* − c ≤ θ̂}) + 1) / (B + 1), capped at 1
(the centred interval at level 1 − p just reaches 0); its Monte-Carlo SE is binomial,
2 √(π(1 − π)/B) with π = p/2. t intervals: p from the t statistic θ̂/√V on their df (no
Monte-Carlo error from a jackknife or the exact ANOVA; from bootstrap variances, p's change when V
moves by its SE). Adjust within a dataset with `holm` (family-wise, the default) or
`benjamini_yekutieli` (false discovery rate under any dependence), decide with
`adjusted_verdict`, and flag with `fragile` the cells whose adjusted verdict changes within
±2 Monte-Carlo SE; `adjust_family` does all three for one dataset's cells.

Resample counts. With ~40 cells per dataset Holm's smallest threshold is 0.05/40 = 1.25e-3. A
bootstrap p below it exists only from 2/1.25e-3 = 1600 resamples; calling a cell whose p is 3×
below it without the cell being fragile (2 SE below the threshold, counting the add-one's
+2/B) takes ≈ 9000 (`resamples_to_resolve`), 2× below ≈ 18600, 5× below ≈ 5200. So
N_BOOT_PER_IMAGE = N_BOOT_SET = 20000 (resolves a p 2× below it): both bootstrapped kinds are
matrix products (≈ 0.1-0.3 s for 256 images). FID is not bootstrapped: its jackknife costs N
evaluations, each an SVD of (N − 1)² (one FID cell, method and reference: ≈ 0.28 s at N = 128,
≈ 2.5 s at N = 256, one core). For comparison, one bootstrap resample of the paired FID-recon
(one side: an SVD of the k×k block of the k ≈ 0.63 N distinct images) costs ≈ 0.4 ms at N = 128
and ≈ 1.9 ms at N = 256 (one core): 20000 of them would be 16 s and 76 s per FID cell and seed.

FID_MIN_N: FID below it shows its value but gets no verdict. Coverage alone does not bound N (the
jackknife is calibrated from N = 8); the bound is what the interval covers: in the test's
rank-256 generator, the expected FID-recon difference at N = 8 has the opposite sign of the
population difference (+90 against −6700), ≈ 0 at N = 12, and the population's sign from
N = 24 (−190, 3 % of it; 13 % at N = 64, 29 % at N = 128). FID_MIN_N is the smallest N of the
grid (8, 24, 64, 128) at which the coverage test passes and the sign is the population's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .metrics import fid

N_BOOT_PER_IMAGE = 20000
N_BOOT_SET = 20000
LEVEL = 0.95
ALPHA = 1 - LEVEL
FID_MIN_N = 24  # see the module docstring and tests/test_fid_coverage.py
JACKKNIFE_GROUPS = 256  # delete-one up to this N; above it, this many delete-a-group resamples
_COUNTS_PER_BLOCK = 1 << 21  # resampled counts held in memory at once (16 MB), bounds large N

Evaluate = Callable[[np.ndarray], np.ndarray]  # counts (R, N) int -> statistic values (R,)
Stat = Callable[[np.ndarray], Evaluate]        # one seed's items (N, ...) -> Evaluate


@dataclass(frozen=True)
class Estimate:
    """method − reference: point estimate `diff`, interval [lo, hi] at `level`, how it was obtained.

    p: two-sided p-value for "no difference" (NaN when not computed), p_mc_se its Monte-Carlo SE;
    covers: the variation the interval covers, e.g. "test images" or "seeds and test images".
    """

    diff: float
    lo: float
    hi: float
    n_boot: int
    level: float
    method: str  # description of the interval procedure, for table notes
    p: float = float("nan")
    p_mc_se: float = 0.0
    covers: str = "test images"


def paired_mean_diff(method, reference, *, n_boot: int = N_BOOT_PER_IMAGE, level: float = LEVEL,
                     seed: int = 0) -> Estimate:
    """Mean of method − reference for a per-image metric (MSE, PSNR, SSIM, LPIPS).

    `method`, `reference`: arrays (S, N), seeds × test images, paired by (seed, image); (N,) is S = 1.
    S = 1: centred bootstrap over the images. S ≥ 2: t interval from the exact two-way ANOVA of
    the differences (seeds × images, see the module docstring); n_boot is then unused (0).
    """
    method = np.atleast_2d(np.asarray(method, dtype=np.float64))
    reference = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    if method.shape != reference.shape or method.ndim != 2 or method.shape[1] < 2:
        raise ValueError(f"expected paired (S, N) arrays of one length N ≥ 2, got shapes "
                         f"{method.shape} and {reference.shape}")
    if not (np.isfinite(method).all() and np.isfinite(reference).all()):
        raise ValueError("per-image values: expected finite numbers, got NaN or inf")
    s, n = method.shape
    if s == 1:
        return paired_set_diff(mean_stat, method, reference, n_boot=n_boot, level=level, seed=seed)
    _check_level(level)
    d = method - reference
    per_seed, per_image = d.mean(axis=1), d.mean(axis=0)
    resid = d - per_seed[:, None] - per_image[None, :] + d.mean()
    between = per_seed.var(ddof=1)                            # E: σ_a² + σ_c²/N
    within = (resid ** 2).sum() / ((s - 1) * (n - 1)) / n      # E: σ_c²/N
    image = per_image.var(ddof=1) / n                          # E: σ_b²/N + σ_c²/(SN)
    return _seed_level(per_seed, between, within, image, n, level, 0, 0.0,
                       f"{s} seeds × {n} test images, two-way ANOVA", "seeds and test images")


def paired_set_diff(stat: Stat, method_items: Sequence, reference_items: Sequence, *,
                    n_boot: int = N_BOOT_SET, level: float = LEVEL, seed: int = 0,
                    unit: str = "test images", resampling: str = "bootstrap") -> Estimate:
    """Mean over seeds of stat(method) − stat(reference), with an interval over paired items.

    `method_items`, `reference_items`: one array per seed whose first axis is the item axis; item i
    of the method corresponds to item i of the reference, and item i of every seed is resampled
    together (the seeds score the same test images). `unit` names the items.
    resampling: "bootstrap" (n_boot resamples; one seed: interval centred on the estimate) or
    "jackknife" (delete-a-group, no duplicates, no Monte-Carlo error; one seed: t interval with the
    jackknife SE; n_boot unused, recorded as 0). Use the jackknife for FID: duplicates in a
    bootstrap resample lower its covariance rank, which widens the bootstrap spread of a
    difference of FIDs beyond its sampling spread (coverage 0.995 at N = 128, 1.0 for FID-gen,
    tests/test_fid_coverage.py). S ≥ 2: t interval over seeds and items (module docstring)
    whose image-level terms come from the joint resamples.
    """
    if len(method_items) != len(reference_items) or not len(method_items):
        raise ValueError(f"expected the same number (≥ 1) of seeds for method and reference, got "
                         f"{len(method_items)} and {len(reference_items)}")
    sizes = {len(items) for items in (*method_items, *reference_items)}
    if len(sizes) != 1 or min(sizes) < 2:
        raise ValueError(f"expected paired item arrays of one length N ≥ 2, got lengths {sorted(sizes)}")
    if resampling not in ("bootstrap", "jackknife"):
        raise ValueError(f"resampling: expected 'bootstrap' or 'jackknife', got {resampling!r}")
    if resampling == "bootstrap" and n_boot < 2:
        raise ValueError(f"n_boot: expected ≥ 2 resamples, got {n_boot}")
    _check_level(level)
    (n,), s = sizes, len(method_items)
    pairs = [(stat(m), stat(r)) for m, r in zip(method_items, reference_items)]
    ones = np.ones((1, n), dtype=np.int64)
    per_seed = np.array([em(ones)[0] - er(ones)[0] for em, er in pairs])
    rng = np.random.default_rng(seed)
    if resampling == "jackknife":
        counts = _jackknife_counts(n, rng)
        boot = np.array([em(counts) - er(counts) for em, er in pairs])  # (S, groups)
        g = len(counts)
        variance, n_boot, var_mc_se = (lambda x, axis=None: (g - 1) * x.var(axis=axis)), 0, 0.0
        what = f"delete-a-group jackknife ({g} groups)"
    else:
        boot = _bootstrap(pairs, n, n_boot, rng)  # (S, n_boot)
        variance, var_mc_se = (lambda x, axis=None: x.var(axis=axis, ddof=1)), np.sqrt(2 / (n_boot - 1))
        what = f"bootstrap variances from {n_boot} joint resamples"
    if not (np.isfinite(per_seed).all() and np.isfinite(boot).all()):
        raise ValueError(f"the statistic is not finite on the items or a resample of {n} {unit}")
    if s == 1 and resampling == "bootstrap":
        what = f"bootstrap centred on the estimate over {n} {unit}, {boot.shape[1]} resamples"
        return centred_estimate(float(per_seed[0]), boot[0], level, what, unit)
    if s == 1:
        var = float(variance(boot[0]))
        return _t_estimate(float(per_seed[0]), var, float(len(counts) - 1), level, 0, 0.0,
                           f"t interval with the {what} SE over {n} {unit}", unit)
    mean = boot.mean(axis=0)
    image = float(variance(mean))
    within = s / (s - 1) * float(variance(boot - mean, axis=1).mean())
    return _seed_level(per_seed, per_seed.var(ddof=1), within, image, n, level, n_boot,
                       var_mc_se * (image + within / s), f"{s} seeds × {n} {unit}, {what}",
                       f"seeds and {unit}")


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level: expected 0 < level < 1, got {level}")


def centred_estimate(diff: float, resampled: np.ndarray, level: float, method: str, covers: str,
                     scale: float = 1.0) -> Estimate:
    """Interval and p-value from resampled statistics centred on their median.

    (T* − med T*)·scale stands for θ̂ − θ: [θ̂ − q_hi, θ̂ − q_lo] of that spread, and the two-sided p
    of θ̂ under it (add-one counts, so p ≥ 2 / (B + 1)). The median, not the mean: the point then lies
    in its interval whatever the distribution's shape. A mean leaves the central 95 % when nearly all
    resamples agree and a few do not, as PRDC's subsample counts do when every run scores 0.
    """
    b = len(resampled)
    null = (resampled - np.median(resampled)) * scale
    q_lo, q_hi = np.quantile(null, [(1 - level) / 2, (1 + level) / 2])
    tail = (min(np.sum(null >= diff), np.sum(null <= diff)) + 1) / (b + 1)
    p = min(1.0, 2 * tail)
    se = 0.0 if p == 1 else 2 * np.sqrt(tail * (1 - tail) / b)
    return Estimate(diff, float(diff - q_hi), float(diff - q_lo), b, level, method, float(p), float(se), covers)


def _seed_level(per_seed, between, within, image, n: int, level: float, n_boot: int, var_mc_se: float,
                scope: str, covers: str) -> Estimate:
    """t interval over seeds and items: V = max(between − within, 0)/S + image, Satterthwaite df."""
    s = len(per_seed)
    seed_part = max(between - within, 0.0) / s
    var = seed_part + image
    terms = [(image, n - 1)]
    if seed_part > 0:
        terms += [(between / s, s - 1), (within / s, (s - 1) * (n - 1))]
    denom = sum(t * t / df for t, df in terms)
    df = var * var / denom if denom > 0 else float(n - 1)
    return _t_estimate(float(per_seed.mean()), var, df, level, n_boot, var_mc_se,
                       f"t interval over {scope} (seed and image variance, Satterthwaite df {df:.1f})",
                       covers)


def _t_estimate(diff: float, var: float, df: float, level: float, n_boot: int, var_mc_se: float,
                method: str, covers: str) -> Estimate:
    """diff ± t_df √var and the two-sided p of diff / √var; p_mc_se: p's change when var moves
    by its Monte-Carlo SE var_mc_se (0 when var has no resampling noise)."""
    from scipy import stats as sps  # here, not at import: the workflow's parse imports this module

    half = float(sps.t.ppf((1 + level) / 2, df) * np.sqrt(var))

    def p_at(v):
        return float(diff == 0) if v <= 0 else float(2 * sps.t.sf(abs(diff) / np.sqrt(v), df))

    p = p_at(var)
    se = abs(p_at(var + var_mc_se) - p_at(max(var - var_mc_se, 0.0))) / 2 if var_mc_se else 0.0
    return Estimate(diff, diff - half, diff + half, n_boot, level, method, p, se, covers)


def _bootstrap(pairs, n: int, n_boot: int, rng) -> np.ndarray:
    """(S, n_boot) resampled differences per seed; one count vector serves every seed."""
    block = max(1, _COUNTS_PER_BLOCK // n)
    out = np.empty((len(pairs), n_boot))
    for start in range(0, n_boot, block):
        counts = _counts(rng, min(block, n_boot - start), n)
        for k, (em, er) in enumerate(pairs):
            out[k, start:start + len(counts)] = em(counts) - er(counts)
    return out


def _jackknife_counts(n: int, rng) -> np.ndarray:
    """(G, n) counts leaving out one group each: G = n single items up to JACKKNIFE_GROUPS, else
    JACKKNIFE_GROUPS groups of a random partition (sizes differ by at most one)."""
    if n <= JACKKNIFE_GROUPS:
        return 1 - np.eye(n, dtype=np.int64)
    counts = np.ones((JACKKNIFE_GROUPS, n), dtype=np.int64)
    for k, group in enumerate(np.array_split(rng.permutation(n), JACKKNIFE_GROUPS)):
        counts[k, group] = 0
    return counts


def _counts(rng, rows: int, n: int) -> np.ndarray:
    """(rows, n) counts of n draws with replacement from n items, one resample per row."""
    draws = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
    return np.bincount(draws.ravel(), minlength=rows * n).reshape(rows, n)


def mean_stat(values) -> Evaluate:
    """Mean of per-item values (N,)."""
    values = np.asarray(values, dtype=np.float64)
    return lambda counts: counts @ values / counts.sum(axis=1)


def hfer_stat(energies) -> Evaluate:
    """HFER = Σ h_model_i / Σ h_data_i from per-image high-band energies, items (N, 2).

    The ratio of sums equals spectra.hfer of the mean power spectra, since the high band's energy
    of the mean spectrum is the mean of the images' high-band energies.
    """
    energies = np.asarray(energies, dtype=np.float64)
    if energies.ndim != 2 or energies.shape[1] != 2:
        raise ValueError(f"HFER items: expected (N, 2) of (h_model, h_data), got {energies.shape}")
    return lambda counts: (counts @ energies[:, 0]) / (counts @ energies[:, 1])


def fid_stat(mu_ref, sigma_ref) -> Stat:
    """FID-gen: Fréchet distance of resampled features (N, d) to fixed reference statistics.

    For samples paired by prior draw, against the test split's cached statistics (held fixed:
    the interval is conditional on them, they are common to method and reference).
    """
    mu_ref = np.asarray(mu_ref, dtype=np.float64)
    sigma_ref = np.asarray(sigma_ref, dtype=np.float64)
    return lambda feats: _ResampledFID(feats, mu_ref, sigma_ref)


class _ResampledFID:
    """FID of the features resampled with integer counts w, without materialising the resample.

    With F0 the features centred at their own mean μ0 (rows f_i), m = Σ w, e = F0ᵀ w / m and
    C = I − 1wᵀ/m (C F0 centres the rows at the resample mean μ0 + e):
      ||μ_w − μ_ref||² = ||e + μ0 − μ_ref||²,
      Σ_w = Yᵀ Y with Y = diag(√w) C F0 / √(m − 1), so Tr Σ_w = (Σ w_i ||f_i||² − m ||e||²) / (m − 1),
      Tr (Σ_ref Σ_w)^½ = Σ √eig(Y Σ_ref Yᵀ) and Y Σ_ref Yᵀ = diag(√w) C G Cᵀ diag(√w) / (m − 1)
    with G = F0 Σ_ref F0ᵀ computed once: (C G Cᵀ)_ij = G_ij − g_i − g_j + wᵀg / m, g = G w / m.
    Rows with w_i = 0 vanish, so each resample costs O(N d) plus an eigendecomposition of the
    k×k block of its k ≈ 0.63 N distinct items. With N > d the d×d form is cheaper: weighted
    stats, then fid.frechet_distance (two d×d eigendecompositions per resample).
    """

    def __init__(self, feats, mu_ref, sigma_ref):
        feats = np.asarray(feats, dtype=np.float64)
        if feats.ndim != 2 or feats.shape[1] != mu_ref.shape[0]:
            raise ValueError(f"FID features: expected (N, {mu_ref.shape[0]}), got {feats.shape}")
        self.mu0 = feats.mean(axis=0)
        self.f0 = feats - self.mu0
        self.mu_ref, self.sigma_ref = mu_ref, sigma_ref
        n, d = feats.shape
        self.gram = n <= d
        if self.gram:
            self.sq = np.einsum("ij,ij->i", self.f0, self.f0)
            self.g = self.f0 @ sigma_ref @ self.f0.T
            self.trace_ref = np.trace(sigma_ref)

    def __call__(self, counts) -> np.ndarray:
        one = self._gram_form if self.gram else self._dspace_form
        return np.array([one(w.astype(np.float64)) for w in np.atleast_2d(counts)])

    def _gram_form(self, w) -> float:
        m = w.sum()
        e = w @ self.f0 / m
        mean = e + self.mu0 - self.mu_ref
        trace = (w @ self.sq - m * (e @ e)) / (m - 1)
        drawn = np.flatnonzero(w)
        wd, gb = w[drawn], self.g[np.ix_(drawn, drawn)]
        g = gb @ wd / m
        root = np.sqrt(wd / (m - 1))
        block = (gb - g[:, None] - g[None, :] + (wd @ g) / m) * root[:, None] * root[None, :]
        tr_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(block), 0, None)).sum()
        return float(mean @ mean + trace + self.trace_ref - 2 * tr_sqrt)

    def _dspace_form(self, w) -> float:
        m = w.sum()
        e = w @ self.f0 / m
        sigma = ((self.f0 * w[:, None]).T @ self.f0 - m * np.outer(e, e)) / (m - 1)
        return fid.frechet_distance(self.mu0 + e, sigma, self.mu_ref, self.sigma_ref)


def fid_recon_stat(items) -> Evaluate:
    """FID-recon paired on both sides: FID(reconstructions, their test images), both resampled alike.

    items (N, 2, d): items[i, 0] the Inception features of the reconstruction of test image i,
    items[i, 1] those of test image i itself. On counts w the value is the FID between the
    w-weighted reconstruction features and the w-weighted test features, so every resample
    compares the same images on both sides. The point estimate (all w = 1) is therefore the FID
    against the test features of these same N images, not against the cached statistics of the
    full test split.

    Gram form (N ≤ d), with A0, B0 the centred reconstruction and test features, C = I − 1wᵀ/m and
    Ya = diag(√w) C A0 / √(m − 1) (Σ_a = YaᵀYa), Yb likewise: Tr(Σ_a Σ_b)^½ is the nuclear norm of
    Yb Yaᵀ = diag(√w) C (B0 A0ᵀ) Cᵀ diag(√w) / (m − 1), a k×k block of the N×N cross-Gram computed
    once (k distinct items drawn); the traces and the mean term are quadratic forms in w of the
    Gram matrices. With N > d: weighted d×d statistics and fid.frechet_distance.
    """
    return _PairedFID(items)


class _PairedFID:
    """Evaluate of fid_recon_stat: N×N Gram matrices once, an SVD of k×k per resample."""

    def __init__(self, items):
        items = np.asarray(items, dtype=np.float64)
        if items.ndim != 3 or items.shape[1] != 2 or items.shape[0] < 2:
            raise ValueError(f"FID-recon items: expected (N ≥ 2, 2, d) of (reconstruction, test image) "
                             f"features, got {items.shape}")
        if not np.isfinite(items).all():
            raise ValueError("FID-recon items: expected finite features, got NaN or inf")
        a, b = items[:, 0], items[:, 1]
        n, d = a.shape
        self.a0, self.b0 = a - a.mean(axis=0), b - b.mean(axis=0)
        self.shift = a.mean(axis=0) - b.mean(axis=0)
        self.gram = n <= d
        if self.gram:
            diff = self.a0 - self.b0
            self.ga, self.gb = self.a0 @ self.a0.T, self.b0 @ self.b0.T
            self.gd, self.hd = diff @ diff.T, diff @ self.shift
            self.cross = self.b0 @ self.a0.T

    def __call__(self, counts) -> np.ndarray:
        w = np.atleast_2d(counts).astype(np.float64)
        if not self.gram:
            return np.array([self._dspace_form(row) for row in w])
        m = w.sum(axis=1)
        quad = lambda g: np.einsum("ri,ij,rj->r", w, g, w)
        mean = self.shift @ self.shift + 2 * (w @ self.hd) / m + quad(self.gd) / m ** 2
        trace_a = (w @ np.diag(self.ga) - quad(self.ga) / m) / (m - 1)
        trace_b = (w @ np.diag(self.gb) - quad(self.gb) / m) / (m - 1)
        nuclear = np.array([self._nuclear(row) for row in w])
        return mean + trace_a + trace_b - 2 * nuclear

    def _nuclear(self, w) -> float:
        m = w.sum()
        drawn = np.flatnonzero(w)
        wd, x = w[drawn], self.cross[np.ix_(drawn, drawn)]
        rows, cols = x @ wd / m, wd @ x / m
        root = np.sqrt(wd / (m - 1))
        block = (x - rows[:, None] - cols[None, :] + (wd @ rows) / m) * root[:, None] * root[None, :]
        return float(np.linalg.svd(block, compute_uv=False).sum())

    def _dspace_form(self, w) -> float:
        m = w.sum()
        ea, eb = w @ self.a0 / m, w @ self.b0 / m
        sa = ((self.a0 * w[:, None]).T @ self.a0 - m * np.outer(ea, ea)) / (m - 1)
        sb = ((self.b0 * w[:, None]).T @ self.b0 - m * np.outer(eb, eb)) / (m - 1)
        return fid.frechet_distance(self.shift + ea, sa, eb, sb)


def closeness_to_one(stat: Stat) -> Stat:
    """−|value − 1|: makes a "best at 1" statistic (HFER) one where higher is better ("max")."""
    def bind(items) -> Evaluate:
        evaluate = stat(items)
        return lambda counts: -np.abs(evaluate(counts) - 1.0)
    return bind


def verdict(estimate: Estimate, direction: str) -> str:
    """Unadjusted verdict from the interval: "better", "worse" or "no detectable difference" (CI ∋ 0).

    direction: "min" (lower is better) or "max" (higher is better). For a metric best at 1 such as
    HFER, bootstrap closeness_to_one(hfer_stat) and use "max".
    """
    _check_direction(direction)
    if not (np.isfinite(estimate.lo) and np.isfinite(estimate.hi)):
        raise ValueError(f"estimate has a non-finite CI [{estimate.lo}, {estimate.hi}]")
    if estimate.lo <= 0 <= estimate.hi:
        return "no detectable difference"
    return _direction_word(estimate.hi < 0, direction)


def adjusted_verdict(diff: float, p_adjusted: float, direction: str, alpha: float = ALPHA) -> str:
    """Verdict after multiplicity adjustment: significant when p_adjusted ≤ alpha, sign from diff."""
    _check_direction(direction)
    if not 0 <= p_adjusted <= 1 or not 0 < alpha < 1 or not np.isfinite(diff):
        raise ValueError(f"expected 0 ≤ p_adjusted ≤ 1, 0 < alpha < 1 and a finite diff, got "
                         f"{p_adjusted}, {alpha} and {diff}")
    if p_adjusted > alpha or diff == 0:
        return "no detectable difference"
    return _direction_word(diff < 0, direction)


def _check_direction(direction: str) -> None:
    if direction not in ("min", "max"):
        raise ValueError(f"direction: expected 'min' or 'max', got {direction!r}")


def _direction_word(lower: bool, direction: str) -> str:
    return "better" if lower == (direction == "min") else "worse"


def _check_p(pvalues) -> np.ndarray:
    p = np.asarray(pvalues, dtype=np.float64)
    if p.ndim != 1 or not ((p >= 0) & (p <= 1)).all():
        raise ValueError(f"p-values: expected a 1-d array of values in [0, 1], got {pvalues!r}")
    return p


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error): max_{j ≤ i} (m − j + 1) p_(j), ≤ 1."""
    p = _check_p(pvalues)
    m, order = len(p), np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out


def benjamini_yekutieli(pvalues) -> np.ndarray:
    """Benjamini–Yekutieli adjusted p-values (false discovery rate under any dependence).

    min_{j ≥ i} m c(m) p_(j) / j with c(m) = Σ_{k ≤ m} 1/k, capped at 1.
    """
    p = _check_p(pvalues)
    m, order = len(p), np.argsort(p, kind="stable")
    scaled = m * np.sum(1.0 / np.arange(1, m + 1)) * p[order] / np.arange(1, m + 1)
    adjusted = np.minimum(1.0, np.minimum.accumulate(scaled[::-1])[::-1])
    out = np.empty(m)
    out[order] = adjusted
    return out


def fragile(pvalues, mc_se, adjust: Callable = holm, alpha: float = ALPHA) -> np.ndarray:
    """Cells whose adjusted verdict flips when every raw p moves by ±2 Monte-Carlo SE.

    Holm and BY adjusted p-values are non-decreasing in every raw p, so adjusting p − 2 SE and
    p + 2 SE brackets each cell's adjusted p; the cell is fragile when alpha falls in the bracket.
    """
    p, se = _check_p(pvalues), np.asarray(mc_se, dtype=np.float64)
    if se.shape != p.shape or (se < 0).any():
        raise ValueError(f"mc_se: expected {p.shape} non-negative SEs, got {mc_se!r}")
    low, high = adjust(np.clip(p - 2 * se, 0, 1)), adjust(np.clip(p + 2 * se, 0, 1))
    return (low <= alpha) != (high <= alpha)


def adjust_family(estimates: Sequence[Estimate], directions: Sequence[str], adjust: Callable = holm,
                  alpha: float = ALPHA) -> list[tuple[float, str, bool]]:
    """(adjusted p, adjusted verdict, fragile) of each cell of one family (one dataset's table).

    estimates: the estimates the verdicts come from (for HFER, of closeness to one), each with a p;
    directions: "min" or "max" per cell.
    """
    if len(estimates) != len(directions):
        raise ValueError(f"expected one direction per estimate, got {len(directions)} for {len(estimates)}")
    if not estimates:
        return []
    p = [e.p for e in estimates]
    adjusted = adjust(p)
    flags = fragile(p, [e.p_mc_se for e in estimates], adjust, alpha)
    return [(float(q), adjusted_verdict(e.diff, float(q), d, alpha), bool(f))
            for e, q, d, f in zip(estimates, adjusted, directions, flags)]


def resamples_to_resolve(p: float, threshold: float) -> int:
    """Smallest B at which a bootstrap p (two tails, add-one counts) lies 2 Monte-Carlo SE below `threshold`.

    With tail probability π = p/2 the estimate 2 (k + 1)/(B + 1), k ~ Binomial(B, π), has mean
    2 (Bπ + 1)/(B + 1) (the add-one raises it by ≈ 2/B) and SE 2 √(π(1 − π)/B).
    """
    if not 0 < p < threshold < 1:
        raise ValueError(f"expected 0 < p < threshold < 1, got p = {p}, threshold = {threshold}")
    tail = p / 2
    resolved = lambda b: 2 * (b * tail + 1) / (b + 1) + 4 * np.sqrt(tail * (1 - tail) / b) <= threshold
    high = 1
    while not resolved(high):
        high *= 2
    low = high // 2  # resolved(high) and not resolved(low); the condition is monotone in B
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if resolved(mid) else (mid, high)
    return high
