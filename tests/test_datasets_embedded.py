"""Embedded datasets (deadleaves, shapes, photos, mri): shapes, ranges, splits, determinism, reference checks."""

import copy
import hashlib

import numpy as np
import pytest

from blurbench import plugins, volumes
from blurbench.errors import ConfigError


def _params(module, **overrides):
    params = copy.deepcopy(module.PARAMS)
    params.update(overrides)
    return params


def _build(module, params, resolution):
    """build() materialised: {"train": array, "test": array[, "monitor": array]}, checking each count."""
    arrays = {}
    for name, split in module.build(params, resolution).items():
        arrays[name] = np.stack(list(split.images))
        assert arrays[name].shape[0] == split.count
    assert set(arrays) - {"monitor"} == {"train", "test"}
    return arrays


def _check_images(array, count, n_channels, resolution):
    assert array.shape == (count, n_channels, resolution, resolution)
    assert array.dtype == np.uint8
    assert array.min() < 40 and array.max() > 215  # uses the full 0..255 range, not a sliver of it


# ---------------------------------------------------------------- deadleaves

@pytest.fixture(scope="module")
def deadleaves():
    return plugins.load_dataset("deadleaves")


@pytest.mark.parametrize("n_channels", [1, 3])
def test_deadleaves_shapes_ranges_and_split_sizes(deadleaves, n_channels):
    params = _params(deadleaves, n_train=40, n_test=12, channels=n_channels)
    arrays = _build(deadleaves, params, 32)
    assert deadleaves.channels(params) == n_channels
    _check_images(arrays["train"], 40, n_channels, 32)
    _check_images(arrays["test"], 12, n_channels, 32)
    train = {a.tobytes() for a in arrays["train"]}
    assert not train & {a.tobytes() for a in arrays["test"]}  # test drawn from another seed stream
    assert len(train) == 40


def test_deadleaves_is_deterministic_and_seeded_per_image(deadleaves):
    params = _params(deadleaves, n_train=20, n_test=4)
    first, second = _build(deadleaves, params, 16), _build(deadleaves, params, 16)
    for split in ("train", "test"):
        np.testing.assert_array_equal(first[split], second[split])
    fewer = _build(deadleaves, _params(deadleaves, n_train=5, n_test=4), 16)
    np.testing.assert_array_equal(fewer["train"], first["train"][:5])  # image i does not depend on n_train
    other = _build(deadleaves, _params(deadleaves, n_train=20, n_test=4, seed=1), 16)
    assert not np.array_equal(other["train"], first["train"])


def test_deadleaves_radii_follow_r_minus_3(deadleaves):
    """Octave bins [a, 2a) of an r^-3 density hold mass proportional to a^-2: each 4x rarer than the last."""
    r = deadleaves.radii(np.random.default_rng(0).random(400_000), 1.0, 64.0)
    assert r.min() >= 1.0 and r.max() <= 64.0
    counts, _ = np.histogram(r, bins=[1, 2, 4, 8, 16])
    np.testing.assert_allclose(counts[:-1] / counts[1:], 4.0, rtol=0.08)
    slope = np.polyfit(np.log([1.5, 3, 6, 12]), np.log(counts / np.diff([1, 2, 4, 8, 16])), 1)[0]
    assert -3.2 < slope < -2.8


def test_deadleaves_render_matches_brute_force_top_down(deadleaves):
    """Each pixel shows the colour of the first-drawn disk containing its centre (exact dead leaves)."""
    size, r_min, r_max, n_channels = 16, 1.0, 8.0, 3
    seeds = [np.random.SeedSequence(7, spawn_key=(0, i)) for i in range(3)]
    images = deadleaves.render([np.random.default_rng(s) for s in seeds], size, n_channels, r_min, r_max)
    per_round = deadleaves.disks_per_round(size, r_min, r_max)
    ys, xs = np.mgrid[0:size, 0:size]
    for seed, image in zip(seeds, images):
        rng = np.random.default_rng(seed)
        expected = np.zeros((size, size, n_channels), dtype=np.uint8)
        covered = np.zeros((size, size), dtype=bool)
        while not covered.all():
            draws = rng.random((3 + n_channels, per_round))
            r = (r_min ** -2 - draws[0] * (r_min ** -2 - r_max ** -2)) ** -0.5
            cx = -r_max + (size - 1 + 2 * r_max) * draws[1]
            cy = -r_max + (size - 1 + 2 * r_max) * draws[2]
            for j in range(per_round):
                new = ~covered & ((xs - cx[j]) ** 2 + (ys - cy[j]) ** 2 < r[j] ** 2)
                expected[new] = (draws[3:, j] * 256).astype(np.uint8)
                covered |= new
        np.testing.assert_array_equal(image, expected.transpose(2, 0, 1))


