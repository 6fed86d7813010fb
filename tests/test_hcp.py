"""HCP loader and the shared NIfTI path (blurbench.volumes) on tiny subjects written in the real layout."""

import copy
import gzip

import nibabel as nib
import numpy as np
import pytest

from blurbench import plugins, volumes
from blurbench.errors import ConfigError, DataError

SUBJECTS = ("100206", "100307", "100408")
LAYOUT = "{subject}/T1w/T1w_acpc_dc_restore_brain.nii.gz"
SHAPE = (22, 26, 18)                       # x, y, z (RAS after reorientation)
HCP_AFFINE = np.diag([-0.7, 0.7, 0.7, 1.0])  # HCP files are stored LAS, 0.7 mm


def _brain(index: int) -> np.ndarray:
    """A skull-stripped-looking volume in RAS order: a textured ellipsoid on a zero background."""
    x, y, z = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in SHAPE), indexing="ij")
    radii = (8 + index, 10 + index, 6 + index)
    inside = ((x - 11) / radii[0]) ** 2 + ((y - 13) / radii[1]) ** 2 + ((z - 9) / radii[2]) ** 2 < 1
    texture = 400 + 150 * np.sin(x / 2 + index) * np.cos(y / 3) + 20 * z
    return np.where(inside, texture, 0).astype(np.float32)


def _write(path, ras_volume):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(ras_volume[::-1].copy(), HCP_AFFINE), path)  # x flipped: stored LAS


@pytest.fixture
def hcp_root(tmp_path):
    root = tmp_path / "hcp"
    for i, subject in enumerate(SUBJECTS):
        _write(root / LAYOUT.format(subject=subject), _brain(i))
    (root / "README.txt").write_text("not a subject")
    return root


@pytest.fixture(scope="module")
def hcp():
    return plugins.load_dataset("hcp")


def _params(hcp, root, **overrides):
    params = copy.deepcopy(hcp.PARAMS)
    params.update({"root": str(root), "test_fraction": 0.34, **overrides})
    return params


def _build(hcp, params, resolution=64):
    arrays = {}
    for name, split in hcp.build(params, resolution).items():
        arrays[name] = np.stack(list(split.images))
        assert arrays[name].shape[0] == split.count
    return arrays


def _reference_slices(ras_volume, min_fraction, step=1):
    """Kept slices by a direct numpy reimplementation of the documented rule (percentiles of voxels > 0)."""
    low, high = np.percentile(ras_volume[ras_volume > 0], [0.5, 99.5])
    normalised = np.clip((ras_volume - low) / (high - low), 0, 1)
    return np.flatnonzero((normalised > 0).mean(axis=(0, 1)) >= min_fraction)[::step], normalised


# ---------------------------------------------------------------- blurbench.volumes

def test_load_volume_reorients_to_ras(tmp_path):
    volume = _brain(0)
    _write(tmp_path / "v.nii.gz", volume)
    np.testing.assert_array_equal(volumes.load_volume(tmp_path / "v.nii.gz"), volume)


def test_normalise_clips_percentiles_of_brain_voxels():
    volume = np.zeros((10, 10, 10), dtype=np.float32)
    volume[2:8, 2:8, 2:8] = np.linspace(1, 1000, 216).reshape(6, 6, 6)
    out = volumes.normalise(volume, (0.5, 99.5))
    low, high = np.percentile(volume[volume > 0], [0.5, 99.5])
    assert out.dtype == np.float32 and out.min() == 0 and out.max() == 1
    assert (out[volume >= high] == 1).all() and (out[volume <= low] == 0).all()
    middle = (volume > low) & (volume < high)
    np.testing.assert_allclose(out[middle], (volume[middle] - low) / (high - low), rtol=1e-5)


def test_brain_slices_threshold():
    volume = np.zeros((10, 10, 4), dtype=np.float32)
    volume[:5, :, 1] = 1      # 50 % brain
    volume[:1, :, 2] = 1      # 10 %
    np.testing.assert_array_equal(volumes.brain_slices(volume, 0.1), [1, 2])
    np.testing.assert_array_equal(volumes.brain_slices(volume, 0.2), [1])


def test_to_square_pads_centred_and_puts_anterior_up():
    slice01 = np.zeros((40, 80), dtype=np.float32)   # x (left-right) 40, y (posterior-anterior) 80
    slice01[:, 70:] = 1.0                            # anterior band
    image = volumes.to_square(slice01, 32)
    assert image.shape == (32, 32) and image.dtype == np.uint8
    assert image[:3, 12:20].min() > 200              # anterior at the top
    assert image[-6:].max() == 0                     # posterior end is background
    assert image[:, :7].max() < 10 and image[:, -7:].max() < 10  # x padded on both sides (80 -> 40 + 2*20)


