"""volume_folder: NIfTI volumes in non-HCP layouts (BIDS with sessions, flat), any axis, split by volume."""

import copy

import nibabel as nib
import numpy as np
import pytest

from blurbench import plugins, volumes
from blurbench.data import prepare
from blurbench.errors import ConfigError, DataError

SHAPE = (22, 26, 18)  # x, y, z in RAS


def _head(index: int) -> np.ndarray:
    """A textured ellipsoid on a zero background, RAS order, different per index."""
    x, y, z = np.meshgrid(*(np.arange(n, dtype=np.float32) for n in SHAPE), indexing="ij")
    radii = (7 + index % 3, 9 + index % 4, 5 + index % 3)
    inside = ((x - 11) / radii[0]) ** 2 + ((y - 13) / radii[1]) ** 2 + ((z - 9) / radii[2]) ** 2 < 1
    return np.where(inside, 300 + 100 * np.sin(x / 2 + index) * np.cos(y / 3) + 10 * z, 0).astype(np.float32)


def _write(path, ras_volume, affine=np.diag([-1.0, 1.0, 1.0, 1.0])):
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = ras_volume[::-1] if affine[0, 0] < 0 else ras_volume  # an LAS file, reoriented on load
    nib.save(nib.Nifti1Image(stored.copy(), affine), path)


SUBJECTS = ("01", "02", "03", "04", "05")


@pytest.fixture
def bids(tmp_path):
    """BIDS: sub-<id>/ses-<n>/anat/sub-<id>_ses-<n>_T1w.nii.gz, two sessions per subject, plus non-data."""
    root = tmp_path / "bids"
    for i, subject in enumerate(SUBJECTS):
        for session in (1, 2):
            _write(root / f"sub-{subject}" / f"ses-{session}" / "anat" / f"sub-{subject}_ses-{session}_T1w.nii.gz",
                   _head(2 * i + session))
    _write(root / "derivatives" / "sub-01" / "anat" / "sub-01_desc-brain_mask.nii.gz", _head(0))
    (root / "dataset_description.json").write_text("{}")
    return root


@pytest.fixture(scope="module")
def volume_folder():
    return plugins.load_dataset("volume_folder")


def _params(module, root, **overrides):
    return {**copy.deepcopy(module.PARAMS), "root": str(root), **overrides}


def _kept(ras_volume, axis, min_fraction=0.1):
    """Kept slice indices by a direct numpy reimplementation of the documented rule."""
    low, high = np.percentile(ras_volume[ras_volume > 0], [0.5, 99.5])
    inside = np.clip((ras_volume - low) / (high - low), 0, 1) > 0
    other = tuple(a for a in range(3) if a != axis)
    return np.flatnonzero(inside.mean(axis=other) >= min_fraction)


BIDS_T1 = {"pattern": "sub-*/ses-*/anat/*_T1w.nii.gz", "group_pattern": "sub-([^/_]+)/"}


@pytest.mark.parametrize("axis", ["axial", "coronal", "sagittal"])  # RAS axes 2, 1, 0
def test_bids_layout_any_axis_split_by_subject(volume_folder, bids, tmp_path, axis):
    params = _params(volume_folder, bids, axis=axis, test_fraction=0.4, **BIDS_T1)
    meta = prepare("volume_folder", params, 32, tmp_path / "out")
    files = meta["provenance"]["files"]
    subjects = {side: {f.split("/")[0] for f in names} for side, names in files.items()}
    assert len(subjects["test"]) == 2 and len(subjects["train"]) == 3 and not subjects["train"] & subjects["test"]
    assert all(len(names) == 2 * len(subjects[side]) for side, names in files.items())  # both sessions, no mask
    for side, names in files.items():
        array = np.load(tmp_path / "out" / f"{side}.npy")
        if side == "train":  # with the monitor split, the end of the training stream
            array = np.concatenate([array, np.load(tmp_path / "out" / "monitor.npy")])
        expected = sum(len(_kept(_head(2 * SUBJECTS.index(f[4:6]) + int(f.split("/")[1][4:])),
                                 {"sagittal": 0, "coronal": 1, "axial": 2}[axis])) for f in names)
        assert array.shape == (expected, 1, 32, 32) and array.dtype == np.uint8
    assert f"{axis} slices" in meta["provenance"]["preprocessing"]


