"""Paired differences against a reference method with percentile bootstrap confidence intervals.

Why paired: method and reference are scored on the same test images (and the same prior draws),
so image-to-image variation cancels in the difference and the CI only reflects what differs.

One engine serves every metric. A bootstrap resample of N paired items is a vector of integer
counts (how often each item was drawn, summing to N); the same counts are applied to the method's
and the reference's items. A statistic is bound to one seed's items and then evaluated on a batch
of count vectors, so per-image means and HFER are a matrix product and FID needs no materialised
resample (see `fid_stat`). With S > 1 seeds the bootstrap is hierarchical: seeds are drawn with
replacement, then images within each drawn seed, and the difference is averaged over the drawn
seeds; so the CI also covers seed-to-seed variation.

Default resample counts (benchmarks/bench_bootstrap_fid.py, one core, d = 2048):
- per-image metrics: N_BOOT_PER_IMAGE = 2000 (a few ms for 256 images);
- set metrics: N_BOOT_SET = 250. One FID resample costs about 0.22 ms at N = 128 and 0.8 ms at
  N = 256 (an eigendecomposition of the Gram block of the ≈ 0.63 N distinct images drawn), plus
  about 40 ms once per feature set (F Σ_ref Fᵀ). A comparison evaluates method and reference on
  every resample, so 2 FIDs × 10 methods × 2 × (250 × 0.8 ms + 40 ms) ≈ 10 s per dataset at
  N = 256 with one seed (≈ 3 s at N = 128); the cost grows in proportion to the number of seeds.
  250 resamples still leave about 6 draws beyond each endpoint of a 95 % CI.
  Every Estimate records its n_boot, so tables can state it.

Bootstrapped FID is biased upwards (duplicates lower the rank of the covariance); the bias is
similar for method and reference and largely cancels in the difference, which is what is bootstrapped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .metrics import fid

N_BOOT_PER_IMAGE = 2000
N_BOOT_SET = 250
LEVEL = 0.95
_COUNTS_PER_BLOCK = 1 << 21  # resampled counts held in memory at once (16 MB), bounds large N

Evaluate = Callable[[np.ndarray], np.ndarray]  # counts (R, N) int -> statistic values (R,)
Stat = Callable[[np.ndarray], Evaluate]        # one seed's items (N, ...) -> Evaluate


@dataclass(frozen=True)
class Estimate:
    """method − reference: point estimate `diff`, CI [lo, hi] at `level`, and how it was obtained."""

    diff: float
    lo: float
    hi: float
    n_boot: int
    level: float
    method: str  # description of the CI procedure, for table notes


def paired_mean_diff(method, reference, *, n_boot: int = N_BOOT_PER_IMAGE, level: float = LEVEL,
                     seed: int = 0) -> Estimate:
    """Mean of method − reference for a per-image metric (MSE, PSNR, SSIM, LPIPS).

    `method`, `reference`: arrays (S, N), seeds × test images, paired by (seed, image); (N,) is S = 1.
    """
    method, reference = np.atleast_2d(method), np.atleast_2d(reference)
    return paired_set_diff(mean_stat, method, reference, n_boot=n_boot, level=level, seed=seed)


def paired_set_diff(stat: Stat, method_items: Sequence, reference_items: Sequence, *,
                    n_boot: int = N_BOOT_SET, level: float = LEVEL, seed: int = 0,
                    unit: str = "test images") -> Estimate:
    """Mean over seeds of stat(method) − stat(reference), with a bootstrap CI over paired items.

    `method_items`, `reference_items`: one array per seed whose first axis is the item axis; item i
    of the method corresponds to item i of the reference. `unit` names the items in the description.
    """
    if len(method_items) != len(reference_items) or not len(method_items):
        raise ValueError(f"expected the same number (≥ 1) of seeds for method and reference, got "
                         f"{len(method_items)} and {len(reference_items)}")
    sizes = {len(items) for items in (*method_items, *reference_items)}
    if len(sizes) != 1 or min(sizes) < 2:
        raise ValueError(f"expected paired item arrays of one length N ≥ 2, got lengths {sorted(sizes)}")
    if n_boot < 1 or not 0 < level < 1:
        raise ValueError(f"expected n_boot ≥ 1 and 0 < level < 1, got {n_boot} and {level}")
    (n,), s = sizes, len(method_items)
    pairs = [(stat(m), stat(r)) for m, r in zip(method_items, reference_items)]
    ones = np.ones((1, n), dtype=np.int64)
    diff = float(np.mean([em(ones)[0] - er(ones)[0] for em, er in pairs]))
    boot = _bootstrap(pairs, n, n_boot, np.random.default_rng(seed))
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    scope = f"{n} {unit}" if s == 1 else f"{s} seeds × {n} {unit}"
    kind = "percentile bootstrap" if s == 1 else "hierarchical percentile bootstrap"
    return Estimate(diff, float(lo), float(hi), n_boot, level, f"{kind} over {scope}, {n_boot} resamples")


def _bootstrap(pairs, n: int, n_boot: int, rng) -> np.ndarray:
    """n_boot resampled differences: seeds drawn with replacement, then items within each draw."""
    s = len(pairs)
    block = max(1, _COUNTS_PER_BLOCK // (s * n))
    out = np.empty(n_boot)
    for start in range(0, n_boot, block):
        b = min(block, n_boot - start)
        seeds = rng.integers(0, s, size=b * s)
        counts = _counts(rng, b * s, n)
        values = np.empty(b * s)
        for k, (em, er) in enumerate(pairs):
            rows = seeds == k
            if rows.any():
                values[rows] = em(counts[rows]) - er(counts[rows])
        out[start:start + b] = values.reshape(b, s).mean(axis=1)
    return out


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
    """Fréchet distance of resampled features (N, d) to fixed reference statistics of the test split."""
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


def from_sample(fn: Callable[[np.ndarray], float]) -> Stat:
    """Any statistic of a sample, evaluated on each materialised resample (general but slow)."""
    def bind(items) -> Evaluate:
        items = np.asarray(items)
        return lambda counts: np.array([fn(np.repeat(items, c, axis=0)) for c in counts], float)
    return bind


def closeness_to_one(stat: Stat) -> Stat:
    """−|value − 1|: makes a "best at 1" statistic (HFER) one where higher is better ("max")."""
    def bind(items) -> Evaluate:
        evaluate = stat(items)
        return lambda counts: -np.abs(evaluate(counts) - 1.0)
    return bind


def verdict(estimate: Estimate, direction: str) -> str:
    """"better", "worse" or "no detectable difference" (CI contains 0) for method vs reference.

    direction: "min" (lower is better) or "max" (higher is better). For a metric best at 1 such as
    HFER, bootstrap closeness_to_one(hfer_stat) and use "max".
    """
    if direction not in ("min", "max"):
        raise ValueError(f"direction: expected 'min' or 'max', got {direction!r}")
    if not (np.isfinite(estimate.lo) and np.isfinite(estimate.hi)):
        raise ValueError(f"estimate has a non-finite CI [{estimate.lo}, {estimate.hi}]")
    if estimate.lo <= 0 <= estimate.hi:
        return "no detectable difference"
    lower = estimate.hi < 0
    return "better" if lower == (direction == "min") else "worse"
