"""T1 MRI volumes (NIfTI) to uint8 axial slices: the one code path of the `mri` and `hcp` datasets.

Preprocessing, in order:
1. `load_volume`: read with nibabel and reorient to RAS (`as_closest_canonical`), so axis 2 runs
   inferior -> superior and an axial slice is `volume[:, :, k]`. The voxel data is read inside the
   guard, so a missing, corrupt or truncated file (nibabel only notices a truncated gzip when the
   data is read) raises `DataError` naming the file.
2. `normalise`: per volume, clip to the 0.5th and 99.5th percentiles of the voxels > 0 (the brain of
   a skull-stripped volume; the background is 0) and scale that range linearly to [0, 1].
3. `brain_slices`: keep the axial slices in which the fraction of in-plane voxels that are > 0 after
   normalisation is at least `min_brain_fraction`.
4. `to_square`: rotate so anterior is up and the subject's left is on the image's left (neurological
   view), zero-pad centred to a square (nothing is cropped, the physical aspect ratio is kept),
   resize to the resolution with Pillow's Lanczos filter on float values (antialiased when
   downsampling), clip to [0, 1] and round to uint8.

Steps 3 and 4 also cut along another axis (`AXES`, for `volume_folder`): a coronal slice
`volume[:, k, :]` or a sagittal one `volume[k, :, :]` gets the same rotation, which puts superior up,
with the subject's left on the image's left (coronal) or anterior on the right (sagittal).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError

DEFAULT_CLIP_PERCENTILES = (0.5, 99.5)
AXES = {"sagittal": 0, "coronal": 1, "axial": 2}  # RAS axis a slice is cut across


def check_params(params: dict) -> None:
    """The preprocessing keys `mri` and `hcp` share: `clip_percentiles`, `min_brain_fraction`."""
    pct = params.get("clip_percentiles")
    if (not isinstance(pct, (list, tuple)) or len(pct) != 2
            or not all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in pct)
            or not 0 <= pct[0] < pct[1] <= 100):
        raise ConfigError(f"params.clip_percentiles must be [low, high] with 0 <= low < high <= 100, got {pct!r}")
    frac = params.get("min_brain_fraction")
    if not isinstance(frac, (int, float)) or isinstance(frac, bool) or not 0 <= frac < 1:
        raise ConfigError(f"params.min_brain_fraction must be a number in [0, 1), got {frac!r}")


def load_volume(path: str | Path) -> np.ndarray:
    """The voxel array (float32, RAS axes) of a 3-D NIfTI file; DataError names the file on failure."""
    import nibabel as nib

    path = Path(path)
    if not path.is_file():
        raise DataError(f"NIfTI file not found: {path}")
    try:
        image = nib.as_closest_canonical(nib.load(path))
        data = image.get_fdata(dtype=np.float32)
    except Exception as exc:  # nibabel raises many types (gzip, zlib, EOF, header errors): all mean a bad file
        raise DataError(f"cannot read NIfTI file {path} (corrupt or truncated?): "
                        f"{type(exc).__name__}: {exc}") from exc
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise DataError(f"NIfTI file {path} holds an array of shape {data.shape}; expected a 3-D volume")
    if not np.isfinite(data).all():
        raise DataError(f"NIfTI file {path} contains NaN or infinite voxels")
    return data


def normalise(volume: np.ndarray, clip_percentiles=DEFAULT_CLIP_PERCENTILES, *, name: str = "volume") -> np.ndarray:
    """Clip to the given percentiles of the voxels > 0 and scale to [0, 1] (float32)."""
    brain = volume[volume > 0]
    if brain.size == 0:
        raise DataError(f"{name} has no voxel > 0; expected a (skull-stripped) T1 volume")
    low, high = np.percentile(brain, clip_percentiles)
    if high <= low:
        raise DataError(f"{name} is constant inside the brain (percentiles {clip_percentiles} both {low}); "
                        f"cannot normalise")
    return np.clip((volume - low) / (high - low), 0.0, 1.0).astype(np.float32)


def brain_slices(volume01: np.ndarray, min_brain_fraction: float, axis: int = 2) -> np.ndarray:
    """Indices k of slices across `axis` (2: axial, `volume01[:, :, k]`) whose fraction of voxels > 0
    is >= the threshold."""
    fraction = np.moveaxis(volume01 > 0, axis, -1).mean(axis=(0, 1))
    return np.flatnonzero(fraction >= min_brain_fraction)


def to_square(slice01: np.ndarray, resolution: int) -> np.ndarray:
    """One axial slice in [0, 1] (RAS x, y) -> uint8 resolution x resolution image, anterior up."""
    from PIL import Image

    view = np.rot90(slice01)  # (x, y) -> rows anterior..posterior, columns subject's left..right
    side = max(view.shape)
    square = np.zeros((side, side), dtype=np.float32)
    top, left = (side - view.shape[0]) // 2, (side - view.shape[1]) // 2
    square[top:top + view.shape[0], left:left + view.shape[1]] = view
    resized = np.asarray(Image.fromarray(square).resize((resolution, resolution),
                                                                   Image.Resampling.LANCZOS))
    return np.round(np.clip(resized, 0.0, 1.0) * 255.0).astype(np.uint8)


def describe(clip_percentiles, min_brain_fraction: float, axis: str = "axial") -> str:
    """The preprocessing in one line, with the values used (for a dataset's meta.json)."""
    return (f"RAS reorientation; clip to percentiles {list(clip_percentiles)} of voxels > 0, scale to [0, 1]; "
            f"{axis} slices with brain fraction >= {min_brain_fraction}; zero-pad centred to a square; "
            f"Pillow Lanczos resize (antialiased); uint8")


def read_slices(path: str | Path, *, min_brain_fraction: float,
                clip_percentiles=DEFAULT_CLIP_PERCENTILES, axis: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Steps 1-3 for one file: (normalised volume, indices of the slices with enough brain)."""
    volume = normalise(load_volume(path), clip_percentiles, name=f"NIfTI file {path}")
    return volume, brain_slices(volume, min_brain_fraction, axis)


def square_slices(path: str | Path, slices, resolution: int, *, clip_percentiles=DEFAULT_CLIP_PERCENTILES,
                  axis: int = 2):
    """Step 4 for the given slices of one file, read again: uint8 1 x res x res arrays, one at a time."""
    volume = normalise(load_volume(path), clip_percentiles, name=f"NIfTI file {path}")
    for k in slices:
        yield to_square(np.take(volume, k, axis=axis), resolution)[None]