def test_load_volume_names_missing_truncated_and_corrupt_files(tmp_path):
    _write(tmp_path / "ok.nii.gz", _brain(0))
    data = (tmp_path / "ok.nii.gz").read_bytes()
    (tmp_path / "truncated.nii.gz").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.nii.gz").write_bytes(b"\x00\x01 not a nifti file " * 40)
    (tmp_path / "badheader.nii.gz").write_bytes(gzip.compress(b"\x07" * 2000))
    for name in ("truncated.nii.gz", "garbage.nii.gz", "badheader.nii.gz", "missing.nii.gz"):
        with pytest.raises(DataError, match=name):
            volumes.load_volume(tmp_path / name)


# ---------------------------------------------------------------- datasets/hcp.py

def test_hcp_shapes_ranges_and_split_by_subject(hcp, hcp_root):
    params = _params(hcp, hcp_root)
    arrays = _build(hcp, params, 64)
    info = hcp.describe(params, 64)
    assert hcp.channels(params) == 1
    assert len(info["test_subjects"]) == 1 and len(info["train_subjects"]) == 2
    assert not set(info["train_subjects"]) & set(info["test_subjects"])
    assert set(info["train_subjects"]) | set(info["test_subjects"]) == set(SUBJECTS)
    for split in ("train", "test"):
        expected = []
        for subject in info[f"{split}_subjects"]:
            kept, normalised = _reference_slices(_brain(SUBJECTS.index(subject)), params["min_brain_fraction"])
            assert 0 < len(kept) < SHAPE[2]                  # the threshold drops the brainless end slices
            expected += [volumes.to_square(normalised[:, :, k].astype(np.float32), 64) for k in kept]
        array = arrays[split]
        assert array.shape == (len(expected), 1, 64, 64) and array.dtype == np.uint8
        assert array.min() == 0 and array.max() > 200
        # exactly the slices of this split's subjects, in subject order (within 1 grey level of float noise)
        assert np.abs(array[:, 0].astype(int) - np.stack(expected)).max() <= 1


def test_hcp_deterministic_and_seeded(hcp, hcp_root):
    params = _params(hcp, hcp_root)
    first, second = _build(hcp, params), _build(hcp, params)
    for split in ("train", "test"):
        np.testing.assert_array_equal(first[split], second[split])
    test_sets = {tuple(hcp.split_subjects(list(SUBJECTS), {**params, "seed": s})["test"]) for s in range(10)}
    assert len(test_sets) > 1


def test_hcp_pattern_step_and_subject_cap(hcp, tmp_path):
    root = tmp_path / "custom"
    for i, subject in enumerate(SUBJECTS):
        _write(root / f"sub-{subject}" / "anat" / "T1.nii.gz", _brain(i))
    params = _params(hcp, root, pattern="sub-{subject}/anat/T1.nii.gz", max_subjects=2, slice_step=2)
    info = hcp.describe(params, 64)
    assert sorted(info["train_subjects"] + info["test_subjects"]) == list(SUBJECTS[:2])
    counts = {name: split.count for name, split in hcp.build(params, 64).items()}
    expected = {name: sum(len(_reference_slices(_brain(SUBJECTS.index(s)), 0.1, step=2)[0])
                          for s in info[f"{name}_subjects"]) for name in ("train", "test")}
    assert counts == expected


def test_hcp_missing_root_names_path_and_how_to_obtain(hcp, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataError, match="nowhere") as err:
        hcp.validate(_params(hcp, missing), 64)
    assert "db.humanconnectome.org" in str(err.value)
    with pytest.raises(DataError, match="params.root"):
        hcp.validate({**hcp.PARAMS}, 64)


def test_hcp_no_subject_names_the_pattern(hcp, tmp_path):
    (tmp_path / "empty" / "100206" / "T1w").mkdir(parents=True)
    with pytest.raises(DataError, match="T1w_acpc_dc_restore_brain") as err:
        hcp.validate(_params(hcp, tmp_path / "empty"), 64)
    assert "{subject}" in str(err.value)


def test_hcp_single_subject_cannot_be_split(hcp, tmp_path):
    _write(tmp_path / "one" / LAYOUT.format(subject="100206"), _brain(0))
    with pytest.raises(DataError, match="at least 2 subjects"):
        hcp.validate(_params(hcp, tmp_path / "one"), 64)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_hcp_bad_file_is_named(hcp, hcp_root, damage):
    path = hcp_root / LAYOUT.format(subject=SUBJECTS[1])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"corrupt" * 500)
    with pytest.raises(DataError, match=str(path)):
        hcp.build(_params(hcp, hcp_root), 64)


@pytest.mark.parametrize("override, resolution, key", [
    ({"pattern": "T1w/T1w.nii.gz"}, 64, "pattern"),
    ({"test_fraction": 1.0}, 64, "test_fraction"),
    ({"slice_step": 0}, 64, "slice_step"),
    ({"clip_percentiles": [5]}, 64, "clip_percentiles"),
    ({}, 32, "resolution"),
])
def test_hcp_validate_names_the_key(hcp, hcp_root, override, resolution, key):
    with pytest.raises(ConfigError, match=key):
        hcp.validate(_params(hcp, hcp_root, **override), resolution)
