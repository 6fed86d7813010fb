"""KID and PRDC: equal to torch-fidelity's and prdc's, and paired intervals whose coverage is measured.

The simulations use Gaussian features in d = 2048 from a low-dimensional latent and a fixed random
linear map (features = b + A u), so that every truth is cheap: KID's expectation in closed form
(`expected_kernel`), PRDC's by Monte Carlo on exact low-dimensional coordinates (‖A u‖ = ‖R u‖
with A = QR), while the metrics themselves run on the 2048-d features.
"""

import numpy as np
import pytest

from blurbench import stats
from blurbench.metrics import generative as gm
from coverage_harness import assert_calibrated

D = 2048


# -------------------------------------------------------------------- simulated Inception features
class Latent:
    """Features b + A u, u in R^q: pool3-like positive mean, ~0.3 spread per feature."""

    def __init__(self, q, seed=12345):
        rng = np.random.default_rng(seed)
        self.q = q
        self.a = rng.standard_normal((D, q)) * 0.3 / np.sqrt(q)
        self.b = rng.uniform(0.2, 0.6, D)
        self.r = np.linalg.qr(self.a, mode="r")

    def lift(self, u):
        return self.b + u @ self.a.T

    def coords(self, u):
        """Coordinates with the same pairwise distances as lift(u), in q dimensions."""
        return u @ self.r.T


def expected_kernel(m1, f1, m2, f2):
    """E k(x, y) for independent x ~ N(m1, f1 f1ᵀ), y ~ N(m2, f2 f2ᵀ), k = (xᵀy / D + 1)³.

    From E[(xᵀy)³ | x] = a³ + 3ab (a = xᵀm2, b = xᵀΣ2x) and Gaussian moments of x.
    """
    c = m1 @ m2
    a1, a2, c12 = f1.T @ m2, f2.T @ m1, f1.T @ f2
    tr, v1, v2 = (c12 ** 2).sum(), a1 @ a1, a2 @ a2
    e2 = tr + v1 + v2 + c * c
    e3 = c ** 3 + 3 * c * v1 + 3 * (c * (v2 + tr) + 2 * a1 @ c12 @ a2)
    return e3 / D ** 3 + 3 * e2 / D ** 2 + 3 * c / D + 1


def population_mmd2(m1, f1, m2, f2):
    return (expected_kernel(m1, f1, m1, f1) + expected_kernel(m2, f2, m2, f2)
            - 2 * expected_kernel(m1, f1, m2, f2))


def test_expected_kernel_matches_monte_carlo():
    lat, rng = Latent(8), np.random.default_rng(0)
    shift = lat.a @ rng.standard_normal(8)
    x = lat.lift(rng.standard_normal((2000, 8))) + shift
    y = lat.lift(0.7 * rng.standard_normal((2000, 8)))
    mc = gm.poly_kernel(x, y).mean()
    assert expected_kernel(lat.b + shift, lat.a, lat.b, 0.7 * lat.a) == pytest.approx(mc, rel=2e-3)


# ------------------------------------------------------------------------------- KID: equality
def _pool3_like(rng, n, d=D):
    return np.abs(rng.standard_normal((n, 6)) @ rng.standard_normal((6, d)) * 0.2
                  + 0.2 * rng.standard_normal((n, d))) + 0.1


def test_kid_equals_torch_fidelity_on_unpaired_sets():
    import torch
    from torch_fidelity.metric_kid import kid_features_to_metric

    rng = np.random.default_rng(1)
    for n in (24, 128):  # below torch-fidelity's default subset size (1000): one subset of size N
        x, y = _pool3_like(rng, n), 1.05 * _pool3_like(rng, n)
        ref = kid_features_to_metric(torch.from_numpy(x), torch.from_numpy(y), kid_subsets=1,
                                     kid_subset_size=n, verbose=False)["kernel_inception_distance_mean"]
        assert abs(gm.kid(x, y) - ref) < 1e-6
        assert abs(ref) > 1e-4  # a real difference, not two zeros


def test_kid_paired_leaves_out_the_own_pairs_like_torch_fidelitys_u_statistic():
    from torch_fidelity.metric_kid import kernel_poly, mmd2

    rng = np.random.default_rng(2)
    test = _pool3_like(rng, 40)
    recon = 0.9 * test + 0.02 * rng.standard_normal(test.shape)  # close to its own test image
    kw = dict(kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1)
    kxx, kyy, kxy = (kernel_poly(a, b, **kw) for a, b in ((recon, recon), (test, test), (recon, test)))
    assert gm.kid_paired(recon, test) == pytest.approx(mmd2(kxx, kxy, kyy, mmd_est="u-statistic"), abs=1e-9)
    # the own pairs are the closest ones: keeping them would lower the estimate
    assert gm.kid_paired(recon, test) > mmd2(kxx, kxy, kyy, mmd_est="unbiased") + 1e-4


