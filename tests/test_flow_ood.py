"""The artifact criterion on hand-made images, and the Mahalanobis OOD score, Spearman ρ and AUROC
against sklearn and scipy on the same features."""

import math

import numpy as np
import pytest

from blurbench.flows.artifacts import artifact_pixels, artifact_rates, artifact_samples
from blurbench.flows.ood import MahalanobisOOD, auroc, ledoit_wolf, score_vs_artifacts

# --- the artifact criterion -------------------------------------------------------------------


def hand_made():
    """Four 2-channel 3×3 samples: clean with the bounds exactly, one NaN, one +inf, two hot pixels."""
    x = np.full((4, 2, 3, 3), 0.5)
    x[0, 0, 0, 0], x[0, 1, 2, 2] = 1.5, -0.5  # the bounds themselves are not artifacts
    x[1, 1, 1, 1] = np.nan
    x[2, 0, 0, 1] = np.inf
    x[3, 0, 0, 0] = 1.5000001
    x[3, 1, 0, 0] = -0.6  # same pixel, another channel: still one pixel
    x[3, 0, 2, 0] = -0.5000001
    return x


def test_artifact_pixels_and_samples_on_hand_made_images():
    x = hand_made()
    pixels = artifact_pixels(x)
    assert pixels.shape == (4, 3, 3)
    assert pixels.sum(axis=(1, 2)).tolist() == [0, 1, 1, 2]
    assert pixels[1, 1, 1] and pixels[2, 0, 1] and pixels[3, 0, 0] and pixels[3, 2, 0]
    assert artifact_samples(x).tolist() == [False, True, True, True]


def test_artifact_rates_per_sample_and_per_pixel():
    rates = artifact_rates(hand_made())
    assert rates == {"per_sample": 3 / 4, "per_pixel": 4 / 36, "n_samples": 4, "n_pixels": 36}
    assert artifact_rates(np.clip(hand_made(), -0.5, 1.5)[:1])["per_sample"] == 0


def test_artifact_input_must_be_nchw():
    with pytest.raises(ValueError, match=r"^images: shape \(3, 3\) is not \(N, C, H, W\)$"):
        artifact_pixels(np.zeros((3, 3)))


# --- the Mahalanobis score ---------------------------------------------------------------------


def correlated(n, d, seed):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mix + rng.normal(size=d)


@pytest.mark.parametrize("n, d", [(300, 8), (20, 40)], ids=["n>d", "n<d"])
def test_ledoit_wolf_score_equals_sklearn(n, d):
    """sklearn's `mahalanobis` returns squared distances; ours returns the distance."""
    from sklearn import covariance
    train, new = correlated(n, d, 0), correlated(50, d, 1) * 2
    ours = MahalanobisOOD().fit(train)
    ref = covariance.LedoitWolf().fit(train)
    assert 0 < ours.shrinkage_ < 1 and ours.shrinkage_ == pytest.approx(ref.shrinkage_, rel=1e-10)
    np.testing.assert_allclose(ours.covariance_, ref.covariance_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(ours.score(new) ** 2, ref.mahalanobis(new), rtol=1e-8)


def test_empirical_score_equals_sklearn():
    from sklearn import covariance
    train, new = correlated(300, 8, 2), correlated(40, 8, 3)
    ours = MahalanobisOOD(shrinkage="none").fit(train)
    np.testing.assert_allclose(ours.score(new) ** 2, covariance.EmpiricalCovariance().fit(train).mahalanobis(new),
                               rtol=1e-8)


def test_ledoit_wolf_shrinks_fully_for_isotropic_and_barely_for_strongly_correlated_features():
    rng = np.random.default_rng(4)
    iso = rng.normal(size=(2000, 5))
    _, delta_iso = ledoit_wolf(iso - iso.mean(0))
    corr = correlated(2000, 5, 5) * np.array([10, 1, 1, 1, 0.1])
    _, delta_corr = ledoit_wolf(corr - corr.mean(0))
    assert delta_iso > 0.5 > 0.01 > delta_corr


def test_score_grows_away_from_the_training_features():
    train = correlated(500, 6, 6)
    model = MahalanobisOOD().fit(train)
    direction = np.random.default_rng(7).normal(size=6)
    distances = model.score(train.mean(0) + np.outer([0, 1, 2, 4, 8], direction))
    assert distances[0] == pytest.approx(0, abs=1e-12) and (np.diff(distances) > 0).all()
    assert distances[4] / distances[1] == pytest.approx(8, rel=1e-9)  # a norm: linear along a ray


@pytest.mark.parametrize("call, message", [
    (lambda: MahalanobisOOD("oas"), r"^shrinkage: unknown 'oas'; expected one of ledoit_wolf, none$"),
    (lambda: MahalanobisOOD().fit(np.zeros(5)), r"^features: expected a finite \(N, d\) array, got shape \(5,\)$"),
    (lambda: MahalanobisOOD().fit([[0.0, np.nan], [1, 1]]), r"^features: .* with non-finite values$"),
    (lambda: MahalanobisOOD().fit(np.zeros((1, 3))), r"^features: 1 row\(s\); the covariance needs at least 2$"),
    (lambda: MahalanobisOOD().fit(correlated(9, 3, 0)).score(np.zeros((2, 4))),
     r"^features: 4 dimensions, but the score was fitted on 3$"),
    (lambda: score_vs_artifacts([1, 2, 3], [True, False]), r"^artifact: 2 labels for 3 scores"),
])
def test_bad_input_is_one_clear_line(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- score against artifacts -----------------------------------------------------------------


def test_auroc_equals_sklearn_with_ties():
    from sklearn import metrics
    rng = np.random.default_rng(8)
    y = rng.random(300) < 0.3
    s = np.round(rng.normal(size=300) + y, 1)  # rounded, so there are many ties
    assert len(np.unique(s)) < 100
    assert auroc(s, y) == pytest.approx(metrics.roc_auc_score(y, s), abs=1e-12)
    assert 0.6 < auroc(s, y) < 0.95


def test_score_vs_artifacts_separated_and_undefined():
    scores = np.arange(10.0)
    out = score_vs_artifacts(scores, scores >= 7)
    assert out["auroc"] == 1.0 and out["spearman_rho"] > 0.7 and out["spearman_p"] < 0.05
    assert out["n"] == 10 and out["n_artifacts"] == 3
    assert score_vs_artifacts(scores, scores < 3)["auroc"] == 0.0
    none = score_vs_artifacts(scores, np.zeros(10, bool))  # a null result: no artifact at all
    assert math.isnan(none["auroc"]) and math.isnan(none["spearman_rho"]) and none["n_artifacts"] == 0
