"""The out-of-distribution condition sets of issue 26, built from the test split's LR images.

Each set transforms the LR inputs y (N, C, h, w) in [0, 1] that a flow is conditioned on; the HR
test images are unchanged, so a condition measures how the flow reacts to an input unlike its
training inputs, not how well it super-resolves. None is clamped back to [0, 1]: leaving the range
is part of being out of distribution, as it is for the noisy inputs the paper shows.

- `in_distribution`: y itself.
- `noise_<σ>`: y + N(0, σ²), σ ∈ {0.05, 0.1, 0.2}, seeded.
- `contrast_<k>`: each image's contrast scaled by k ∈ {1.5, 2} about its own mean, ȳ + k (y − ȳ).
- `inverted`: 1 − y (colour inversion).
- `other_dataset`: the other dataset's LR test images, first N, resampled to this one's h × w by
  area averaging when sizes differ; grey → RGB repeats the channel, RGB → grey takes the ITU-R
  BT.601 luma 0.299 R + 0.587 G + 0.114 B.
- `constant`: each image replaced by its mean colour (no structure at all).
- `saturated`: each pixel thresholded at 0.5 to 0 or 1 (hard edges, no grey levels).
"""

from __future__ import annotations

import numpy as np

NOISE_SIGMAS = (0.05, 0.1, 0.2)
CONTRASTS = (1.5, 2.0)
LUMA = np.array([0.299, 0.587, 0.114])
IN_DISTRIBUTION = "in_distribution"


def condition_names(with_other: bool = True) -> list[str]:
    """Every condition set, in table order (in-distribution first)."""
    return ([IN_DISTRIBUTION] + [f"noise_{s:g}" for s in NOISE_SIGMAS] + [f"contrast_{k:g}" for k in CONTRASTS]
            + ["inverted"] + ["other_dataset"] * with_other + ["constant", "saturated"])


def match_channels(y: np.ndarray, channels: int) -> np.ndarray:
    """(N, C, h, w) to `channels` channels: grey -> RGB repeats, RGB -> grey is BT.601 luma."""
    if y.shape[1] == channels:
        return y
    if y.shape[1] == 1 and channels == 3:
        return np.repeat(y, 3, axis=1)
    if y.shape[1] == 3 and channels == 1:
        return np.einsum("nchw,c->nhw", y, LUMA)[:, None]
    raise ValueError(f"images: {y.shape[1]} channels cannot be converted to {channels}; expected 1 or 3")


def match_size(y: np.ndarray, size: int) -> np.ndarray:
    """(N, C, h, h) to (N, C, size, size) by area averaging (h a multiple of size) or nearest repeat."""
    h = y.shape[-1]
    if h == size:
        return y
    if h % size == 0:
        f = h // size
        return y.reshape(*y.shape[:2], size, f, size, f).mean(axis=(3, 5))
    if size % h == 0:
        f = size // h
        return y.repeat(f, axis=-2).repeat(f, axis=-1)
    raise ValueError(f"images: size {h} and {size} are not multiples of each other")


def build_conditions(y: np.ndarray, seed: int, other: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Condition name -> (N, C, h, w) float64 LR inputs, from the test split's LR images `y`.

    `other`: the other dataset's LR test images (any channels and size); without it there is no
    `other_dataset` set.
    """
    y = np.asarray(y, dtype=np.float64)
    if y.ndim != 4:
        raise ValueError(f"LR images: shape {y.shape} is not (N, C, h, w)")
    rng = np.random.default_rng(seed)
    mean = y.mean(axis=(2, 3), keepdims=True)
    out = {IN_DISTRIBUTION: y}
    for s in NOISE_SIGMAS:
        out[f"noise_{s:g}"] = y + s * rng.standard_normal(y.shape)
    for k in CONTRASTS:
        out[f"contrast_{k:g}"] = mean + k * (y - mean)
    out["inverted"] = 1 - y
    if other is not None:
        o = match_size(match_channels(np.asarray(other, dtype=np.float64), y.shape[1]), y.shape[-1])
        if o.shape[0] < y.shape[0]:
            o = np.concatenate([o] * -(-y.shape[0] // o.shape[0]))
        out["other_dataset"] = o[:y.shape[0]]
    out["constant"] = np.broadcast_to(mean, y.shape).copy()
    out["saturated"] = (y > 0.5).astype(np.float64)
    return {name: out[name] for name in condition_names(other is not None)}
