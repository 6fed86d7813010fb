"""Shapes: one to a few flat-coloured disks, squares and triangles with sharp, anti-aliased edges.

Why it is here: dead leaves holds more detail than a 32-d latent can carry, so a small VAE trained
for a CPU budget of seconds only learns the mean colour and its blur says little about the loss.
Shapes has a handful of known factors that such a VAE does learn in that budget (defaults at 32²,
latent 32, widths 16->64: 10 epochs, ~10 s of one CPU thread, put L2 ~5 dB above the best trivial
predictor); a sharp edge is then fully determined by factors the latent holds (kind, position,
size), so an edge the decoder still blurs is the loss's doing, not missing information.

Each image: a background that is a linear colour gradient (colours at its two ends uniform, direction
uniform on the circle, spanning the image from corner to corner), then `count` shapes (uniform in
1..max_shapes) painted one over the other. Each shape draws its kind (disk, square, upright triangle;
axis-aligned, no rotation), its size (radius, half side, circumradius; uniform in `size_frac` times
the image side), its centre (uniform where the shape lies wholly inside the frame) and a uniform
colour; channels=3 draws RGB colours, channels=1 grey levels, each value uniform in [0, 1].

Anti-aliasing by coverage: a shape covers a pixel by alpha = clip(0.5 - d, 0, 1), with d the signed
distance (pixels) from the pixel centre to the shape's outline (disks: exact; squares and triangles:
the largest distance to an edge's line, which is the distance everywhere but just outside a corner).
alpha is the exact area fraction for a straight edge along a pixel axis; every edge is a ramp one
pixel wide across the edge, so a row or column crossing an edge meets at most 2 partial pixels.
Compositing is "over": image = image + alpha * (colour - image). Rendering is vectorised over images
(the defaults take well under a second at 32²).

Split: image i of split s is drawn from `SeedSequence(seed, spawn_key=(s, i))`, s = 0 train, 1 test,
as in `deadleaves`: disjoint seed streams, and an image does not depend on how many others are drawn.
"""

from __future__ import annotations

import numpy as np

from blurbench.dataset_api import Split
from blurbench.errors import ConfigError

PARAMS = {
    "n_train": 2048,
    "n_test": 256,
    "channels": 3,              # 1 = grey levels, 3 = RGB colours
    "max_shapes": 2,            # each image holds 1..max_shapes shapes
    "size_frac": [0.12, 0.3],   # shape size (radius, half side, circumradius) / image side
    "seed": 0,
}
RESOLUTIONS = (16, 32, 64, 128)
KINDS = ("disk", "square", "triangle")

_SPLITS = {"train": 0, "test": 1}
_IMAGES_PER_BATCH = 512


def channels(params: dict) -> int:
    return params["channels"]


def validate(params: dict, resolution: int) -> None:
    for key, low in (("n_train", 1), ("n_test", 1), ("max_shapes", 1), ("seed", 0)):
        value = params[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"params.{key} must be an integer >= {low}, got {value!r}")
    if params["channels"] not in (1, 3) or isinstance(params["channels"], bool):
        raise ConfigError(f"params.channels must be 1 (grey) or 3 (colour), got {params['channels']!r}")
    frac = params["size_frac"]
    if (not isinstance(frac, list) or len(frac) != 2
            or not all(isinstance(f, (int, float)) and not isinstance(f, bool) for f in frac)
            or not 0 < frac[0] <= frac[1] < 0.5):
        raise ConfigError(f"params.size_frac must be [low, high] with 0 < low <= high < 0.5, got {frac!r}")
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution {resolution} is not supported by shapes; "
                          f"supported: {', '.join(map(str, RESOLUTIONS))}")


def draw(rng: np.random.Generator, n_channels: int, max_shapes: int, size_frac) -> dict:
    """The factors of one image, in image-side units (positions and sizes in [0, 1])."""
    size = rng.uniform(*size_frac, size=max_shapes)
    return {
        "background": rng.random((2, n_channels)),
        "angle": rng.uniform(0.0, 2.0 * np.pi),
        "count": rng.integers(1, max_shapes + 1),
        "kind": rng.integers(0, len(KINDS), size=max_shapes),
        "size": size,
        "centre": size[:, None] + (1.0 - 2.0 * size[:, None]) * rng.random((max_shapes, 2)),  # (x, y)
        "colour": rng.random((max_shapes, n_channels)),
    }


def signed_distance(kind: np.ndarray, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Distance (pixels) from offsets (dx, dy) to each shape's outline, negative inside; y points down."""
    disk = np.hypot(dx, dy) - r
    square = np.maximum(np.abs(dx), np.abs(dy)) - r
    slant = 0.5 * np.sqrt(3.0) * np.abs(dx) - 0.5 * dy                  # the two upper edges' normals
    triangle = np.maximum(dy, slant) - 0.5 * r                          # inradius = circumradius / 2
    return np.select([kind == 0, kind == 1], [disk, square], triangle)


def render(factors: dict, size: int) -> np.ndarray:
    """Images (n, C, size, size) in [0, 1] from stacked factors (each entry with a leading image axis)."""
    centres = np.arange(size) + 0.5                                     # pixel centres, pixel units
    y, x = centres[:, None], centres[None, :]
    cos, sin = np.cos(factors["angle"])[:, None, None], np.sin(factors["angle"])[:, None, None]
    t = 0.5 + ((x - size / 2) * cos + (y - size / 2) * sin) / (size * (np.abs(cos) + np.abs(sin)))
    start, end = factors["background"][:, 0, :, None, None], factors["background"][:, 1, :, None, None]
    image = start + t[:, None] * (end - start)                          # (n, C, size, size)
    for j in range(factors["kind"].shape[1]):
        cx, cy = (factors["centre"][:, j, k, None, None] * size for k in (0, 1))
        d = signed_distance(factors["kind"][:, j, None, None], x - cx, y - cy,
                            factors["size"][:, j, None, None] * size)
        alpha = np.clip(0.5 - d, 0.0, 1.0) * (j < factors["count"])[:, None, None]
        image += alpha[:, None] * (factors["colour"][:, j, :, None, None] - image)
    return image


def _generator(split: str, count: int, params: dict, resolution: int):
    for start in range(0, count, _IMAGES_PER_BATCH):
        drawn = [draw(np.random.default_rng(np.random.SeedSequence(params["seed"], spawn_key=(_SPLITS[split], i))),
                      params["channels"], params["max_shapes"], params["size_frac"])
                 for i in range(start, min(start + _IMAGES_PER_BATCH, count))]
        factors = {key: np.stack([f[key] for f in drawn]) for key in drawn[0]}
        yield from np.round(render(factors, resolution) * 255.0).astype(np.uint8)


def build(params: dict, resolution: int) -> dict[str, Split]:
    validate(params, resolution)
    return {split: Split(params[f"n_{split}"], _generator(split, params[f"n_{split}"], params, resolution))
            for split in _SPLITS}


def describe(params: dict, resolution: int) -> dict:
    low, high = (f * resolution for f in params["size_frac"])
    return {
        "source": "synthetic flat-coloured shapes on a linear gradient (generated, no files)",
        "shapes": f"1..{params['max_shapes']} of {', '.join(KINDS)}, size {low:g}-{high:g} px, wholly inside",
        "colours": "uniform RGB" if params["channels"] == 3 else "uniform grey level",
        "antialiasing": "coverage clip(0.5 - signed distance, 0, 1): a one-pixel edge ramp",
        "split_rule": "image i of split s from SeedSequence(seed, spawn_key=(s, i)), s=0 train, s=1 test",
        "seed": params["seed"],
    }
