"""CelebA aligned faces (64² in the paper) and CelebA-HQ (256²), with the official partition.

Layout (torchvision's `CelebA` layout; `root` is the folder that *contains* `celeba/`):

    <root>/celeba/img_align_celeba/000001.jpg ... 202599.jpg      178×218 RGB JPEGs
    <root>/celeba/list_eval_partition.txt                         lines `<file> <0|1|2>`

Get it from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive: `img_align_celeba.zip`
and `Eval/list_eval_partition.txt`), licence: non-commercial research purposes only. With
`download: true` and internet, `torchvision.datasets.CelebA(download=True)` fetches it (needs `gdown`).

Splits: the official partition, 0 = train (162,770), 1 = valid (19,867), 2 = test (19,962). The test
split is always partition 2; `train_partitions` says which partitions train on (default [0]: the
validation partition is not used, since the harness does no model selection; use [0, 1] to train
on it too). `n_train` / `n_test` keep the first N files in sorted order (None = all).

Preprocessing of `variant: celeba`: a centred `crop_size`² square (default 148: box (15, 35, 163, 183)
of the 178×218 image), then a resize to the resolution with PIL's Lanczos filter. 148 is the common
VAE recipe (e.g. the PyTorch-VAE CelebA setup): the square holds the face from brow to chin and drops
most background, so the model spends its capacity on the face; `crop_size: 178` gives the other
common recipe, box (0, 20, 178, 198). PIL scales the filter support by the reduction factor, so the
resize is antialiased; Lanczos is the sharpest of PIL's antialiasing filters, which matters here
because the benchmark measures blur against the data's own spectrum. At 256² the crop is *upsampled*
(148 -> 256), so those images carry no detail above the crop's Nyquist frequency; describe() says so.

`variant: celeba_hq` (256² in the paper):

    <root>/celeba_hq/<name>.jpg|png                               square RGB images (256² or 1024²)
    <root>/celeba_hq/list_eval_partition.txt                      lines `<name> <0|1|2>`, names relative to celeba_hq/

CelebA-HQ (Karras et al. 2018) is not downloadable by torchvision: get CelebAMask-HQ
(https://github.com/switchablenorms/CelebAMask-HQ, `CelebA-HQ-img/<i>.jpg`, 1024², non-commercial
research only) and write the partition file from its `CelebA-HQ-to-CelebA-mapping.txt` (columns
`idx orig_idx orig_file`): each HQ image `<idx>.jpg` takes the CelebA partition of `orig_file`
(24,183 train, 2,993 valid, 2,824 test). Images are resized (whole image, no crop) with the same filter.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from blurbench.dataset_api import Split, check_counts_and_download
from blurbench.errors import ConfigError, DataError

PARAMS = {
    "root": "data",
    "variant": "celeba",
    "train_partitions": [0],
    "crop_size": 148,
    "resample": "lanczos",
    "n_train": None,
    "n_test": None,
    "download": False,
}
RESOLUTIONS = (32, 64, 128, 256)

ALIGNED_SIZE = (178, 218)  # width, height of every img_align_celeba image
TEST_PARTITION = 2
PARTITION_FILE = "list_eval_partition.txt"
VARIANTS = ("celeba", "celeba_hq")  # also the folder names under root
RESAMPLE = ("lanczos", "bicubic", "bilinear", "box")

MANUAL_CELEBA = ("get img_align_celeba.zip and list_eval_partition.txt from "
                 "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive; non-commercial research "
                 "use only) and unzip into {folder}")
HOW_TO_GET = {
    "celeba": MANUAL_CELEBA + (", or set params.download: true on a machine with internet "
                               "(torchvision.datasets.CelebA, needs gdown)"),
    "celeba_hq": ("get CelebA-HQ, e.g. CelebA-HQ-img/ of CelebAMask-HQ "
                  "(https://github.com/switchablenorms/CelebAMask-HQ; non-commercial research use only), put "
                  "the images in {folder} and write {folder}/list_eval_partition.txt with lines "
                  "'<file> <0|1|2>' (see datasets/celeba.py)"),
}


def channels(params: dict) -> int:
    return 3


def _folder(params: dict) -> Path:
    return Path(params["root"]) / params["variant"]


def _image_dir(params: dict) -> Path:
    folder = _folder(params)
    return folder / "img_align_celeba" if params["variant"] == "celeba" else folder


def _missing(params: dict, what: Path, note: str = "") -> DataError:
    hint = ""
    if params["variant"] == "celeba" and (Path(params["root"]) / "img_align_celeba").is_dir():
        hint = (f" ({params['root']} itself holds img_align_celeba/: root must be the folder that "
                f"contains celeba/, i.e. {Path(params['root']).parent})")
    how = HOW_TO_GET[params["variant"]].format(folder=_folder(params))
    return DataError(f"{params['variant']}: {what}{note} does not exist{hint}; {how}")


def _check_params(params: dict, resolution: int) -> None:
    if resolution not in RESOLUTIONS:
        raise DataError(f"celeba: resolution {resolution} is not supported; supported: "
                        f"{', '.join(map(str, RESOLUTIONS))}")
    if params["variant"] not in VARIANTS:
        raise ConfigError(f"params.variant: {params['variant']!r} is not one of {', '.join(VARIANTS)}")
    parts = params["train_partitions"]
    if not isinstance(parts, list) or not parts or any(p not in (0, 1) for p in parts):
        raise ConfigError(f"params.train_partitions: {parts!r}; expected a non-empty list of 0 (train) "
                          f"and/or 1 (valid); partition 2 is the test split")
    crop = params["crop_size"]
    if isinstance(crop, bool) or not isinstance(crop, int) or not 1 <= crop <= ALIGNED_SIZE[0]:
        raise ConfigError(f"params.crop_size: {crop!r}; expected an integer in 1..{ALIGNED_SIZE[0]}")
    if params["resample"] not in RESAMPLE:
        raise ConfigError(f"params.resample: {params['resample']!r} is not one of {', '.join(RESAMPLE)}")
    check_counts_and_download(params)
    if params["download"] and params["variant"] == "celeba_hq":
        raise ConfigError("params.download: torchvision downloads CelebA only; CelebA-HQ must be obtained "
                          "by hand (" + HOW_TO_GET["celeba_hq"].format(folder=_folder(params)) + ")")


def read_partition(path: Path) -> dict[int, list[str]]:
    """`<file> <partition>` lines -> {partition: sorted file names}; a malformed line is a DataError."""
    out: dict[int, list[str]] = {0: [], 1: [], 2: []}
    seen = set()
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read partition file {path}: {e}") from None
    for number, line in enumerate(lines, 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(f"partition file {path}, line {number}: {line!r}; expected '<file> <0|1|2>'")
        if fields[0] in seen:
            raise DataError(f"partition file {path}, line {number}: {fields[0]} is listed twice")
        seen.add(fields[0])
        out[int(fields[1])].append(fields[0])
    return {k: sorted(v) for k, v in out.items()}


def _split_files(params: dict) -> dict[str, list[str]]:
    parts = read_partition(_folder(params) / PARTITION_FILE)
    train = sorted(f for p in params["train_partitions"] for f in parts[p])
    test = parts[TEST_PARTITION]
    files = {"train": train[:params["n_train"]], "test": test[:params["n_test"]]}
    for split, names in files.items():
        if not names:
            raise DataError(f"{params['variant']}: the {split} split is empty: "
                            f"{_folder(params) / PARTITION_FILE} lists no file for it")
    return files


def validate(params: dict, resolution: int) -> None:
    """Params, then the folder, the partition file and the first image of each split exist."""
    _check_params(params, resolution)
    if params["download"] and not (_folder(params) / PARTITION_FILE).is_file():
        return  # build() downloads it
    if not Path(params["root"]).is_dir():
        raise _missing(params, Path(params["root"]), " (params.root, the data root)")
    for path in (_image_dir(params), _folder(params) / PARTITION_FILE):
        if not path.exists():
            raise _missing(params, path)
    for names in _split_files(params).values():
        if not (_image_dir(params) / names[0]).is_file():
            raise _missing(params, _image_dir(params) / names[0])


def fetch(params: dict) -> None:
    """Download CelebA with torchvision (Google Drive, needs internet and gdown); a no-op when present."""
    if params["variant"] != "celeba":
        raise ConfigError("params.download: only variant 'celeba' can be downloaded")
    from torchvision.datasets import CelebA

    try:
        CelebA(params["root"], split="all", target_type=[], download=True)
    except Exception as e:  # network, quota, missing gdown, checksum: all end the same way for the user
        raise DataError(f"celeba: download into {_folder(params)} failed ({type(e).__name__}: {e}); "
                        + MANUAL_CELEBA.format(folder=_folder(params))) from None


def crop_box(params: dict, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the centred crop_size² square (celeba) or the whole image (celeba_hq)."""
    w, h = size
    if params["variant"] == "celeba_hq":
        return (0, 0, w, h)
    c = params["crop_size"]
    left, top = (w - c) // 2, (h - c) // 2
    return (left, top, left + c, top + c)