def _u_statistic_of_resample(x, y, counts, paired):
    """The statistic of a materialised resample, skipping pairs of copies of one original item."""
    idx = np.repeat(np.arange(len(counts)), counts)
    k = gm.poly_kernel

    def within(kk):
        keep = idx[:, None] != idx[None, :]
        return kk[np.ix_(idx, idx)][keep].mean()
    cross = within(k(x, y)) if paired else k(x, y)[np.ix_(idx, idx)].mean()
    return within(k(x, x)) + within(k(y, y)) - 2 * cross


def test_resampled_kid_stats_equal_the_statistic_of_the_materialised_resample():
    rng = np.random.default_rng(3)
    test = _pool3_like(rng, 30, 64)
    recon, gen = 0.9 * test + 0.05, _pool3_like(rng, 30, 64)
    counts = np.array([np.bincount(rng.integers(0, 30, 30), minlength=30) for _ in range(4)])
    ones = np.ones((1, 30), dtype=int)
    rec = gm.kid_recon_stat(np.stack([recon, test], axis=1))
    gen_stat = gm.kid_gen_stat(test)(gen)
    assert rec(ones)[0] == pytest.approx(gm.kid_paired(recon, test), rel=1e-12)
    assert gen_stat(ones)[0] == pytest.approx(gm.kid(gen, test), rel=1e-12)
    for w, r, g_ in zip(counts, rec(counts), gen_stat(counts)):
        assert r == pytest.approx(_u_statistic_of_resample(recon, test, w, paired=True), rel=1e-10)
        assert g_ == pytest.approx(_u_statistic_of_resample(gen, test, w, paired=False), rel=1e-10)


def test_bad_input_gives_clear_errors():
    rng = np.random.default_rng(4)
    x, y = rng.random((10, 8)), rng.random((10, 8))
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        gm.kid(bad, y)
    with pytest.raises(ValueError, match="dimensions differ"):
        gm.kid(x, y[:, :4])
    with pytest.raises(ValueError, match="one length"):
        gm.kid_paired(x, y[:9])
    with pytest.raises(ValueError, match="one length"):
        gm.kid_gen_stat(y)(x[:9])
    with pytest.raises(ValueError, match=r"\(N, 2, d\)"):
        gm.kid_recon_stat(x)
    with pytest.raises(ValueError, match="N ≥ 2"):
        gm.kid(x[:1], y)
    with pytest.raises(ValueError, match="more than k"):
        gm.prdc(x[:5], y)
    with pytest.raises(ValueError, match="more than k"):  # subsamples of 8 of the 10 need 8 > k
        gm.prdc_paired_diff(x, x, y, paired=True, k=8)


# ------------------------------------------------------------------------------ KID: coverage
# Reconstructions keep the test image's latent with a gain and add noise; the method is sharper
# (gain nearer 1) and shifted within the latent span. Samples: the same prior draws u for both.
KID_LATENT = Latent(32)
_SHIFT = KID_LATENT.a @ np.random.default_rng(7).standard_normal(32) * 0.25
REC = dict(method=(0.85, 0.15), reference=(0.7, 0.1))  # (gain, noise)
GEN = dict(method=0.9, reference=0.75)                  # prior scale


def _kid_truth(kind):
    lat = KID_LATENT
    if kind == "recon":
        (gm_, sm), (gr, sr) = REC["method"], REC["reference"]
        fm, fr = np.hypot(gm_, sm) * lat.a, np.hypot(gr, sr) * lat.a
    else:
        fm, fr = GEN["method"] * lat.a, GEN["reference"] * lat.a
    return (population_mmd2(lat.b + _SHIFT, fm, lat.b, lat.a)
            - population_mmd2(lat.b, fr, lat.b, lat.a))


