"""Paired intervals: zero for identical inputs, seed level, fast FID = direct, p-values, multiplicity, verdicts.

Coverage by simulation lives in tests/test_stats_coverage.py and tests/test_fid_coverage.py.
"""

import numpy as np
import pytest
import torch
from scipy import stats as scipy_stats

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
    recon = [np.stack([feats[0], feats[0] + 1], 1)]
    for est in (stats.paired_mean_diff(values, values.copy()),
                stats.paired_mean_diff(values[:1], values[:1].copy()),
                stats.paired_set_diff(stats.fid_stat(*reference_stats(32)), feats, feats, n_boot=50),
                stats.paired_set_diff(stats.fid_recon_stat, recon, recon, resampling="jackknife"),
                stats.paired_set_diff(stats.hfer_stat, energies, energies)):
        assert (est.diff, est.lo, est.hi, est.p) == (0.0, 0.0, 0.0, 1.0)
        assert stats.verdict(est, "min") == "no detectable difference"


def test_seed_level_interval_adds_seed_variance_and_says_what_it_covers():
    """Three seeds with a seed effect: far wider than the images-only interval of the pooled data."""
    rng = np.random.default_rng(1)
    s, n = 3, 200
    reference = rng.standard_normal((s, n))
    seed_effect = 0.5 * rng.standard_normal((s, 1))
    method = reference + 0.2 + seed_effect + 0.3 * rng.standard_normal((s, n))
    seeds = stats.paired_mean_diff(method, reference)
    pooled = stats.paired_mean_diff(method.reshape(1, -1), reference.reshape(1, -1))
    assert seeds.diff == pytest.approx(pooled.diff)
    assert seeds.hi - seeds.lo > 3 * (pooled.hi - pooled.lo)
    assert (seeds.covers, pooled.covers) == ("seeds and test images", "test images")
    assert seeds.method.startswith("t interval over 3 seeds × 200 test images, two-way ANOVA")
    assert pooled.method == "bootstrap centred on the estimate over 600 test images, 20000 resamples"
    assert seeds.n_boot == 0 and pooled.n_boot == 20000


def test_exact_anova_equals_the_jackknife_engine_on_per_image_means():
    """Two implementations of the seed-level interval: exact mean squares and the generic engine."""
    rng = np.random.default_rng(11)
    reference = rng.standard_normal((4, 30))
    method = reference + 0.1 + 0.2 * rng.standard_normal((4, 1)) + 0.4 * rng.standard_normal((4, 30))
    exact = stats.paired_mean_diff(method, reference)
    generic = stats.paired_set_diff(stats.mean_stat, list(method), list(reference), resampling="jackknife")
    np.testing.assert_allclose([generic.diff, generic.lo, generic.hi, generic.p],
                               [exact.diff, exact.lo, exact.hi, exact.p], rtol=1e-9)
    assert generic.covers == "seeds and test images"


def test_one_seed_jackknife_of_a_mean_is_the_textbook_t_interval():
    rng = np.random.default_rng(12)
    d = rng.standard_normal(40) + 0.3
    est = stats.paired_set_diff(stats.mean_stat, [d], [np.zeros(40)], resampling="jackknife")
    se = d.std(ddof=1) / np.sqrt(40)
    t = scipy_stats.t.ppf(0.975, 39)
    np.testing.assert_allclose([est.lo, est.hi, est.p],
                               [d.mean() - t * se, d.mean() + t * se,
                                2 * scipy_stats.t.sf(abs(d.mean()) / se, 39)], rtol=1e-9)
    assert est.p_mc_se == 0 and est.n_boot == 0


