"""The 2-D toy: trained on c ∈ [−1, 1] (seconds), the affine flow's samples blow up beyond the
training range while the spline flow's stay within its stated bound."""

import numpy as np
import pytest
import torch

from blurbench.flows import toy


@pytest.fixture(scope="module")
def result():
    torch.set_num_threads(1)  # module fixtures run before conftest's per-test one-thread fixture
    return toy.run_toy(seed=0)


def by_c(rows):
    return {r["c"]: r for r in rows}


def test_affine_blows_up_beyond_the_training_range_and_the_spline_does_not(result):
    affine, spline = by_c(result["affine"][0]), by_c(result["spline"][0])
    far = max(affine)
    # measured at seed 0: 903 against 19.5 (≈ 46×); asserted: at least 20×
    assert affine[far]["max_abs"] >= 20 * spline[far]["max_abs"]
    # the affine's max |x| grows monotonically once c leaves the range, into artifacts
    grow = [affine[c]["max_abs"] for c in sorted(affine) if c >= toy.TRAIN_RANGE[1]]
    assert all(b > a for a, b in zip(grow, grow[1:]))
    assert affine[far]["artifact_rate"] > 0.5
    assert all(r["artifact_rate"] == 0 for r in affine.values() if r["in_training_range"])


def test_spline_stays_within_its_bound_at_every_condition(result):
    """‖x‖∞ ≤ max(B, ‖z‖∞) + K·shift_bound, and ‖z‖∞ < B here (0.9 × 2000 normal draws never reach 20)."""
    kw = toy.COUPLING_KW["spline"]
    limit = kw["tail_bound"] + toy.N_COUPLINGS * kw["shift_bound"]
    assert limit < toy.ARTIFACT_THRESHOLD
    for r in result["spline"][0]:
        assert np.isfinite(r["max_abs"]) and r["max_abs"] <= limit and r["artifact_rate"] == 0
    for x in result["spline"][1].values():
        assert np.abs(x).max() <= limit


def test_rows_cover_every_condition_for_both_couplings(result):
    for kind, (rows, samples) in result.items():
        assert [r["c"] for r in rows] == list(toy.CONDITIONS) and set(samples) == set(toy.CONDITIONS)
        assert all(r["coupling"] == kind and r["n"] == samples[r["c"]].shape[0] for r in rows)


def test_the_evaluation_is_seeded():
    flow = toy.train_toy("spline", steps=5)
    a, _ = toy.evaluate_toy(flow, (0.0, 4.0), n=50)
    b, _ = toy.evaluate_toy(flow, (0.0, 4.0), n=50)
    assert a == b and a[0]["max_abs"] != a[1]["max_abs"]


def test_figure_is_written(result, tmp_path):
    path = tmp_path / "toy.png"
    toy.toy_figure(result, path)
    assert path.stat().st_size > 10_000


def test_ood_score_predicts_the_affine_artifacts_and_the_spline_has_none(result):
    rows = {r["coupling"]: r for r in toy.toy_ood(result)}
    affine, spline = rows["affine"], rows["spline"]
    assert affine["n_artifacts"] > 0 and affine["auroc"] > 0.8 and affine["spearman_rho"] > 0
    assert spline["n_artifacts"] == 0 and np.isnan(spline["auroc"])  # a null result stays visible
