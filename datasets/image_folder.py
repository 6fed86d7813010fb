"""Any folder of images as a dataset: your own photos, scans or renders, without writing code.

Which files and the split: `blurbench.folders` (`root`, `pattern`, `split_file`, `test_fraction`,
`group_pattern`, `seed`). `pattern: null` (the default) takes every PNG, JPEG, BMP and TIFF file
(.png .jpg .jpeg .bmp .tif .tiff, any case) in any sub-folder.

Each image, in order:
1. Decoded with Pillow (the first frame of a multi-page file) and turned upright by its EXIF
   orientation, as a photo viewer shows it. 16-bit grey (I;16) is scaled to 8 bits (/257); 32-bit
   integer and float images (modes I, F) are refused: their range is unknown.
2. Transparency (RGBA, LA, PA, or a palette/RGB/grey transparent colour) is composited on white, then
   the image is converted to `channels`: 3 -> RGB (grey replicated, palette expanded), 1 -> L
   (ITU-R 601-2 luma). describe() counts every conversion by source mode.
3. `fit: center_crop` takes the centred square of the shorter side (the centring of celeba's crop box);
   `fit: pad` pads to the square of the longer side with black, centred (as `blurbench.volumes` pads
   slices), so nothing is cut.
4. Pillow's Lanczos resize to the resolution, as celeba does (antialiased when reducing). A square
   smaller than the resolution is upsampled; describe() counts those images.

Caps: each side is put in a seeded order (`seed`, side) and `n_train` / `n_test` keep its first N
readable files (null = all), so a cap takes a random subset, not the first folder. Arrays are
written in that order.

Unreadable files: build() must announce the split sizes before it streams the images, and a file that
fails half-way through the stream would leave the prepared array short. So build() first checks every
file it will use, once: Pillow's verify() (structure, PNG checksums) and a full decode (a truncated
JPEG only shows when decoded): one extra decode per image. An unreadable file stops `prepare` with a
DataError naming it; with `skip_unreadable: true` it is skipped instead, and describe() (meta.json)
names it with the reason. The check's result is cached per file (path, size, modification time), so
describe() does not decode again.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blurbench import folders
from blurbench.dataset_api import Split, check_counts
from blurbench.errors import ConfigError, DataError

PARAMS = {
    "root": None,
    "pattern": None,
    "channels": 3,
    "fit": "center_crop",
    "split_file": None,
    "test_fraction": 0.2,
    "group_pattern": None,
    "n_train": None,
    "n_test": None,
    "skip_unreadable": False,
    "seed": 0,
}
RESOLUTIONS = (8, 16, 32, 64, 128, 256)  # the model halves down to 4x4: powers of two >= 8

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
FITS = ("center_crop", "pad")
ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
SHOWN = 10  # unreadable files named in an error message


def channels(params: dict) -> int:
    return params["channels"]


def _check_params(params: dict, resolution: int) -> None:
    folders.check_params(params)
    if resolution not in RESOLUTIONS:
        raise ConfigError(f"resolution {resolution} is not supported by image_folder; "
                          f"supported: {', '.join(map(str, RESOLUTIONS))}")
    if type(params["channels"]) is not int or params["channels"] not in (1, 3):
        raise ConfigError(f"params.channels: {params['channels']!r}; expected 1 (grey) or 3 (colour)")
    if params["fit"] not in FITS:
        raise ConfigError(f"params.fit: {params['fit']!r}; expected one of {', '.join(FITS)}")
    check_counts(params)
    if not isinstance(params["skip_unreadable"], bool):
        raise ConfigError(f"params.skip_unreadable: {params['skip_unreadable']!r}; expected true or false")


def validate(params: dict, resolution: int) -> None:
    """Params, root, the matched files, the split file and groups: no image is decoded."""
    _check_params(params, resolution)
    folders.split(params, folders.list_files(params, EXTENSIONS, "image"), "image")


@dataclass(frozen=True)
class Checked:
    """What the up-front check found in one file: mode and upright size, or why it cannot be used."""

    mode: str = ""
    alpha: bool = False
    size: tuple[int, int] = (0, 0)
    problem: str = ""


def _has_alpha(image) -> bool:
    return image.mode in ALPHA_MODES or (image.mode in ("P", "RGB", "L") and "transparency" in image.info)


def _decode(path: Path):
    """The first frame, fully decoded and turned upright by its EXIF orientation."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        image.load()
        return ImageOps.exif_transpose(image)


def check_file(path: Path) -> Checked:
    """The up-front check of one file, done once while the file is unchanged."""
    stat = path.stat()
    return _check(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=None)
def _check(path: str, size: int, mtime_ns: int) -> Checked:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
        image = _decode(Path(path))
    except Exception as e:  # Pillow raises many types for a bad file (OSError, SyntaxError, struct.error, ...)
        return Checked(problem=f"{type(e).__name__}: {e}")
    if image.mode in ("I", "F"):
        return Checked(problem=f"mode {image.mode} (32-bit integer or float pixels) has no known range; "
                               f"save it as 8- or 16-bit")
    return Checked(image.mode, _has_alpha(image), image.size)