def test_centred_bootstrap_p_agrees_with_its_interval_and_its_mc_se_is_measured():
    """p < 0.05 exactly when the 95 % interval excludes 0; the binomial SE matches p's spread over seeds."""
    rng = np.random.default_rng(13)
    agree = 0
    for shift in np.linspace(0, 0.5, 11):
        d = rng.standard_normal(60) + shift
        est = stats.paired_mean_diff(d, np.zeros(60), n_boot=4000, seed=1)
        agree += (est.p < 0.05) == (not est.lo <= 0 <= est.hi)
    assert agree >= 10  # quantile interpolation may split one borderline case
    d = rng.standard_normal(60)
    d += 2.6 * d.std(ddof=1) / np.sqrt(60) - d.mean()  # a mean ≈ 2.6 SE from 0: p ≈ 0.01
    ests = [stats.paired_mean_diff(d, np.zeros(60), n_boot=2000, seed=k) for k in range(150)]
    spread, se = np.std([e.p for e in ests], ddof=1), np.mean([e.p_mc_se for e in ests])
    assert 0.003 < np.mean([e.p for e in ests]) < 0.03
    assert 0.75 < spread / se < 1.33



@pytest.mark.parametrize("lumpy", [
    np.r_[np.zeros(999), -0.01],          # PRDC when every run scores 0: one subsample differs (the study's bug)
    np.r_[np.zeros(990), np.full(10, 5.0)],  # a few far resamples pull a mean outside the central 95 %
    np.r_[np.full(980, 0.2), np.full(20, -3.0)],
])
@pytest.mark.parametrize("scale", [1.0, 1.98])
def test_a_centred_interval_contains_its_point_when_nearly_all_resamples_agree(lumpy, scale):
    """A mean-centred spread put [lo, hi] beside the point: 17 PRDC cells of the study showed
    diff 0 in [−3.9e-5, −3.9e-5] with p 0.006. Centred on the median, the point is inside and p = 1."""
    est = stats.centred_estimate(0.0, lumpy, 0.95, "test", "test images", scale=scale)
    assert est.lo <= est.diff <= est.hi
    assert (est.lo, est.hi, est.p) == (0.0, 0.0, 1.0)


def test_a_centred_interval_of_a_constant_statistic_is_its_point_and_p_is_one_only_at_zero():
    at_zero = stats.centred_estimate(0.0, np.full(500, 0.3), 0.95, "test", "test images")
    off_zero = stats.centred_estimate(0.3, np.full(500, 0.3), 0.95, "test", "test images")
    assert (at_zero.lo, at_zero.hi, at_zero.p) == (0.0, 0.0, 1.0)
    assert (off_zero.lo, off_zero.hi) == (0.3, 0.3) and off_zero.p == pytest.approx(2 / 501)

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


def materialised(fn):
    """A Stat that evaluates fn on each resample materialised with np.repeat (slow, for checks)."""
    def bind(items):
        items = np.asarray(items)
        return lambda counts: np.array([fn(np.repeat(items, c, axis=0)) for c in counts], float)
    return bind


def test_fid_bootstrap_equals_the_bootstrap_of_materialised_resamples():
    rng = np.random.default_rng(5)
    d = 32
    mu_ref, sigma_ref = reference_stats(d)
    method = [pool3_like(rng, 20, d, scale=1.3) for _ in range(2)]
    reference = [pool3_like(rng, 20, d) for _ in range(2)]
    direct_fid = lambda x: fid.frechet_distance(*fid.stats(x), mu_ref, sigma_ref)
    for resampling in ("bootstrap", "jackknife"):
        fast = stats.paired_set_diff(stats.fid_stat(mu_ref, sigma_ref), method, reference, n_boot=40,
                                     resampling=resampling)
        slow = stats.paired_set_diff(materialised(direct_fid), method, reference, n_boot=40,
                                     resampling=resampling)
        np.testing.assert_allclose([fast.diff, fast.lo, fast.hi, fast.p],
                                   [slow.diff, slow.lo, slow.hi, slow.p], rtol=1e-6,
                                   atol=1e-7 * (slow.hi - slow.lo))  # lo is a difference of ≈ 16-size terms
        assert fast.lo < fast.hi