def _kid_draw(kind, n, n_boot=500):
    lat, truth = KID_LATENT, _kid_truth(kind)

    def draw(rng):
        if kind == "recon":
            z = rng.standard_normal((n, lat.q))
            test = lat.lift(z)
            recon = {s: lat.lift(g * z + e * rng.standard_normal((n, lat.q))) for s, (g, e) in REC.items()}
            recon["method"] += _SHIFT
            est = stats.paired_set_diff(gm.kid_recon_stat, [np.stack([recon["method"], test], 1)],
                                        [np.stack([recon["reference"], test], 1)],
                                        n_boot=n_boot, seed=int(rng.integers(2 ** 31)))
        else:
            u, test = rng.standard_normal((n, lat.q)), lat.lift(rng.standard_normal((n, lat.q)))
            est = stats.paired_set_diff(gm.kid_gen_stat(test), [lat.lift(GEN["method"] * u) + _SHIFT],
                                        [lat.lift(GEN["reference"] * u)], n_boot=n_boot,
                                        seed=int(rng.integers(2 ** 31)))
        return est.lo, est.hi, truth
    return draw


@pytest.mark.parametrize("kind", ["recon", "gen"])
def test_kid_paired_interval_is_calibrated_at_n24(kind):
    assert_calibrated(_kid_draw(kind, 24), repetitions=200, seed=11, what=f"KID {kind}, N = 24")


@pytest.mark.parametrize("kind", ["recon", "gen"])
def test_kid_paired_interval_is_calibrated_at_n128(kind):
    assert_calibrated(_kid_draw(kind, 128), repetitions=200, seed=12, what=f"KID {kind}, N = 128")


def _kid_gen_stat_fixed_test(test_feats):
    """The alternative kid_gen_stat rejected: the test side held fixed while the samples resample."""
    y = np.asarray(test_feats, dtype=np.float64)
    u_yy = gm._within(gm.poly_kernel(y, y))

    def bind(items):
        x = np.asarray(items, dtype=np.float64)
        kxx, cross = gm.poly_kernel(x, x), gm.poly_kernel(x, y).mean(axis=1)
        return lambda counts: (gm._weighted_within(kxx, counts.astype(float)) + u_yy
                               - 2 * counts @ cross / counts.sum(axis=1))
    return bind


def test_kid_gen_with_the_test_side_fixed_undercovers():
    """Why kid_gen_stat resamples the test images too: held fixed, their variation is missed."""
    lat, truth, n = KID_LATENT, _kid_truth("gen"), 24
    rng = np.random.default_rng(13)
    hits = []
    for _ in range(200):
        u, test = rng.standard_normal((n, lat.q)), lat.lift(rng.standard_normal((n, lat.q)))
        method, reference = lat.lift(GEN["method"] * u) + _SHIFT, lat.lift(GEN["reference"] * u)
        fixed = stats.paired_set_diff(_kid_gen_stat_fixed_test(test), [method], [reference], n_boot=500)
        assert fixed.diff == pytest.approx(gm.kid(method, test) - gm.kid(reference, test), rel=1e-9)
        hits.append(fixed.lo <= truth <= fixed.hi)
    assert np.mean(hits) < 0.90, np.mean(hits)


def test_kid_perfect_reconstruction_beats_a_blurred_one():
    rng, lat = np.random.default_rng(5), KID_LATENT
    z = rng.standard_normal((128, lat.q))
    test = lat.lift(z)
    blurred = lat.lift(0.6 * z)
    est = stats.paired_set_diff(gm.kid_recon_stat, [np.stack([test, test], 1)],
                                [np.stack([blurred, test], 1)], n_boot=500)
    assert est.lo <= est.diff <= est.hi and est.hi < 0


# ------------------------------------------------------------------------------ PRDC: equality
# Test images span QD latent dimensions (the first QC coarse); models add artefact dimensions that
# test images lack (off the data manifold), so the four values lie well inside (0, 1).
QD, QC, QA = 48, 12, 16
PRDC_LATENT = Latent(QD + QA)
MODELS = dict(rec_method=((0.95, 0.7), 0.35, 0.9), rec_reference=((0.9, 0.5), 0.3, 1.1),
              gen_method=((1.0, 0.9), 0.0, 0.7), gen_reference=((0.9, 0.7), 0.0, 0.85))  # gains, noise, artefact


def _model(rng, z, name):
    (coarse, fine), noise, art = MODELS[name]
    gain = np.r_[np.full(QC, coarse), np.full(QD - QC, fine)]
    n = len(z)
    return np.hstack([z * gain + noise * rng.standard_normal((n, QD)), art * (1 + rng.standard_normal((n, QA)))])


def _prdc_sets(rng, n, kind, lift):
    """(method, reference, test) features; reconstructions share the test images' latents."""
    data = lambda z: lift(np.hstack([z, np.zeros((len(z), QA))]))  # noqa: E731
    z = rng.standard_normal((n, QD))
    if kind == "recon":
        return lift(_model(rng, z, "rec_method")), lift(_model(rng, z, "rec_reference")), data(z)
    method, reference = (lift(_model(rng, z, f"gen_{m}")) for m in ("method", "reference"))  # same prior draws z
    return method, reference, data(rng.standard_normal((n, QD)))