def test_deadleaves_larger_disks_give_fewer_regions(deadleaves):
    def distinct_colours(r_min):
        arrays = _build(deadleaves, _params(deadleaves, n_train=8, n_test=1, r_min_px=r_min), 32)
        return np.mean([np.unique(a.reshape(3, -1), axis=1).shape[1] for a in arrays["train"]])

    assert distinct_colours(1.0) > 1.5 * distinct_colours(4.0)


@pytest.mark.parametrize("override, resolution, key", [
    ({"channels": 2}, 32, "channels"),
    ({"n_train": 0}, 32, "n_train"),
    ({"r_max_frac": 0.01}, 32, "r_max_frac"),
    ({}, 48, "resolution"),
])
def test_deadleaves_validate_names_the_key(deadleaves, override, resolution, key):
    with pytest.raises(ConfigError, match=key):
        deadleaves.validate(_params(deadleaves, **override), resolution)


# ---------------------------------------------------------------- shapes

@pytest.fixture(scope="module")
def shapes():
    return plugins.load_dataset("shapes")


@pytest.mark.parametrize("n_channels", [1, 3])
def test_shapes_shapes_ranges_and_split_sizes(shapes, n_channels):
    params = _params(shapes, n_train=40, n_test=12, channels=n_channels)
    arrays = _build(shapes, params, 32)
    assert shapes.channels(params) == n_channels
    _check_images(arrays["train"], 40, n_channels, 32)
    _check_images(arrays["test"], 12, n_channels, 32)
    train = {a.tobytes() for a in arrays["train"]}
    assert not train & {a.tobytes() for a in arrays["test"]}  # test drawn from another seed stream
    assert len(train) == 40


def test_shapes_is_deterministic_and_seeded_per_image(shapes):
    params = _params(shapes, n_train=20, n_test=4)
    first, second = _build(shapes, params, 16), _build(shapes, params, 16)
    for split in ("train", "test"):
        np.testing.assert_array_equal(first[split], second[split])
    fewer = _build(shapes, _params(shapes, n_train=5, n_test=4), 16)
    np.testing.assert_array_equal(fewer["train"], first["train"][:5])  # image i does not depend on n_train
    other = _build(shapes, _params(shapes, n_train=20, n_test=4, seed=1), 16)
    assert not np.array_equal(other["train"], first["train"])


def _one_shape(shapes, kind, size=0.25, centre=(0.52, 0.47), resolution=32):
    """Coverage of one white shape on black: render() of hand-set factors (one image, one channel)."""
    factors = {"background": np.zeros((1, 2, 1)), "angle": np.zeros(1), "count": np.ones(1, dtype=int),
               "kind": np.array([[shapes.KINDS.index(kind)]]), "size": np.array([[size]]),
               "centre": np.array([[centre]]), "colour": np.ones((1, 1, 1))}
    return shapes.render(factors, resolution)[0, 0]


@pytest.mark.parametrize("kind, area", [("disk", np.pi * 8 ** 2), ("square", 16 ** 2),
                                        ("triangle", 3 * np.sqrt(3) / 4 * 8 ** 2)])
def test_shapes_edges_are_antialiased_but_sharp(shapes, kind, area):
    """Size 8 px: the coverage adds up to the shape's area; edges are partial pixels, at most 2 across."""
    alpha = _one_shape(shapes, kind)
    np.testing.assert_allclose(alpha.sum(), area, rtol=0.01)
    partial = (alpha > 0) & (alpha < 1)
    assert partial.sum() > 20  # anti-aliased: the outline is drawn with intermediate values
    row, column = partial[int(0.47 * 32)], partial[:, int(0.52 * 32)]  # through the centre
    for profile in (row, column):
        runs = np.diff(np.flatnonzero(np.diff(np.r_[0, profile.astype(int), 0])))[::2]
        assert len(runs) == 2 and runs.max() <= 2  # two edges crossed, each within 2 px


