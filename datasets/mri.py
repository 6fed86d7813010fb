"""Axial slices of the MNI152 T1 template that nilearn ships, through the same code path as `hcp`.

Source: `mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz` in nilearn's package data (the ICBM 2009a
nonlinear symmetric template, 1 mm, 197 x 233 x 189, skull-stripped), read from the installed
package, never downloaded. It goes through `blurbench.volumes` exactly like every HCP volume: RAS
reorientation, percentile clip (`clip_percentiles`, default 0.5 / 99.5 of voxels > 0) to [0, 1],
axial slices whose fraction of brain voxels is >= `min_brain_fraction` (default 0.1: 123 of the
189 slices), zero-pad to a square (233 x 233), Lanczos resize to the resolution, uint8.

Split without neighbours: the kept slices, in z order, form blocks of `block_size` consecutive slices
(default 8). The blocks are cut into `round(test_fraction * n_blocks)` equal runs and one block per
run is drawn (seeded) as a test block, so the test slices spread over the whole brain. Training
slices closer than `gap` + 1 slices to a test slice are dropped (default gap 2: every training
slice is >= 3 mm from every test slice). With the defaults: 87 training and 24 test slices.

No augmentation: the template is exactly left-right symmetric (a flip reproduces the slice) and
shifted copies would only add near duplicates. The dataset is small by nature; it exists to run the
HCP code path on real T1 intensities offline. Resolutions stop at 128: 256 would upsample the
233-px field of view.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blurbench import volumes
from blurbench.dataset_api import Split
from blurbench.errors import ConfigError, DataError

TEMPLATE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"

PARAMS = {
    "min_brain_fraction": 0.1,
    "clip_percentiles": [0.5, 99.5],
    "block_size": 8,
    "test_fraction": 0.2,
    "gap": 2,
    "seed": 0,
}
RESOLUTIONS = (32, 64, 128)


def channels(params: dict) -> int:
    return 1


def template_path() -> Path:
    """The template inside the installed nilearn, located without importing nilearn (slow import)."""
    import importlib.util

    spec = importlib.util.find_spec("nilearn")
    if spec is None:
        raise DataError("nilearn is not installed; the mri dataset reads the MNI152 template it ships: "
                        "pip install 'nilearn<0.14'")
    return Path(spec.origin).parent / "datasets" / "data" / TEMPLATE


def validate(params: dict, resolution: int) -> None:
    volumes.check_params(params)
    for key, low in (("block_size", 1), ("gap", 1), ("seed", 0)):
        value = params[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"params.{key} must be an integer >= {low}, got {value!r}")
    frac = params["test_fraction"]
    if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 < frac < 1:
        raise ConfigError(f"params.test_fraction must be a number in (0, 1), got {frac!r}")
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution {resolution} is not supported by mri; "
                          f"supported: {', '.join(map(str, RESOLUTIONS))}")
    if not template_path().is_file():
        raise DataError(f"MNI152 template not found at {template_path()}; it ships with nilearn: "
                        f"reinstall it with pip install 'nilearn<0.14'")


def split_slices(slices: np.ndarray, params: dict) -> dict[str, np.ndarray]:
    """Train / test slice indices: seeded test blocks, training slices > gap away from any test slice."""
    blocks = [slices[i:i + params["block_size"]] for i in range(0, len(slices), params["block_size"])]
    n_test = round(params["test_fraction"] * len(blocks))
    if not 1 <= n_test < len(blocks):
        raise ConfigError(f"params.test_fraction = {params['test_fraction']} with {len(blocks)} blocks of "
                          f"params.block_size = {params['block_size']} slices gives {n_test} test blocks; "
                          f"need at least 1 test and 1 training block")
    rng = np.random.default_rng(params["seed"])
    chosen = [rng.choice(run) for run in np.array_split(np.arange(len(blocks)), n_test)]
    test = np.concatenate([blocks[b] for b in chosen])
    distance = np.abs(slices[:, None] - test[None, :]).min(axis=1)
    train = slices[distance > params["gap"]]
    if train.size == 0:
        raise ConfigError("params.gap leaves no training slice; lower gap or test_fraction")
    return {"train": train, "test": test}


def _load(params: dict):
    volume, slices = volumes.read_slices(template_path(), min_brain_fraction=params["min_brain_fraction"],
                                         clip_percentiles=tuple(params["clip_percentiles"]))
    if slices.size == 0:
        raise ConfigError(f"params.min_brain_fraction = {params['min_brain_fraction']} keeps no slice of "
                          f"{template_path()}")
    return volume, split_slices(slices, params)


def build(params: dict, resolution: int) -> dict[str, Split]:
    validate(params, resolution)
    volume, split = _load(params)
    return {name: Split(len(z), [volumes.to_square(volume[:, :, k], resolution)[None] for k in z])
            for name, z in split.items()}


def describe(params: dict, resolution: int) -> dict:
    _, split = _load(params)
    return {
        "source": str(template_path()),
        "preprocessing": volumes.describe(params["clip_percentiles"], params["min_brain_fraction"]),
        "split_rule": f"blocks of {params['block_size']} slices, seeded test blocks, training slices more "
                      f"than {params['gap']} slices from any test slice",
        "train_slices": split["train"].tolist(),
        "test_slices": split["test"].tolist(),
    }
