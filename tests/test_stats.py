"""Paired bootstrap CIs: zero for identical inputs, coverage, hierarchy, fast FID = direct, verdicts."""

import numpy as np
import pytest
import torch

from blurbench import stats
from blurbench.metrics import fid, spectra


def pool3_like(rng, n, d, scale=1.0):
    """Non-negative low-rank-plus-noise features with a large common mean, like Inception pool3."""
    basis = np.random.default_rng(99).standard_normal((8, d))
    return np.abs(scale * rng.standard_normal((n, 8)) @ basis + 0.3 * rng.standard_normal((n, d))) + 0.5


def reference_stats(d):
    return fid.stats(pool3_like(np.random.default_rng(7), 3 * d, d, scale=1.1))


def resample_counts(rng, n):
    return np.bincount(rng.integers(0, n, n), minlength=n)


def test_identical_inputs_give_zero_difference_and_zero_ci():
    rng = np.random.default_rng(0)
    values = rng.standard_normal((2, 50))
    feats = [pool3_like(rng, 20, 32)]
    energies = [rng.uniform(0.5, 1.5, (30, 2))]
    for est in (stats.paired_mean_diff(values, values.copy()),
                stats.paired_set_diff(stats.fid_stat(*reference_stats(32)), feats, feats, n_boot=50),
                stats.paired_set_diff(stats.hfer_stat, energies, energies)):
        assert (est.diff, est.lo, est.hi) == (0.0, 0.0, 0.0)
        assert stats.verdict(est, "min") == "no detectable difference"


def test_ci_covers_a_known_shift_at_about_the_nominal_rate():
    shift, n, reps = 0.3, 100, 200
    covered = []
    for rep in range(reps):
        rng = np.random.default_rng(1000 + rep)
        reference = 2.0 * rng.standard_normal(n)  # image-to-image spread, cancelled by pairing
        method = reference + shift + 0.5 * rng.standard_normal(n)
        est = stats.paired_mean_diff(method, reference, seed=rep)
        assert est.n_boot == 2000 and est.level == 0.95
        assert est.hi - est.lo < 0.3  # pairing: the width reflects the 0.5 noise, not the 2.0 spread
        covered.append(est.lo <= shift <= est.hi)
    assert 0.90 <= np.mean(covered) <= 0.99


def test_hierarchical_ci_is_wider_than_images_only_ci_of_pooled_data():
    rng = np.random.default_rng(1)
    s, n = 3, 200
    reference = rng.standard_normal((s, n))
    seed_effect = 0.5 * rng.standard_normal((s, 1))
    method = reference + 0.2 + seed_effect + 0.3 * rng.standard_normal((s, n))
    hier = stats.paired_mean_diff(method, reference)
    pooled = stats.paired_mean_diff(method.reshape(1, -1), reference.reshape(1, -1))
    assert hier.diff == pytest.approx(pooled.diff)
    assert hier.hi - hier.lo > 3 * (pooled.hi - pooled.lo)
    assert hier.method == ("hierarchical percentile bootstrap over 3 seeds × 200 test images, "
                           "2000 resamples")
    assert pooled.method == "percentile bootstrap over 600 test images, 2000 resamples"


def test_resampled_fid_with_all_weights_one_is_the_plain_fid():
    rng = np.random.default_rng(2)
    d = 256
    mu_ref, sigma_ref = reference_stats(d)
    feats = pool3_like(rng, 64, d)
    fast = stats.fid_stat(mu_ref, sigma_ref)(feats)(np.ones((1, 64), int))[0]
    plain = fid.frechet_distance(*fid.stats(feats), mu_ref, sigma_ref)
    assert fast == pytest.approx(plain, rel=1e-6)


def test_resampled_fid_at_2048_dims_equals_the_exact_gram_fid():
    rng = np.random.default_rng(3)
    mu_ref, sigma_ref = fid.stats(rng.standard_normal((2100, 2048)) * 0.1 + 0.3)
    feats = pool3_like(rng, 128, 2048)
    evaluate = stats.fid_stat(mu_ref, sigma_ref)(feats)
    assert evaluate(np.ones((1, 128), int))[0] == pytest.approx(
        fid.frechet_distance_features(feats, mu_ref, sigma_ref), rel=1e-9)
    w = resample_counts(rng, 128)
    assert evaluate(w[None])[0] == pytest.approx(
        fid.frechet_distance_features(np.repeat(feats, w, 0), mu_ref, sigma_ref), rel=1e-6)


