"""The OOD condition sets of the flows study: each is the transform its name says, seeded, unclamped."""

import numpy as np
import pytest

from blurbench.flows.conditions import (IN_DISTRIBUTION, LUMA, build_conditions, condition_names, match_channels,
                                        match_size)


@pytest.fixture
def y():
    return np.random.default_rng(0).uniform(0.1, 0.9, (5, 3, 4, 4))


def test_every_condition_in_order_with_the_inputs_shape(y):
    other = np.random.default_rng(1).uniform(0, 1, (2, 1, 8, 8))
    sets = build_conditions(y, seed=0, other=other)
    assert list(sets) == condition_names() and list(sets)[0] == IN_DISTRIBUTION
    assert all(v.shape == y.shape for v in sets.values())
    assert "other_dataset" not in build_conditions(y, seed=0)


def test_each_transform(y):
    sets = build_conditions(y, seed=3)
    assert np.array_equal(sets[IN_DISTRIBUTION], y)
    noise = sets["noise_0.2"] - y
    assert abs(noise.std() - 0.2) < 0.05 and abs(noise.mean()) < 0.05
    assert np.array_equal(sets["noise_0.1"], build_conditions(y, seed=3)["noise_0.1"])  # seeded
    assert not np.array_equal(sets["noise_0.1"], build_conditions(y, seed=4)["noise_0.1"])
    mean = y.mean(axis=(2, 3), keepdims=True)
    assert np.allclose(sets["contrast_2"] - mean, 2 * (y - mean))
    assert np.allclose(sets["contrast_2"].mean(axis=(2, 3)), mean[..., 0, 0])  # about each image's mean
    assert np.allclose(sets["inverted"], 1 - y)
    assert np.allclose(sets["constant"], mean) and sets["constant"].std(axis=(2, 3)).max() == 0
    assert set(np.unique(sets["saturated"])) <= {0.0, 1.0}
    assert (sets["saturated"] == (y > 0.5)).all()
    assert sets["noise_0.2"].min() < 0 or sets["noise_0.2"].max() > 1  # not clamped back into [0, 1]


def test_other_dataset_is_converted_to_this_ones_channels_and_size():
    grey = np.random.default_rng(2).uniform(0, 1, (3, 1, 8, 8))
    rgb = match_channels(grey, 3)
    assert rgb.shape == (3, 3, 8, 8) and (rgb == grey).all()
    colour = np.random.default_rng(3).uniform(0, 1, (2, 3, 4, 4))
    luma = match_channels(colour, 1)
    assert np.allclose(luma[:, 0], 0.299 * colour[:, 0] + 0.587 * colour[:, 1] + 0.114 * colour[:, 2])
    assert LUMA.sum() == pytest.approx(1.0)
    small = match_size(grey, 4)
    assert np.allclose(small[:, :, 0, 0], grey[:, :, :2, :2].mean(axis=(2, 3)))  # area average
    assert match_size(small, 8).shape == grey.shape
    y = np.random.default_rng(4).uniform(0, 1, (5, 3, 4, 4))
    other = build_conditions(y, seed=0, other=grey)["other_dataset"]
    assert other.shape == y.shape  # 3 grey images repeated to 5, RGB, 4x4
    assert np.allclose(other[3], other[0]) and np.allclose(other[0, 1], other[0, 0])


def test_bad_shapes_say_what_is_expected():
    with pytest.raises(ValueError, match=r"2 channels cannot be converted to 3"):
        match_channels(np.zeros((1, 2, 4, 4)), 3)
    with pytest.raises(ValueError, match=r"not \(N, C, h, w\)"):
        build_conditions(np.zeros((4, 4)), seed=0)
    with pytest.raises(ValueError, match=r"size 6 and 4 are not multiples"):
        match_size(np.zeros((1, 1, 6, 6)), 4)
