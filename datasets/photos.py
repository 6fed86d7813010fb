"""Random crops of the colour photographs bundled in the scikit-image wheel (offline, no download).

Source: the image files in `skimage/data/` of the installed scikit-image, read directly with Pillow
(never through `skimage.data.<name>()`, which may go through pooch and fetch). Only colour
photographs of natural scenes are offered (`BUNDLED` below); grey photographs (camera, moon, coins,
grass, ...) are excluded rather than replicated to RGB, so every image has real colour statistics.
Left out on purpose: motorcycle_right (the stereo partner of motorcycle_left, a near duplicate),
retina (mostly black border), and synthetic images (color, phantom, logo, chessboards).

Split by source photo: `test_photos` (default chelsea and rocket) give the test crops, the other
entries of `photos` the training crops, so no test crop comes from a training photo.

Crops: each crop picks a photo of its split uniformly, a square side `scale * short side of that
photo` with scale uniform in `crop_scale` (fractions of the photo's shorter side), and a uniform
position; the crop is resized to the resolution with Pillow's Lanczos filter (antialiased;
`reducing_gap=3`, i.e. a box pre-reduction to >= 3x the target first, for speed: mean absolute
difference to the exact filter ~0.03 grey levels). A crop
is never upsampled: validate() requires crop_scale[0] * (shortest side among the photos) >= resolution.
Crop i of split s is drawn from `SeedSequence(seed, spawn_key=(s,))`, s = 0 train, 1 test;
describe() lists every crop box.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blurbench.dataset_api import Split
from blurbench.errors import ConfigError, DataError

# name -> file in skimage/data shipped with the wheel (scikit-image 0.2x), colour natural photographs.
BUNDLED = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "ihc": "ihc.png",
    "motorcycle_left": "motorcycle_left.png",
    "rocket": "rocket.jpg",
}

PARAMS = {
    "n_train": 2048,
    "n_test": 256,
    "photos": sorted(BUNDLED),             # every photo used (train = photos - test_photos)
    "test_photos": ["chelsea", "rocket"],
    "crop_scale": [0.25, 0.75],           # crop side as a fraction of the photo's shorter side
    "seed": 0,
}
RESOLUTIONS = (32, 64, 128)

_SPLITS = {"train": 0, "test": 1}


def channels(params: dict) -> int:
    return 3


def photo_path(name: str) -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent / BUNDLED[name]


def _open(name: str):
    from PIL import Image

    path = photo_path(name)
    if not path.is_file():
        raise DataError(f"photo '{name}' not found at {path}: this scikit-image install does not bundle it; "
                        f"reinstall scikit-image from its wheel or drop '{name}' from params.photos")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except OSError as exc:
        raise DataError(f"cannot read photo {path}: {exc}") from exc


def _split_photos(params: dict) -> dict[str, list[str]]:
    test = sorted(params["test_photos"])
    return {"train": sorted(set(params["photos"]) - set(test)), "test": test}


def validate(params: dict, resolution: int) -> None:
    for key in ("n_train", "n_test", "seed"):
        value = params[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "seed" else 1):
            raise ConfigError(f"params.{key} must be a {'non-negative' if key == 'seed' else 'positive'} "
                              f"integer, got {value!r}")
    for key in ("photos", "test_photos"):
        names = params[key]
        if not isinstance(names, list) or not names:
            raise ConfigError(f"params.{key} must be a non-empty list of photo names, got {names!r}")
        unknown = [n for n in names if n not in BUNDLED]
        if unknown:
            raise ConfigError(f"params.{key}: unknown photo(s) {unknown}; bundled colour photos: "
                              f"{', '.join(sorted(BUNDLED))}")
    outside = sorted(set(params["test_photos"]) - set(params["photos"]))
    if outside:
        raise ConfigError(f"params.test_photos: {outside} not in params.photos")
    if not _split_photos(params)["train"]:
        raise ConfigError("params.test_photos holds every photo of params.photos; no training photo is left")
    scale = params["crop_scale"]
    if (not isinstance(scale, list) or len(scale) != 2
            or not all(isinstance(s, (int, float)) and not isinstance(s, bool) for s in scale)
            or not 0 < scale[0] <= scale[1] <= 1):
        raise ConfigError(f"params.crop_scale must be [low, high] with 0 < low <= high <= 1, got {scale!r}")
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution {resolution} is not supported by photos; "
                          f"supported: {', '.join(map(str, RESOLUTIONS))}")
    for name in params["photos"]:
        smallest = scale[0] * min(_open(name).size)
        if smallest < resolution:
            raise ConfigError(f"params.crop_scale[0] = {scale[0]} gives {smallest:.0f}-px crops of photo "
                              f"'{name}', smaller than the resolution {resolution} (crops are never "
                              f"upsampled); raise crop_scale[0] to >= {resolution / min(_open(name).size):.2f}")


def crop_boxes(params: dict, split: str) -> list[tuple[str, int, int, int]]:
    """(photo, left, top, side) of every crop of `split`, in order."""
    names = _split_photos(params)[split]
    sizes = {n: _open(n).size for n in names}
    rng = np.random.default_rng(np.random.SeedSequence(params["seed"], spawn_key=(_SPLITS[split],)))
    count = params[f"n_{split}"]
    which = rng.integers(0, len(names), size=count)
    scale = rng.uniform(*params["crop_scale"], size=count)
    u = rng.random((count, 2))
    boxes = []
    for k, s, (ux, uy) in zip(which, scale, u):
        width, height = sizes[names[k]]
        side = int(round(s * min(width, height)))
        boxes.append((names[k], int(ux * (width - side + 1)), int(uy * (height - side + 1)), side))
    return boxes


def _crops(boxes: list, resolution: int):
    from PIL import Image

    photos = {name: _open(name) for name in {b[0] for b in boxes}}
    for name, left, top, side in boxes:
        crop = photos[name].resize((resolution, resolution), Image.Resampling.LANCZOS, reducing_gap=3.0,
                                   box=(left, top, left + side, top + side))
        yield np.asarray(crop, dtype=np.uint8).transpose(2, 0, 1).copy()


def build(params: dict, resolution: int) -> dict[str, Split]:
    validate(params, resolution)
    return {split: Split(params[f"n_{split}"], _crops(crop_boxes(params, split), resolution)) for split in _SPLITS}


def describe(params: dict, resolution: int) -> dict:
    import skimage

    split_photos = _split_photos(params)
    return {
        "source": f"photographs bundled with scikit-image {skimage.__version__}",
        "files": {name: str(photo_path(name)) for name in params["photos"]},
        "split_rule": "by source photo: test crops from test_photos only",
        "train_photos": split_photos["train"],
        "test_photos": split_photos["test"],
        "resize": "Pillow Lanczos (antialiased, reducing_gap=3), never upsampled",
        "crop_boxes": {split: [list(b) for b in crop_boxes(params, split)] for split in _SPLITS},
    }