def conversion(checked: Checked, n_channels: int) -> str:
    """How an image of this mode becomes `n_channels` channels, '' when it already has them."""
    target = "RGB" if n_channels == 3 else "L"
    steps = (["16-bit scaled to 8-bit (/257)"] if checked.mode.startswith("I;16") else []) + (
        ["alpha composited on white"] if checked.alpha else [])
    if checked.mode == target and not steps:
        return ""
    return f"{checked.mode} -> {target}" + (f" ({', '.join(steps)})" if steps else "")


def _to_channels(image, n_channels: int):
    from PIL import Image

    if image.mode.startswith("I;16"):
        image = Image.fromarray(np.round(np.asarray(image, dtype=np.float64) / 257).astype(np.uint8))
    if _has_alpha(image):
        image = Image.alpha_composite(Image.new("RGBA", image.size, (255, 255, 255, 255)), image.convert("RGBA"))
    return image.convert("RGB" if n_channels == 3 else "L")


def _to_square(image, fit: str, resolution: int):
    from PIL import Image

    w, h = image.size
    if fit == "pad":
        side = max(w, h)
        canvas = Image.new(image.mode, (side, side))
        canvas.paste(image, ((side - w) // 2, (side - h) // 2))
        return canvas.resize((resolution, resolution), Image.Resampling.LANCZOS)
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    return image.resize((resolution, resolution), Image.Resampling.LANCZOS, box=(left, top, left + side, top + side))


def load_image(path: Path, params: dict, resolution: int) -> np.ndarray:
    """Steps 1-4 for one file -> uint8 C x res x res."""
    try:
        image = _decode(path)
    except Exception as e:  # checked before, so the file changed since: name it
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from None
    array = np.asarray(_to_square(_to_channels(image, params["channels"]), params["fit"], resolution),
                       dtype=np.uint8)
    return np.ascontiguousarray(array.transpose(2, 0, 1) if array.ndim == 3 else array[None])


@dataclass
class Plan:
    """Which files build() writes, and what the check found on the way."""

    matched: list[str]               # every file the pattern matches
    split: dict[str, list[str]]      # side -> files, before caps
    files: dict[str, list[str]]      # side -> the files used, in the order written
    unreadable: dict[str, str]       # file met while filling the caps -> why it cannot be read


def plan(params: dict) -> Plan:
    """The files of each side in seeded order, checked one by one until the cap is reached."""
    root = folders.root_of(params, "image")
    matched = folders.list_files(params, EXTENSIONS, "image")
    split = folders.split(params, matched, "image")
    files, unreadable = {}, {}
    for index, side in enumerate(folders.SIDES):
        names = split[side]
        cap = params[f"n_{side}"] or len(names)
        kept = []
        for k in np.random.default_rng([params["seed"], index]).permutation(len(names)):
            if len(kept) == cap:
                break
            problem = check_file(root / names[k]).problem
            if problem:
                unreadable[names[k]] = problem
            else:
                kept.append(names[k])
        files[side] = kept
    return Plan(matched, split, files, unreadable)


def _named(root: Path, unreadable: dict[str, str]) -> str:
    named = "; ".join(f"{root / f} ({why})" for f, why in list(unreadable.items())[:SHOWN])
    more = f"; and {len(unreadable) - SHOWN} more" if len(unreadable) > SHOWN else ""
    return f"{len(unreadable)} unreadable image file(s) (corrupt, truncated or unsupported): {named}{more}"


def build(params: dict, resolution: int) -> dict[str, Split]:
    validate(params, resolution)
    root = folders.root_of(params, "image")
    result = plan(params)
    if result.unreadable and not params["skip_unreadable"]:
        raise DataError(f"{_named(root, result.unreadable)}. Replace or remove them, or set "
                        f"params.skip_unreadable: true to skip them")
    for side, names in result.files.items():
        if not names:
            raise DataError(f"the {side} split under {root} has no readable image: {_named(root, result.unreadable)}")
    return {side: Split(len(names), (load_image(root / f, params, resolution) for f in names))
            for side, names in result.files.items()}


def describe(params: dict, resolution: int) -> dict:
    """Files used per side, conversions, upsampled and skipped files, for meta.json."""
    root = folders.root_of(params, "image")
    result = plan(params)
    checked = [check_file(root / f) for names in result.files.values() for f in names]
    labels = Counter(conversion(c, params["channels"]) for c in checked)
    square = min if params["fit"] == "center_crop" else max
    out = {
        "source": f"image folder {root}",
        "file_rule": folders.pattern_rule(params, EXTENSIONS),
        "matched_files": len(result.matched),
        "channels": params["channels"],
        "conversions": {label: n for label, n in sorted(labels.items()) if label},
        "fit": params["fit"] + (", black padding" if params["fit"] == "pad" else ""),
        "resize": f"Pillow Lanczos (antialiased) to {resolution}x{resolution}",
        "upsampled": sum(square(c.size) < resolution for c in checked),
        "split_rule": f"{folders.split_rule(params)}; seeded order, caps n_train={params['n_train']}, "
                      f"n_test={params['n_test']}",
        "unreadable": {"count": len(result.unreadable), "skipped": params["skip_unreadable"],
                       "files": result.unreadable},
        "files": result.files,
    }
    if params["split_file"] is not None:
        out["not_in_split_file"] = len(result.matched) - sum(map(len, result.split.values()))
    return out
