"""Dead leaves: occluding random disks with power-law radii, the standard synthetic texture for blur.

Model (Matheron; Lee, Mumford & Huang 2001; the "dead leaves chart" of camera texture-blur tests):
disks fall one on top of another; each image is what is visible from above. Radii follow the
density p(r) ~ r^-3 on [r_min_px, r_max_frac * resolution] (the scale-invariant choice: the image
statistics are the same at every scale between the two bounds and the power spectrum falls off
roughly as a power law). Disk centres are uniform on the image extended by r_max on every side, so
disks entering from outside the frame are included and the texture is stationary up to the border.
Each disk gets a uniform random colour (channels=3: each of R, G, B uniform in 0..255) or grey level
(channels=1). Pixels are point-sampled at their centres (a pixel belongs to the topmost disk that
contains its centre): edges are hard, with no antialiasing, which is what a blur measurement wants.

Rendering is exact, not truncated: the image is built top-down (the first disk drawn is the topmost;
later disks only show where nothing lies above them) and disks are added in rounds until every
pixel is covered; a round skips disks whose bounding box holds no uncovered pixel (an integral image
tells), which keeps it fast: the defaults (2048 + 256 images) take ~2 s of CPU at 32², ~8 s at 64².
`r_min_px` is in pixels, so at every resolution the finest detail is a pixel;
`r_max_frac` is a fraction of the image side.

Split: image i of split s is drawn from its own generator, seeded by
`SeedSequence(seed, spawn_key=(s, i))` with s = 0 for train and 1 for test, so the test images come
from a seed stream disjoint from the training one, an image does not depend on how many others are
drawn (n_train=100 gives the first 100 images of n_train=2048), and build() is deterministic.
"""

from __future__ import annotations

import numpy as np

from blurbench.dataset_api import Split
from blurbench.errors import ConfigError

PARAMS = {
    "n_train": 2048,
    "n_test": 256,
    "channels": 3,       # 1 = grey levels, 3 = RGB colours
    "r_min_px": 1.0,     # smallest disk radius, pixels
    "r_max_frac": 0.5,   # largest disk radius, fraction of the image side
    "seed": 0,
}
RESOLUTIONS = (16, 32, 64, 128, 256)

_SPLITS = {"train": 0, "test": 1}
_ROUND_COVER = 3.0       # each round covers a pixel 3 times on average: ~5% stays uncovered per round
_PIXELS_PER_BATCH = 1 << 17
_UNCOVERED = np.iinfo(np.int64).max


def channels(params: dict) -> int:
    return params["channels"]


def validate(params: dict, resolution: int) -> None:
    for key in ("n_train", "n_test"):
        if not isinstance(params[key], int) or isinstance(params[key], bool) or params[key] < 1:
            raise ConfigError(f"params.{key} must be a positive integer, got {params[key]!r}")
    if params["channels"] not in (1, 3) or isinstance(params["channels"], bool):
        raise ConfigError(f"params.channels must be 1 (grey) or 3 (colour), got {params['channels']!r}")
    if not isinstance(params["seed"], int) or isinstance(params["seed"], bool) or params["seed"] < 0:
        raise ConfigError(f"params.seed must be a non-negative integer, got {params['seed']!r}")
    for key in ("r_min_px", "r_max_frac"):
        if not isinstance(params[key], (int, float)) or isinstance(params[key], bool) or params[key] <= 0:
            raise ConfigError(f"params.{key} must be a positive number, got {params[key]!r}")
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution {resolution} is not supported by deadleaves; "
                          f"supported: {', '.join(map(str, RESOLUTIONS))}")
    r_max = params["r_max_frac"] * resolution
    if r_max <= params["r_min_px"]:
        raise ConfigError(f"params.r_max_frac * resolution = {r_max:g} px must exceed params.r_min_px = "
                          f"{params['r_min_px']:g}")


def radii(u: np.ndarray, r_min: float, r_max: float) -> np.ndarray:
    """Map uniforms u in [0, 1) to radii with density ~ r^-3 on [r_min, r_max] (inverse CDF)."""
    return (r_min ** -2 - u * (r_min ** -2 - r_max ** -2)) ** -0.5


def _mean_disk_area(r_min: float, r_max: float) -> float:
    """E[pi r^2] under the r^-3 law: pi * 2 ln(r_max / r_min) / (r_min^-2 - r_max^-2)."""
    return np.pi * 2.0 * np.log(r_max / r_min) / (r_min ** -2 - r_max ** -2)


def _paint(label, size, img, layer, x0, y0, width, cx, cy, r):
    """label[pixel] = min(label, layer) for every pixel centre strictly inside each disk."""
    npix = size * size
    for w in np.unique(width):
        s = np.flatnonzero(width == w)
        off = np.arange(w)
        px, py = x0[s, None] + off, y0[s, None] + off                  # (n, w)
        dx2, dy2 = (px - cx[s, None]) ** 2, (py - cy[s, None]) ** 2
        inside = (dy2[:, :, None] + dx2[:, None, :]) < (r[s] ** 2)[:, None, None]
        inside &= ((py >= 0) & (py < size))[:, :, None] & ((px >= 0) & (px < size))[:, None, :]
        flat = img[s, None, None] * npix + py[:, :, None] * size + px[:, None, :]
        np.minimum.at(label, flat[inside], np.broadcast_to(layer[s, None, None], inside.shape)[inside])


