"""A folder of NIfTI volumes in any layout (BIDS, flat, one folder per subject) -> 2-D slices.

Why not `hcp` with its `pattern`: that pattern holds exactly one `{subject}` (a BIDS path names the
subject twice: `sub-01/anat/sub-01_T1w.nii.gz`), cannot span sessions, slices axially only, supports
64-256 px only, and its messages send you to ConnectomeDB. This plugin runs the same code path.

Which files and the split: `blurbench.folders` (`root`, `pattern`, `split_file`, `test_fraction`,
`group_pattern`, `seed`). `pattern: null` takes every .nii and .nii.gz file in any folder. The split
is by volume, or by group of volumes (`group_pattern: "sub-([^/_]+)"` keeps every session of a
subject on one side), so slices of one volume never cross splits.

Preprocessing is `blurbench.volumes`, the code path of `hcp` and `mri`: RAS reorientation, per-volume
clip to the `clip_percentiles` of voxels > 0 scaled to [0, 1], the slices across `axis` (axial,
coronal or sagittal) whose fraction of voxels > 0 (brain, or foreground) is >= `min_brain_fraction`,
every `slice_step`-th of them, zero-pad to a square, Lanczos resize, uint8. The fraction means
foreground only where the background is 0: skull-stripped or masked volumes work best.

build() reads every volume twice, as hcp does: once to count the kept slices (the split sizes must be
known before writing), once to produce them; a corrupt or truncated file raises DataError naming it
during the first pass, before anything is written.
"""

from __future__ import annotations

import itertools

from blurbench import folders, volumes
from blurbench.dataset_api import Split
from blurbench.errors import ConfigError, DataError

PARAMS = {
    "root": None,
    "pattern": None,
    "axis": "axial",
    "min_brain_fraction": 0.1,
    "clip_percentiles": [0.5, 99.5],
    "slice_step": 1,
    "split_file": None,
    "test_fraction": 0.2,
    "group_pattern": None,
    "seed": 0,
}
RESOLUTIONS = (8, 16, 32, 64, 128, 256)  # the model halves down to 4x4: powers of two >= 8

EXTENSIONS = (".nii", ".nii.gz")


def channels(params: dict) -> int:
    return 1


def _check_params(params: dict, resolution: int) -> None:
    folders.check_params(params)
    volumes.check_params(params)
    if params["axis"] not in volumes.AXES:
        raise ConfigError(f"params.axis: {params['axis']!r}; expected one of {', '.join(volumes.AXES)}")
    step = params["slice_step"]
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        raise ConfigError(f"params.slice_step: {step!r}; expected an integer >= 1")
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution {resolution} is not supported by volume_folder; "
                          f"supported: {', '.join(map(str, RESOLUTIONS))}")


def _split(params: dict) -> dict[str, list[str]]:
    return folders.split(params, folders.list_files(params, EXTENSIONS, "NIfTI"), "NIfTI")


def validate(params: dict, resolution: int) -> None:
    """Params, root, the matched files, the split file and groups: no volume is read."""
    _check_params(params, resolution)
    _split(params)


def build(params: dict, resolution: int) -> dict[str, Split]:
    validate(params, resolution)
    root, axis = folders.root_of(params, "NIfTI"), volumes.AXES[params["axis"]]
    clip = tuple(params["clip_percentiles"])
    out = {}
    for side, names in _split(params).items():
        plan = []
        for name in names:
            _, kept = volumes.read_slices(root / name, min_brain_fraction=params["min_brain_fraction"],
                                          clip_percentiles=clip, axis=axis)
            plan.append((root / name, kept[::params["slice_step"]]))
        count = sum(len(kept) for _, kept in plan)
        if count == 0:
            raise DataError(f"no {params['axis']} slice of the {side} volumes {names} has a brain fraction >= "
                            f"params.min_brain_fraction = {params['min_brain_fraction']}")
        images = itertools.chain.from_iterable(
            volumes.square_slices(path, kept, resolution, clip_percentiles=clip, axis=axis) for path, kept in plan)
        out[side] = Split(count, images)
    return out


def describe(params: dict, resolution: int) -> dict:
    root = folders.root_of(params, "NIfTI")
    return {
        "source": f"NIfTI folder {root}",
        "file_rule": folders.pattern_rule(params, EXTENSIONS),
        "preprocessing": volumes.describe(params["clip_percentiles"], params["min_brain_fraction"], params["axis"]),
        "slice_step": params["slice_step"],
        "split_rule": f"by volume: {folders.split_rule(params)}",
        "files": _split(params),
    }