@pytest.mark.parametrize("n, d", [(128, 2048), (40, 16)])  # Gram form (N ≤ d) and d×d form (N > d)
def test_fid_recon_equals_the_fid_of_materialised_resamples_on_both_sides(n, d):
    """Weighted Gram form = frechet_distance of np.repeat-ed features, to 1e-6.

    The materialised features are expressed in an orthonormal basis of their row space (≤ 2N
    dims): FID depends on them only through that span, and frechet_distance in the full 2048 dims
    adds its own rounding from the rank-127 covariances' null space (3.6e-6 here, measured).
    """
    rng = np.random.default_rng(14)
    test = pool3_like(rng, n, d)
    recon = 0.7 * test + 0.3 * pool3_like(rng, n, d)
    evaluate = stats.fid_recon_stat(np.stack([recon, test], 1))
    counts = np.stack([resample_counts(rng, n) for _ in range(3)] + [np.ones(n, int)])
    assert counts[:3].max() > 1

    def direct(w):
        a, b = np.repeat(recon, w, 0), np.repeat(test, w, 0)
        basis = np.linalg.qr(np.vstack([a, b]).T)[0] if d > 2 * n else np.eye(d)
        return fid.frechet_distance(*fid.stats(a @ basis), *fid.stats(b @ basis))

    expected = [direct(w) for w in counts]
    np.testing.assert_allclose(evaluate(counts), expected, rtol=1e-6)
    assert expected[-1] > 0


def test_perfect_reconstruction_against_a_blurred_one():
    """FID-recon 0 against a blurrier reconstruction: the interval holds its estimate, excludes 0."""
    rng = np.random.default_rng(15)
    test = pool3_like(rng, 128, 2048)
    blurred = test.mean(0) + 0.6 * (test - test.mean(0)) + 0.1 * rng.standard_normal(test.shape)
    perfect, blurry = np.stack([test, test], 1), np.stack([blurred, test], 1)
    assert stats.fid_recon_stat(perfect)(np.ones((1, 128), int))[0] == pytest.approx(0, abs=1e-6)
    for resampling, n_boot in (("jackknife", 0), ("bootstrap", 200)):
        est = stats.paired_set_diff(stats.fid_recon_stat, [perfect], [blurry], n_boot=max(n_boot, 2),
                                    resampling=resampling)
        assert est.lo <= est.diff <= est.hi and est.hi < 0, (resampling, est)
        assert stats.verdict(est, "min") == "better"


def test_hfer_stat_is_spectra_hfer_of_the_mean_spectra():
    g = torch.Generator().manual_seed(6)
    data = torch.rand(12, 3, 16, 16, generator=g, dtype=torch.float64)
    recon = 0.5 * data + 0.5 * data.roll(1, dims=-1)  # a mild horizontal blur
    items = np.stack([spectra.high_band_energy(recon), spectra.high_band_energy(data)], 1)
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
    reference = rng.standard_normal(80)
    method = reference + 0.1 + 0.5 * rng.standard_normal(80)
    a, b, c = (stats.paired_mean_diff(method, reference, seed=seed) for seed in (1, 1, 2))
    assert a == b
    assert a.diff == c.diff and (a.lo, a.hi) != (c.lo, c.hi)
    assert abs(a.lo - c.lo) < 0.2 * (a.hi - a.lo) and abs(a.hi - c.hi) < 0.2 * (a.hi - a.lo)


def test_covers_names_the_unit_and_the_seeds():
    rng = np.random.default_rng(10)
    one = [rng.standard_normal(20)]
    two = [rng.standard_normal(20) for _ in range(2)]
    z = [np.zeros(20)]
    assert stats.paired_set_diff(stats.mean_stat, one, z, unit="prior draws").covers == "prior draws"
    assert stats.paired_set_diff(stats.mean_stat, two, z * 2, unit="prior draws",
                                 resampling="jackknife").covers == "seeds and prior draws"


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