def _uncovered_in_box(uncovered, img, x0, y0, width):
    """Number of uncovered pixels in each disk's bounding box (integral image, O(1) per disk)."""
    n_img, size, _ = uncovered.shape
    integral = np.zeros((n_img, size + 1, size + 1), dtype=np.int64)
    integral[:, 1:, 1:] = uncovered.cumsum(axis=1).cumsum(axis=2)
    xa, ya = np.clip(x0, 0, size), np.clip(y0, 0, size)
    xb, yb = np.clip(x0 + width, 0, size), np.clip(y0 + width, 0, size)
    return integral[img, yb, xb] - integral[img, ya, xb] - integral[img, yb, xa] + integral[img, ya, xa]


def disks_per_round(size: int, r_min: float, r_max: float) -> int:
    """Disks drawn per image and round: they cover each pixel `_ROUND_COVER` times on average."""
    return int(np.ceil(_ROUND_COVER * (size - 1 + 2 * r_max) ** 2 / _mean_disk_area(r_min, r_max)))


def render(rngs: list, size: int, n_channels: int, r_min: float, r_max: float) -> np.ndarray:
    """One dead-leaves image per generator: uint8 array (len(rngs), n_channels, size, size).

    Each round, an image draws `rng.random((3 + n_channels, disks_per_round(...)))`: rows are the
    radius uniform, centre x, centre y (uniform on [-r_max, size - 1 + r_max]) and colour (value * 256
    truncated to uint8); pixel (row y, column x) is centred at (x, y).

    Top-down: label holds, per pixel, the index of the topmost disk containing it. Disks come in
    rounds (disk j of round k has index k * per_round + j, below every earlier disk); a round only
    paints disks whose bounding box still holds an uncovered pixel, and rounds stop when no pixel is
    uncovered. Each image draws only from its own generator, and only while it has uncovered pixels.
    """
    n_img = len(rngs)
    label = np.full(n_img * size * size, _UNCOVERED, dtype=np.int64)
    palette = np.zeros((n_img, 0, n_channels), dtype=np.uint8)
    lo, hi = -r_max, size - 1 + r_max                         # centres: the frame extended by r_max
    per_round = disks_per_round(size, r_min, r_max)
    active = np.arange(n_img)
    while active.size:
        draws = np.stack([rngs[i].random((3 + n_channels, per_round)) for i in active])
        r = radii(draws[:, 0], r_min, r_max)
        cx, cy = lo + (hi - lo) * draws[:, 1], lo + (hi - lo) * draws[:, 2]
        colours = np.zeros((n_img, per_round, n_channels), dtype=np.uint8)
        colours[active] = (draws[:, 3:] * 256).astype(np.uint8).transpose(0, 2, 1)
        layer = palette.shape[1] + np.broadcast_to(np.arange(per_round), r.shape)
        palette = np.concatenate([palette, colours], axis=1)
        img = np.broadcast_to(active[:, None], r.shape)
        img, layer, cx, cy, r = (a.ravel() for a in (img, layer, cx, cy, r))
        width = np.floor(2 * r).astype(np.int64) + 1       # pixel centres inside a disk fit in width x width
        x0 = np.floor(cx - r).astype(np.int64) + 1
        y0 = np.floor(cy - r).astype(np.int64) + 1
        uncovered = (label == _UNCOVERED).reshape(n_img, size, size)
        keep = np.flatnonzero(_uncovered_in_box(uncovered, img, x0, y0, width) > 0)
        _paint(label, size, img[keep], layer[keep], x0[keep], y0[keep], width[keep], cx[keep], cy[keep], r[keep])
        active = np.flatnonzero((label == _UNCOVERED).reshape(n_img, -1).any(axis=1))
    label = label.reshape(n_img, size * size)
    pixels = np.take_along_axis(palette, label[:, :, None], axis=1)   # (n_img, npix, C)
    return pixels.transpose(0, 2, 1).reshape(n_img, n_channels, size, size)


def _generator(split: str, count: int, params: dict, resolution: int):
    batch = max(1, _PIXELS_PER_BATCH // resolution ** 2)
    for start in range(0, count, batch):
        rngs = [np.random.default_rng(np.random.SeedSequence(params["seed"], spawn_key=(_SPLITS[split], i)))
                for i in range(start, min(start + batch, count))]
        yield from render(rngs, resolution, params["channels"], float(params["r_min_px"]),
                          params["r_max_frac"] * resolution)


def build(params: dict, resolution: int) -> dict[str, Split]:
    validate(params, resolution)
    return {split: Split(params[f"n_{split}"], _generator(split, params[f"n_{split}"], params, resolution))
            for split in _SPLITS}


def describe(params: dict, resolution: int) -> dict:
    return {
        "source": "synthetic dead-leaves model (generated, no files)",
        "radius_law": f"p(r) ~ r^-3 on [{params['r_min_px']:g}, {params['r_max_frac'] * resolution:g}] px",
        "colours": "uniform RGB per disk" if params["channels"] == 3 else "uniform grey level per disk",
        "split_rule": "image i of split s from SeedSequence(seed, spawn_key=(s, i)), s=0 train, s=1 test",
        "seed": params["seed"],
    }