def test_prdc_equals_the_prdc_package():
    import prdc
    rng = np.random.default_rng(6)
    for n, m in ((24, 24), (128, 100), (60, 90)):
        model, _, _ = _prdc_sets(rng, n, "recon", PRDC_LATENT.lift)
        test = PRDC_LATENT.lift(np.hstack([rng.standard_normal((m, QD)), np.zeros((m, QA))]))
        ours = gm.prdc(model, test)
        theirs = prdc.compute_prdc(real_features=test, fake_features=model, nearest_k=gm.PRDC_K)
        for name in gm.PRDC_METRICS:
            assert ours[name] == pytest.approx(float(theirs[name]), rel=1e-12, abs=1e-15), name
        assert 0 < ours["precision"] < 1 and 0 < ours["coverage"] < 1  # values the cut-offs decide


def test_prdc_on_2048_d_features_equals_it_on_the_latent_coordinates():
    """The coverage truths below are computed in the latent coordinates; check the shortcut."""
    rng = np.random.default_rng(8)
    u, v = rng.standard_normal((50, QD + QA)), rng.standard_normal((40, QD + QA))
    full = gm.prdc(PRDC_LATENT.lift(u), PRDC_LATENT.lift(v))
    assert full == pytest.approx(gm.prdc(PRDC_LATENT.coords(u), PRDC_LATENT.coords(v)), abs=1e-12)


# ------------------------------------------------------------------------------ PRDC: coverage
def _prdc_truth(n, kind, draws):
    """Expected method − reference at this N over fresh data sets (exact low-d coordinates)."""
    rng = np.random.default_rng(10 ** 6 + n)
    diffs = []
    for _ in range(draws):
        method, reference, test = _prdc_sets(rng, n, kind, PRDC_LATENT.coords)
        diffs.append([gm.prdc(method, test)[m] - gm.prdc(reference, test)[m] for m in gm.PRDC_METRICS])
    return dict(zip(gm.PRDC_METRICS, np.mean(diffs, axis=0)))


def _prdc_coverage(n, kind, seed, truth_draws=400, n_sub=250, repetitions=200):
    """Coverage of each metric's interval; one simulated data set scores all four at once."""
    truth = _prdc_truth(n, kind, truth_draws)
    rng = np.random.default_rng(seed)
    scored = []
    for _ in range(repetitions):
        method, reference, test = _prdc_sets(rng, n, kind, PRDC_LATENT.lift)
        est = gm.prdc_paired_diff(method, reference, test, paired=kind == "recon", n_sub=n_sub,
                                  seed=int(rng.integers(2 ** 31)))
        scored.append({m: (e.lo, e.hi, truth[m]) for m, e in est.items()})
    return scored, {m: np.mean([lo <= t <= hi for lo, hi, t in (s[m] for s in scored)]) for m in gm.PRDC_METRICS}


@pytest.mark.slow
def test_prdc_reconstruction_interval_is_calibrated_at_the_minimum_n():
    n = gm.PRDC_MIN_N
    scored, rates = _prdc_coverage(n, "recon", seed=21)
    for m in gm.PRDC_METRICS:
        replay = iter(s[m] for s in scored)
        assert_calibrated(lambda _rng: next(replay), len(scored), 21, f"PRDC recon {m}, N = {n} (all: {rates})")


@pytest.mark.slow
def test_prdc_sample_interval_is_never_too_narrow_at_the_minimum_n():
    """Samples: conservative, above the harness's 0.99 bound for some metrics (see prdc_paired_diff)."""
    _, rates = _prdc_coverage(gm.PRDC_MIN_N, "gen", seed=22)
    assert min(rates.values()) >= 0.90, rates


def test_prdc_perfect_reconstruction_beats_one_off_the_data_manifold():
    rng = np.random.default_rng(9)
    _, off, test = _prdc_sets(rng, 128, "recon", PRDC_LATENT.lift)
    est = gm.prdc_paired_diff(test, off, test, paired=True, n_sub=400)
    for m in ("precision", "coverage"):  # the perfect one is inside every own ball: 1 against < 1
        e = est[m]
        assert e.lo <= e.diff <= e.hi and e.lo > 0, (m, e)
        assert e.p < 0.05 and e.covers == "test images"
    same = gm.prdc_paired_diff(off, off, test, paired=True, n_sub=50)
    assert all((e.diff, e.lo, e.hi, e.p) == (0.0, 0.0, 0.0, 1.0) for e in same.values())