def test_flat_layout_with_the_default_pattern(volume_folder, tmp_path):
    names = ("a.nii.gz", "b.nii", "C.NII.GZ", "d.nii.gz")
    for i, name in enumerate(names):
        _write(tmp_path / "flat" / name, _head(i))
    (tmp_path / "flat" / "notes.txt").write_text("not a volume")
    params = _params(volume_folder, tmp_path / "flat")
    files = volume_folder.describe(params, 16)["files"]
    assert sorted(files["train"] + files["test"]) == sorted(names)
    counts = {side: split.count for side, split in volume_folder.build(params, 16).items()}
    assert counts == {side: sum(len(_kept(_head(names.index(f)), 2)) for f in files[side]) for side in files}


def test_coronal_and_sagittal_put_superior_up_and_anterior_right(tmp_path):
    volume = np.zeros((32, 32, 32), dtype=np.float32)
    volume[4:28, 4:28, 4:28] = 100.0
    volume[4:28, 20:28, 20:28] = 300.0  # a bright block, superior (high z) and anterior (high y)
    _write(tmp_path / "v.nii.gz", volume)
    coronal = next(volumes.square_slices(tmp_path / "v.nii.gz", [24], 32, axis=volumes.AXES["coronal"]))[0]
    sagittal = next(volumes.square_slices(tmp_path / "v.nii.gz", [16], 32, axis=volumes.AXES["sagittal"]))[0]
    assert coronal[5:11, 5:27].min() > 200 and coronal[13:27].max() < 50          # superior at the top
    assert sagittal[5:11, 21:27].min() > 200 and sagittal[5:11, 5:19].max() < 50  # anterior on the right
    assert sagittal[13:27].max() < 50


def test_axial_equals_hcp_on_the_hcp_layout(volume_folder, tmp_path):
    """Same code path: on HCP's own layout, grouped by subject, the arrays are those of the hcp plugin."""
    hcp = plugins.load_dataset("hcp")
    for i, subject in enumerate(("100206", "100307", "100408")):
        _write(tmp_path / "hcp" / subject / "T1w" / "T1w_acpc_dc_restore_brain.nii.gz", _head(i))
    params = _params(volume_folder, tmp_path / "hcp", pattern="*/T1w/T1w_acpc_dc_restore_brain.nii.gz",
                     group_pattern="^[^/]+", test_fraction=0.34)
    ours = volume_folder.build(params, 64)
    theirs = hcp.build({**copy.deepcopy(hcp.PARAMS), "root": str(tmp_path / "hcp"), "test_fraction": 0.34}, 64)
    for side in ("train", "test"):
        np.testing.assert_array_equal(np.stack(list(ours[side].images)), np.stack(list(theirs[side].images)))


def test_truncated_volume_is_named(volume_folder, bids):
    path = bids / "sub-03" / "ses-2" / "anat" / "sub-03_ses-2_T1w.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="sub-03_ses-2_T1w.nii.gz"):
        volume_folder.build(_params(volume_folder, bids, **BIDS_T1), 32)


def test_empty_match_names_root_and_pattern(volume_folder, bids):
    with pytest.raises(DataError, match=r"bids matches params\.pattern '\*\*/\*_FLAIR\.nii\.gz'"):
        volume_folder.validate(_params(volume_folder, bids, pattern="**/*_FLAIR.nii.gz"), 32)


def test_no_slice_above_the_threshold(volume_folder, bids):
    with pytest.raises(DataError, match="min_brain_fraction = 0.99"):
        volume_folder.build(_params(volume_folder, bids, min_brain_fraction=0.99, **BIDS_T1), 32)


@pytest.mark.parametrize("override, key", [
    ({"axis": "transverse"}, "params.axis"),
    ({"slice_step": 0}, "params.slice_step"),
    ({"min_brain_fraction": 1.5}, "params.min_brain_fraction"),
    ({"group_pattern": "sub-("}, "params.group_pattern"),
    ({"test_fraction": 0}, "params.test_fraction"),
])
def test_validate_names_the_key(volume_folder, bids, override, key):
    with pytest.raises(ConfigError, match=key):
        volume_folder.validate(_params(volume_folder, bids, **override), 32)
