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
slice is >= 3 mm from every test slice). With the defaults: 87 training and 24 test slices. The
dropped slices, neither trained on nor tested, are the monitor split that training scores at every
log row (convergence): they lie next to test slices, so they track held-out PSNR, not training fit.

Augmentation (training slices only, at prepare time): `augment` copies of every training slice, each
a random affine resampling of the normalised slice about its centre (rotation uniform in +-5 degrees,
scale in 1 +- 5%, shift uniform in +-6% of the square field of view per axis, +-2 px at 32) by a cubic
spline (`scipy.ndimage.affine_transform`, order 3, background 0, clipped to [0, 1]), then a gamma in
1 +- 10% and a gain in 1 +- 10% (x -> clip(gain * x ** gamma, 0, 1)), then `to_square` like every
slice. Why: with 87 slices a default run's 10 epochs are 20 optimiser steps and the VAE ends below
the mean image; learning them takes ~1,800 steps, beyond the default run's CPU budget. With the
default 14 copies (1,305 images) 10 epochs are 210 steps and give ~7 dB over the mean image.
The copies stay off the test set's anatomy (an in-plane change never brings in a neighbouring slice)
and test slices are never augmented. The resampling runs at 1 mm, before the downsampling: the power
above half Nyquist of a copy stays within 1% of its slice's at 32 and 64 px, 2-5% lower at 128.
No flips: the template is exactly left-right symmetric, so a flip reproduces the slice.
Order: the training slices first (exactly the `augment: 0` set), then copy 1 of every training
slice, copy 2, ...; copy j of slice k is drawn from `SeedSequence(seed, spawn_key=(k, j))`, so it
depends neither on `augment` nor on the other slices. describe() lists every copy's draws.

The dataset is small by nature; it exists to run the HCP code path on real T1 intensities offline.
Resolutions stop at 128: 256 would upsample the 233-px field of view.
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
    "augment": 14,      # random copies per training slice (0: the slices alone)
    "seed": 0,
}
RESOLUTIONS = (32, 64, 128)
# Half-widths of the uniform augmentation draws: degrees, relative scale, shift as a fraction of the
# square field of view, relative gamma, relative gain.
AUGMENT_RANGES = {"rotation_deg": 5.0, "scale": 0.05, "shift": 0.06, "gamma": 0.1, "gain": 0.1}


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
    for key, low in (("block_size", 1), ("gap", 1), ("augment", 0), ("seed", 0)):
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
    return {"train": train, "test": test, "monitor": slices[(distance > 0) & (distance <= params["gap"])]}


def _load(params: dict):
    volume, slices = volumes.read_slices(template_path(), min_brain_fraction=params["min_brain_fraction"],
                                         clip_percentiles=tuple(params["clip_percentiles"]))
    if slices.size == 0:
        raise ConfigError(f"params.min_brain_fraction = {params['min_brain_fraction']} keeps no slice of "
                          f"{template_path()}")
    return volume, split_slices(slices, params)


def augment_draws(params: dict, train: np.ndarray) -> list[dict]:
    """The draws of every augmented copy, in training-array order: copy 1 of each slice, copy 2, ..."""
    r = AUGMENT_RANGES
    copies = []
    for j in range(1, params["augment"] + 1):
        for k in train:
            u = np.random.default_rng(np.random.SeedSequence(params["seed"], spawn_key=(int(k), j))).uniform(-1, 1, 6)
            copies.append({"slice": int(k), "rotation_deg": r["rotation_deg"] * u[0], "scale": 1 + r["scale"] * u[1],
                           "shift": [r["shift"] * u[2], r["shift"] * u[3]], "gamma": 1 + r["gamma"] * u[4],
                           "gain": 1 + r["gain"] * u[5]})
    return copies


def augment_slice(slice01: np.ndarray, draw: dict) -> np.ndarray:
    """One copy of a normalised slice: rotated, scaled and shifted about its centre, then gamma and gain."""
    from scipy import ndimage

    angle = np.deg2rad(draw["rotation_deg"])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    to_input = rotation.T / draw["scale"]          # affine_transform maps output coordinates to input ones
    centre = (np.array(slice01.shape) - 1) / 2
    shift = np.array(draw["shift"]) * max(slice01.shape)
    moved = ndimage.affine_transform(slice01, to_input, offset=centre - to_input @ (centre + shift), order=3,
                                     mode="constant", cval=0.0)
    return np.clip(draw["gain"] * np.clip(moved, 0.0, 1.0) ** draw["gamma"], 0.0, 1.0)


def _train_images(volume: np.ndarray, train: np.ndarray, params: dict, resolution: int):
    for k in train:
        yield volumes.to_square(volume[:, :, k], resolution)[None]
    for draw in augment_draws(params, train):
        yield volumes.to_square(augment_slice(volume[:, :, draw["slice"]], draw), resolution)[None]


def build(params: dict, resolution: int) -> dict[str, Split]:
    validate(params, resolution)
    volume, split = _load(params)
    train, test = split["train"], split["test"]
    return {"train": Split(len(train) * (1 + params["augment"]), _train_images(volume, train, params, resolution)),
            "test": Split(len(test), [volumes.to_square(volume[:, :, k], resolution)[None] for k in test]),
            "monitor": Split(len(split["monitor"]),
                             [volumes.to_square(volume[:, :, k], resolution)[None] for k in split["monitor"]])}


def describe(params: dict, resolution: int) -> dict:
    _, split = _load(params)
    return {
        "source": str(template_path()),
        "preprocessing": volumes.describe(params["clip_percentiles"], params["min_brain_fraction"]),
        "split_rule": f"blocks of {params['block_size']} slices, seeded test blocks, training slices more "
                      f"than {params['gap']} slices from any test slice",
        "train_slices": split["train"].tolist(),
        "test_slices": split["test"].tolist(),
        "monitor_slices": split["monitor"].tolist(),
        "augmentation": f"{params['augment']} copies per training slice, after the slices; ranges +-{AUGMENT_RANGES}",
        "augmented_copies": [{key: np.round(value, 4).tolist() for key, value in draw.items()}
                             for draw in augment_draws(params, split["train"])],
    }