def test_holm_and_benjamini_yekutieli_on_a_hand_worked_example():
    """p = (0.04, 0.01, 0.012, 0.3), m = 4; sorted 0.01, 0.012, 0.04, 0.3.

    Holm: (4·0.01, 3·0.012, 2·0.04, 1·0.3) = (0.04, 0.036, 0.08, 0.3), running max
    (0.04, 0.04, 0.08, 0.3); back in input order (0.08, 0.04, 0.04, 0.3).
    BY: c(4) = 1 + 1/2 + 1/3 + 1/4 = 25/12, m c(4) = 25/3; m c p_(j)/j =
    (25/3)(0.01, 0.006, 0.04/3, 0.075) = (1/12, 0.05, 1/9, 0.625), running min from the largest
    (0.05, 0.05, 1/9, 0.625); in input order (1/9, 0.05, 0.05, 0.625).
    """
    p = [0.04, 0.01, 0.012, 0.3]
    np.testing.assert_allclose(stats.holm(p), [0.08, 0.04, 0.04, 0.3], rtol=1e-12)
    np.testing.assert_allclose(stats.benjamini_yekutieli(p), [1 / 9, 0.05, 0.05, 0.625], rtol=1e-12)
    assert stats.holm([0.2, 0.6])[1] == 0.6 and stats.holm([0.9, 0.8]).max() == 1.0  # capped at 1
    for bad in ([0.1, 1.2], [np.nan], [[0.1]]):
        with pytest.raises(ValueError, match="p-values"):
            stats.holm(bad)


def test_fragile_flags_verdicts_that_flip_within_two_mc_se():
    """Holm of (0.02, 0.03, 0.5) is (0.06, 0.06, 0.5); with SE 0.005 the first two reach 0.03 at −2 SE."""
    p = [0.02, 0.03, 0.5]
    assert stats.fragile(p, [0.005, 0.005, 0.01]).tolist() == [True, True, False]
    assert stats.fragile(p, [0.001, 0.001, 0.01]).tolist() == [False, False, False]
    assert stats.fragile(p, [0.005, 0.005, 0.01], adjust=stats.benjamini_yekutieli).tolist() == [False, False, False]
    with pytest.raises(ValueError, match="mc_se"):
        stats.fragile(p, [0.1, -0.1, 0.1])


def test_adjusted_verdict_follows_the_adjusted_p_and_the_direction():
    assert stats.adjusted_verdict(-1.0, 0.01, "min") == "better"
    assert stats.adjusted_verdict(-1.0, 0.01, "max") == "worse"
    assert stats.adjusted_verdict(2.0, 0.01, "min") == "worse"
    assert stats.adjusted_verdict(2.0, 0.2, "max") == "no detectable difference"
    with pytest.raises(ValueError, match="direction"):
        stats.adjusted_verdict(2.0, 0.01, "nearest")
    with pytest.raises(ValueError, match="p_adjusted"):
        stats.adjusted_verdict(2.0, 1.5, "min")


def test_resamples_to_resolve_makes_a_p_three_times_below_holms_threshold_stable():
    """At the returned B a bootstrap p of 1.25e-3/3 crosses 1.25e-3 in ≈ 2 % of draws (2 SE)."""
    p, threshold = 1.25e-3 / 3, 1.25e-3
    b = stats.resamples_to_resolve(p, threshold)
    assert 5000 < b < 20000 and stats.resamples_to_resolve(p / 2, threshold) < b
    rng = np.random.default_rng(16)
    crossing = lambda n: np.mean(2 * (rng.binomial(n, p / 2, 20000) + 1) / (n + 1) > threshold)
    assert crossing(b) < 0.05 and crossing(b // 4) > 0.1
    with pytest.raises(ValueError, match="threshold"):
        stats.resamples_to_resolve(0.01, 0.005)


def test_adjust_family_adjusts_decides_and_flags_each_cell():
    """Holm of (0.001, 0.02, 0.5) is (0.003, 0.04, 0.5); the 0.02 cell's SE 0.01 makes it fragile."""
    cell = lambda diff, p, se: stats.Estimate(diff, diff - 1, diff + 1, 20000, 0.95, "hand-made", p, se)
    out = stats.adjust_family([cell(-2.0, 0.001, 1e-4), cell(3.0, 0.02, 0.01), cell(1.0, 0.5, 0.01)],
                              ["min", "max", "min"])
    assert [round(q, 12) for q, _, _ in out] == [0.003, 0.04, 0.5]
    assert [v for _, v, _ in out] == ["better", "better", "no detectable difference"]
    assert [f for _, _, f in out] == [False, True, False]
    with pytest.raises(ValueError, match="one direction per estimate"):
        stats.adjust_family([cell(1.0, 0.5, 0.0)], [])