def test_shapes_are_painted_over_the_gradient(shapes):
    """Partial pixels lie strictly between the background and the shape colour, as alpha blending does."""
    factors = {"background": np.array([[[0.2], [0.4]]]), "angle": np.zeros(1), "count": np.ones(1, dtype=int),
               "kind": np.array([[0]]), "size": np.array([[0.25]]), "centre": np.array([[[0.52, 0.47]]]),
               "colour": np.ones((1, 1, 1))}
    image = shapes.render(factors, 32)[0, 0]
    background = 0.2 + 0.2 * (np.arange(32) + 0.5) / 32  # angle 0: the gradient runs left to right
    alpha = _one_shape(shapes, "disk")
    np.testing.assert_allclose(image, background + alpha * (1.0 - background), atol=1e-12)
    np.testing.assert_allclose(image[0], background, atol=1e-12)  # row 0 holds no shape


@pytest.mark.parametrize("override, resolution, key", [
    ({"channels": 2}, 32, "channels"),
    ({"max_shapes": 0}, 32, "max_shapes"),
    ({"size_frac": [0.3, 0.1]}, 32, "size_frac"),
    ({}, 48, "resolution"),
])
def test_shapes_validate_names_the_key(shapes, override, resolution, key):
    with pytest.raises(ConfigError, match=key):
        shapes.validate(_params(shapes, **override), resolution)


# ---------------------------------------------------------------- photos

@pytest.fixture(scope="module")
def photos():
    return plugins.load_dataset("photos")


def test_photos_are_bundled_files(photos):
    for name in photos.BUNDLED:
        assert photos.photo_path(name).is_file(), name


def test_photos_shapes_ranges_split_by_photo(photos):
    params = _params(photos, n_train=30, n_test=10)
    arrays = _build(photos, params, 32)
    assert photos.channels(params) == 3
    _check_images(arrays["train"], 30, 3, 32)
    _check_images(arrays["test"], 10, 3, 32)
    boxes = photos.describe(params, 32)["crop_boxes"]
    train_sources, test_sources = {b[0] for b in boxes["train"]}, {b[0] for b in boxes["test"]}
    assert test_sources <= set(params["test_photos"])
    assert not train_sources & test_sources
    assert len(train_sources) > 2  # crops come from several training photos


def test_photos_crops_match_an_independent_reader_and_resizer(photos):
    """Cross-check boxes, channel order and orientation against skimage.io + skimage.transform.resize."""
    import skimage.io
    import skimage.transform

    params = _params(photos, n_train=6, n_test=3)
    arrays = _build(photos, params, 32)
    boxes = photos.describe(params, 32)["crop_boxes"]
    for split in ("train", "test"):
        for (name, left, top, side), image in zip(boxes[split], arrays[split]):
            raw = skimage.io.imread(photos.photo_path(name))[top:top + side, left:left + side, :3]
            reference = skimage.transform.resize(raw, (32, 32), anti_aliasing=True, preserve_range=True)
            # 4x4 block means hide the two filters' different sharpness; a box off by 1/16 fails this
            pooled = [a.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3)) for a in (image.transpose(1, 2, 0), reference)]
            assert np.abs(pooled[0] - pooled[1]).mean() < 2.0


def test_photos_deterministic(photos):
    params = _params(photos, n_train=8, n_test=4)
    first, second = _build(photos, params, 32), _build(photos, params, 32)
    for split in ("train", "test"):
        np.testing.assert_array_equal(first[split], second[split])
    assert not np.array_equal(_build(photos, _params(photos, n_train=8, n_test=4, seed=3), 32)["train"],
                              first["train"])


@pytest.mark.parametrize("override, resolution, key", [
    ({"photos": ["astronaut", "camera"]}, 32, "photos"),
    ({"test_photos": ["astronaut"], "photos": ["coffee", "chelsea"]}, 32, "test_photos"),
    ({"test_photos": ["chelsea", "rocket"], "photos": ["chelsea", "rocket"]}, 32, "test_photos"),
    ({}, 128, "crop_scale"),  # 0.25 * 300 px (chelsea) < 128: would upsample
    ({"crop_scale": [0.8, 0.5]}, 32, "crop_scale"),
])
def test_photos_validate_names_the_key(photos, override, resolution, key):
    with pytest.raises(ConfigError, match=key):
        photos.validate(_params(photos, **override), resolution)