def load_image(path: Path, params: dict, resolution: int) -> np.ndarray:
    """Decode, check the size, crop and resize one file -> uint8 3×res×res; a bad file is a DataError."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            img = im.convert("RGB")
    except FileNotFoundError:
        raise _missing(params, path) from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise DataError(f"corrupt image {path}: {e}; re-extract it from the original archive") from None
    if params["variant"] == "celeba" and img.size != ALIGNED_SIZE:
        raise DataError(f"{path} is {img.size[0]}×{img.size[1]}; img_align_celeba images are "
                        f"{ALIGNED_SIZE[0]}×{ALIGNED_SIZE[1]} (the aligned-and-cropped release)")
    if params["variant"] == "celeba_hq" and (img.width != img.height or img.width < resolution):
        raise DataError(f"{path} is {img.width}×{img.height}; CelebA-HQ images must be square and at "
                        f"least {resolution}² for resolution {resolution}")
    resample = getattr(Image.Resampling, params["resample"].upper())
    img = img.resize((resolution, resolution), resample, box=crop_box(params, img.size))
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1))


def _stream(names: list[str], params: dict, resolution: int):
    folder = _image_dir(params)
    for name in names:
        yield load_image(folder / name, params, resolution)


def build(params: dict, resolution: int) -> dict[str, Split]:
    """Train/test splits that decode one image at a time (CelebA is 200k images)."""
    _check_params(params, resolution)
    if params["download"]:
        fetch(params)
    validate(params, resolution)
    files = _split_files(params)
    return {split: Split(len(names), _stream(names, params, resolution)) for split, names in files.items()}


def describe(params: dict, resolution: int) -> dict:
    """Variant, crop box, filter and split rule, for meta.json and the tables."""
    _check_params(params, resolution)
    files = _split_files(params)
    if params["variant"] == "celeba":
        box = list(crop_box(params, ALIGNED_SIZE))
        source = f"CelebA img_align_celeba ({ALIGNED_SIZE[0]}×{ALIGNED_SIZE[1]})"
        upsampled = resolution > params["crop_size"]
    else:
        box = None  # whole (square) image
        source = "CelebA-HQ"
        upsampled = False
    return {
        "variant": params["variant"],
        "source": source,
        "folder": str(_folder(params)),
        "crop_box": box,
        "crop_rule": (f"centred {params['crop_size']}² square of the 178×218 aligned image"
                      if box else "whole square image, no crop"),
        "resize": f"PIL {params['resample']} (antialiased) to {resolution}×{resolution}",
        "upsampled": upsampled,
        "split_rule": (f"official list_eval_partition: train = partitions {params['train_partitions']}, "
                       f"test = partition 2; first N in sorted file order "
                       f"(n_train={params['n_train']}, n_test={params['n_test']})"),
        "counts": {split: len(names) for split, names in files.items()},
        "licence": "CelebA: non-commercial research purposes only",
    }