@pytest.mark.parametrize("n, d", [(64, 256), (50, 16)])  # Gram form (N ≤ d) and d×d form (N > d)
def test_resampled_fid_equals_the_fid_of_the_materialised_resample(n, d):
    rng = np.random.default_rng(4)
    mu_ref, sigma_ref = reference_stats(d)
    feats = pool3_like(rng, n, d)
    evaluate = stats.fid_stat(mu_ref, sigma_ref)(feats)
    counts = np.stack([resample_counts(rng, n) for _ in range(3)])
    assert counts.max() > 1  # duplicates: not the identity resample
    fast = evaluate(counts)
    direct = [fid.frechet_distance(*fid.stats(np.repeat(feats, w, 0)), mu_ref, sigma_ref)
              for w in counts]
    np.testing.assert_allclose(fast, direct, rtol=1e-6)


def test_fid_bootstrap_equals_the_bootstrap_of_materialised_resamples():
    rng = np.random.default_rng(5)
    d = 32
    mu_ref, sigma_ref = reference_stats(d)
    method = [pool3_like(rng, 20, d, scale=1.3) for _ in range(2)]
    reference = [pool3_like(rng, 20, d) for _ in range(2)]
    direct_fid = lambda x: fid.frechet_distance(*fid.stats(x), mu_ref, sigma_ref)
    fast = stats.paired_set_diff(stats.fid_stat(mu_ref, sigma_ref), method, reference, n_boot=40)
    slow = stats.paired_set_diff(stats.from_sample(direct_fid), method, reference, n_boot=40)
    np.testing.assert_allclose([fast.diff, fast.lo, fast.hi], [slow.diff, slow.lo, slow.hi], rtol=1e-6)
    assert fast.lo < fast.hi and fast.n_boot == 40


def test_hfer_stat_is_spectra_hfer_of_the_mean_spectra():
    g = torch.Generator().manual_seed(6)
    data = torch.rand(12, 3, 16, 16, generator=g, dtype=torch.float64)
    recon = 0.5 * data + 0.5 * data.roll(1, dims=-1)  # a mild horizontal blur
    high = torch.from_numpy(spectra.radial_frequency(16, 16) > 0.25)
    energy = lambda x: (torch.fft.fft2(x, norm="ortho").abs().pow(2).mean(1) * high).sum((1, 2))
    items = torch.stack([energy(recon), energy(data)], 1).numpy()
    value = stats.hfer_stat(items)(np.ones((1, 12), int))[0]
    expected = spectra.hfer(spectra.mean_power_spectrum(recon), spectra.mean_power_spectrum(data))
    assert value == pytest.approx(expected, rel=1e-12) and value < 1
    closeness = stats.closeness_to_one(stats.hfer_stat)(items)(np.ones((1, 12), int))[0]
    assert closeness == pytest.approx(-(1 - expected), rel=1e-12)


def test_closeness_to_one_prefers_the_hfer_nearer_one():
    rng = np.random.default_rng(8)
    h_data = rng.uniform(1, 2, 100)
    blurry = np.stack([0.6 * h_data * rng.uniform(0.9, 1.1, 100), h_data], 1)
    sharp = np.stack([0.95 * h_data * rng.uniform(0.9, 1.1, 100), h_data], 1)
    est = stats.paired_set_diff(stats.closeness_to_one(stats.hfer_stat), [sharp], [blurry])
    assert est.diff == pytest.approx(0.35, abs=0.02)
    assert stats.verdict(est, "max") == "better"


def test_same_seed_same_ci_other_seed_slightly_different():
    rng = np.random.default_rng(9)
    reference = rng.standard_normal((2, 80))
    method = reference + 0.1 + 0.5 * rng.standard_normal((2, 80))
    a, b, c = (stats.paired_mean_diff(method, reference, seed=seed) for seed in (1, 1, 2))
    assert a == b
    assert a.diff == c.diff and (a.lo, a.hi) != (c.lo, c.hi)
    assert abs(a.lo - c.lo) < 0.2 * (a.hi - a.lo) and abs(a.hi - c.hi) < 0.2 * (a.hi - a.lo)


def test_verdict_for_both_directions():
    est = lambda lo, hi: stats.Estimate((lo + hi) / 2, lo, hi, 2000, 0.95, "hand-made")
    assert stats.verdict(est(-2.0, -0.5), "min") == "better"
    assert stats.verdict(est(-2.0, -0.5), "max") == "worse"
    assert stats.verdict(est(0.5, 2.0), "min") == "worse"
    assert stats.verdict(est(0.5, 2.0), "max") == "better"
    assert stats.verdict(est(-0.5, 2.0), "max") == "no detectable difference"
    assert stats.verdict(est(0.0, 2.0), "min") == "no detectable difference"
    with pytest.raises(ValueError, match="direction"):
        stats.verdict(est(0.5, 2.0), "closest")


def test_unpaired_inputs_are_refused():
    with pytest.raises(ValueError, match="one length"):
        stats.paired_mean_diff(np.zeros((1, 10)), np.zeros((1, 11)))
    with pytest.raises(ValueError, match="number"):
        stats.paired_set_diff(stats.mean_stat, [np.zeros(10)] * 2, [np.zeros(10)])