# ---------------------------------------------------------------- mri

@pytest.fixture(scope="module")
def mri():
    return plugins.load_dataset("mri")


def test_mri_shapes_ranges_and_no_adjacent_slices(mri):
    params = _params(mri)
    arrays = _build(mri, params, 32)
    info = mri.describe(params, 32)
    train, test = np.array(info["train_slices"]), np.array(info["test_slices"])
    _check_images(arrays["train"], len(train) * (1 + params["augment"]), 1, 32)
    _check_images(arrays["test"], len(test), 1, 32)
    assert mri.channels(params) == 1
    assert len(train) > 60 and len(test) > 15
    assert 1000 <= len(arrays["train"]) <= 1500  # the default augmentation grows the training set
    gaps = np.abs(train[:, None] - test[None, :])
    assert gaps.min() > params["gap"] >= 1  # no test slice next to a training slice
    monitor = np.array(info["monitor_slices"])  # the dropped slices: neither trained on nor tested
    _check_images(arrays["monitor"], len(monitor), 1, 32)
    assert len(monitor) >= 6 and not set(monitor) & (set(train) | set(test))
    sources = [copy["slice"] for copy in info["augmented_copies"]]
    assert len(sources) == len(train) * params["augment"] and set(sources) == set(train.tolist())


# sha256 of the 32-px arrays as built before augmentation existed: augment 0 must keep reproducing them
_UNAUGMENTED_SHA256 = {"train": "d43a1f1bf0558030ea1437571d60f0f6562b471139165fb1a06e6e8c4bf10129",
                       "test": "bfaf8fc10bb328a7e81d872cf1fd3b111ee7a2c28507be30624421118383a698"}


def test_mri_augment_zero_reproduces_the_unaugmented_arrays(mri):
    plain = _build(mri, _params(mri, augment=0), 32)
    assert {k: hashlib.sha256(plain[k].tobytes()).hexdigest() for k in _UNAUGMENTED_SHA256} == _UNAUGMENTED_SHA256
    one, two = _build(mri, _params(mri, augment=1), 32), _build(mri, _params(mri, augment=2), 32)
    n = len(plain["train"])
    assert len(one["train"]) == 2 * n and len(two["train"]) == 3 * n
    for augmented in (one, two):
        np.testing.assert_array_equal(augmented["test"], plain["test"])  # test slices are never augmented
        np.testing.assert_array_equal(augmented["train"][:n], plain["train"])  # the slices first
    np.testing.assert_array_equal(two["train"][:2 * n], one["train"])  # a copy does not depend on augment
    assert not any(np.array_equal(c, s) for c, s in zip(one["train"][n:], plain["train"]))  # copies differ


def test_mri_augment_slice_geometry_and_intensity(mri):
    """Identity draws change nothing; a shift moves the content by shift * side; gamma and gain act on values."""
    rng = np.random.default_rng(0)
    image = np.zeros((40, 50), dtype=np.float32)
    image[10:30, 15:35] = rng.uniform(0.2, 1.0, (20, 20))
    identity = {"rotation_deg": 0.0, "scale": 1.0, "shift": [0.0, 0.0], "gamma": 1.0, "gain": 1.0}
    np.testing.assert_allclose(mri.augment_slice(image, identity), image, atol=1e-5)
    shifted = mri.augment_slice(image, {**identity, "shift": [0.1, -0.04]})  # 5 and -2 voxels of 50
    np.testing.assert_allclose(shifted, np.roll(image, (5, -2), axis=(0, 1)), atol=1e-5)
    np.testing.assert_allclose(mri.augment_slice(image, {**identity, "gamma": 2.0, "gain": 0.9}),
                               0.9 * image ** 2, atol=1e-5)
    rows, cols = np.mgrid[0:40, 0:50]
    blob = np.exp(-((rows - 12) ** 2 + (cols - 35) ** 2) / 18.0).astype(np.float32)
    turned = mri.augment_slice(blob, {**identity, "rotation_deg": 90.0, "scale": 1.05})

    def offset(a):  # centroid relative to the slice centre
        return np.array([(rows * a).sum(), (cols * a).sum()]) / a.sum() - [19.5, 24.5]

    before, after = offset(blob), offset(turned)
    np.testing.assert_allclose(np.linalg.norm(after), 1.05 * np.linalg.norm(before), rtol=0.01)
    assert abs(before @ after) < 0.01 * before @ before  # turned by a right angle about the centre


def test_mri_reads_the_template_through_the_shared_volume_path(mri):
    """Each image is volumes.to_square of the normalised template slice it claims to be."""
    params = _params(mri, augment=0)
    arrays = _build(mri, params, 64)
    info = mri.describe(params, 64)
    volume = volumes.normalise(volumes.load_volume(mri.template_path()), (0.5, 99.5))
    kept = volumes.brain_slices(volume, params["min_brain_fraction"])
    assert set(info["train_slices"]) | set(info["test_slices"]) <= set(kept.tolist())
    for split in ("train", "test"):
        for k, image in zip(info[f"{split}_slices"], arrays[split]):
            np.testing.assert_array_equal(image[0], volumes.to_square(volume[:, :, k], 64))


def test_mri_deterministic_and_seed_moves_test_blocks(mri):
    params = _params(mri, augment=2)
    first, second = _build(mri, params, 32), _build(mri, params, 32)
    for split in ("train", "test"):
        np.testing.assert_array_equal(first[split], second[split])
    tests = {tuple(mri.describe(_params(mri, seed=s), 32)["test_slices"]) for s in range(4)}
    assert len(tests) > 1


def test_mri_split_slices_spreads_test_blocks_and_keeps_the_gap(mri):
    params = _params(mri, block_size=10, test_fraction=0.3, gap=1)
    split = mri.split_slices(np.arange(100), params)
    test = split["test"]
    assert len(test) == 30
    assert all(len({int(t) // 10 for t in test[i:i + 10]}) == 1 for i in (0, 10, 20))  # whole blocks
    # one test block in each run of blocks [0-3], [4-6], [7-9]
    assert [len([t for t in test if lo <= t < hi]) for lo, hi in ((0, 40), (40, 70), (70, 100))] == [10, 10, 10]
    assert np.abs(split["train"][:, None] - test[None, :]).min() >= 2
    assert len(split["train"]) + len(test) <= 100


@pytest.mark.parametrize("override, resolution, key", [
    ({"clip_percentiles": [99, 1]}, 32, "clip_percentiles"),
    ({"min_brain_fraction": 1.5}, 32, "min_brain_fraction"),
    ({"gap": 0}, 32, "gap"),
    ({"augment": -1}, 32, "augment"),
    ({}, 256, "resolution"),
])
def test_mri_validate_names_the_key(mri, override, resolution, key):
    with pytest.raises(ConfigError, match=key):
        mri.validate(_params(mri, **override), resolution)


def test_prepare_holds_out_a_monitor_split_from_the_training_stream(tmp_path):
    """Without a plugin monitor, the last images of the training stream are held out, not trained on."""
    from blurbench.data import MONITOR_MAX, carve_monitor, prepare
    from blurbench.dataset_api import Split

    small = carve_monitor(Split(40, (np.full((1, 2, 2), i, np.uint8) for i in range(40))))
    assert (small["train"].count, small["monitor"].count) == (35, 5)
    assert [int(x[0, 0, 0]) for x in small["monitor"].images] == list(range(35, 40))  # head not consumed first
    big = carve_monitor(Split(10_000, iter([])))
    assert big["monitor"].count == MONITOR_MAX
    from blurbench.plugins import load_dataset

    params = {**load_dataset("shapes").PARAMS, "n_train": 64, "n_test": 16}
    meta = prepare("shapes", params, 32, tmp_path)
    assert meta["counts"] == {"train": 56, "test": 16, "monitor": 8}
    train, monitor = (np.load(tmp_path / f"{s}.npy") for s in ("train", "monitor"))
    assert not any((monitor[i] == train).all(axis=(1, 2, 3)).any() for i in range(len(monitor)))
