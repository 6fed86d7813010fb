"""CIFAR-10, 32×32 RGB, from the "python version" pickle batches; the official test batch is the test split.

Layout (torchvision's `CIFAR10` layout; `root` is the folder that *contains* `cifar-10-batches-py/`):

    <root>/cifar-10-batches-py/data_batch_1 ... data_batch_5      train, 10,000 images each
    <root>/cifar-10-batches-py/test_batch                         test, 10,000 images

Each batch is a pickled dict with `data` (uint8 N×3072: the 1024 red, then green, then blue values of
a 32×32 image, row-major) and `labels` (unused: the VAE is unconditional).

Safety: these are pickle files, and unpickling can run code. They are read only from the path the
user gives in `params.root`, never fetched implicitly (only `download: true` fetches them, from the
official URL through torchvision, which checks their MD5), and with an unpickler that only builds
numpy arrays, lists, dicts and bytes: any other object in the file is refused.

Get them from https://www.cs.toronto.edu/~kriz/cifar.html (`cifar-10-python.tar.gz`, extract into
`root`), or set `download: true` on a machine with internet. Only 32² is offered: upsampling would
cost compute and add no detail above the original Nyquist frequency, which would skew the blur metrics.
`n_train` / `n_test` keep the first N images in file order (None = all).
"""

from __future__ import annotations

import codecs
from pathlib import Path

import numpy as np

from blurbench.dataset_api import Split, check_counts_and_download
from blurbench.errors import DataError
from blurbench.safe_pickle import load_arrays

PARAMS = {"root": "data", "n_train": None, "n_test": None, "download": False}
RESOLUTIONS = (32,)

FOLDER = "cifar-10-batches-py"
TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
HOW_TO_GET = ("get cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and extract it "
              "into {root}, or set params.download: true on a machine with internet (torchvision.datasets.CIFAR10)")


def _refusal(global_name: str) -> str:
    return f"refused to load {global_name}: a CIFAR batch holds only numpy arrays, lists and bytes"


def channels(params: dict) -> int:
    return 3


def _folder(params: dict) -> Path:
    return Path(params["root"]) / FOLDER


def _check_params(params: dict, resolution: int) -> None:
    if resolution not in RESOLUTIONS:
        raise DataError(f"cifar10: resolution {resolution} is not supported; supported: 32 (CIFAR-10 is 32×32)")
    check_counts_and_download(params)


def validate(params: dict, resolution: int) -> None:
    """Params, then the root and every batch file exist (unless download will fetch them)."""
    _check_params(params, resolution)
    if params["download"]:
        return
    root = Path(params["root"])
    if not root.is_dir():
        raise DataError(f"cifar10: {root} (params.root, the data root) does not exist; "
                        + HOW_TO_GET.format(root=root))
    for name in TRAIN_FILES + TEST_FILES:
        if not (_folder(params) / name).is_file():
            raise DataError(f"cifar10: {_folder(params) / name} does not exist; " + HOW_TO_GET.format(root=root))


def fetch(params: dict) -> None:
    """Download and extract with torchvision (MD5-checked); a no-op when the batches are present."""
    from torchvision.datasets import CIFAR10

    try:
        CIFAR10(params["root"], train=True, download=True)
    except Exception as e:  # network, disk, checksum: the user's remedy is the same
        raise DataError(f"cifar10: download into {params['root']} failed ({type(e).__name__}: {e}); get "
                        f"cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and "
                        f"extract it into {params['root']}") from None


def load_batch(path: Path) -> np.ndarray:
    """One pickle batch -> uint8 N×3×32×32; anything unexpected is a DataError naming the file."""
    try:
        with open(path, "rb") as f:
            # bytes re-pickled by Python 3 at protocol 2 are _codecs.encode(text, "latin1") calls
            batch = load_arrays(f, _refusal, extra={("_codecs", "encode"): codecs.encode}, encoding="latin1")
    except FileNotFoundError:
        raise DataError(f"cifar10: {path} does not exist; "
                        + HOW_TO_GET.format(root=path.parent.parent)) from None
    except Exception as e:  # a truncated or foreign pickle can raise almost anything
        raise DataError(f"cifar10: corrupt batch file {path} ({type(e).__name__}: {e}); "
                        f"re-extract it from cifar-10-python.tar.gz") from None
    data = None
    if isinstance(batch, dict):
        data = batch.get("data", batch.get(b"data"))
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3072 and data.shape[0] > 0):
        got = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"cifar10: corrupt batch file {path}: expected a dict whose 'data' is a uint8 N×3072 "
                        f"array, got {got}; re-extract it from cifar-10-python.tar.gz")
    return data.reshape(-1, 3, 32, 32)


def build(params: dict, resolution: int) -> dict[str, Split]:
    """Load all batches up front (180 MB), so a bad file fails before anything is written."""
    _check_params(params, resolution)
    if params["download"]:
        fetch(params)
    validate(params, resolution)
    out = {}
    for split, names, cap in (("train", TRAIN_FILES, params["n_train"]), ("test", TEST_FILES, params["n_test"])):
        images = np.concatenate([load_batch(_folder(params) / n) for n in names])[:cap]
        out[split] = Split(len(images), iter(images))
    return out


def describe(params: dict, resolution: int) -> dict:
    return {
        "source": f"CIFAR-10 python batches in {_folder(params)}",
        "split_rule": (f"train = {', '.join(TRAIN_FILES)}; test = the official test_batch; first N in file "
                       f"order (n_train={params['n_train']}, n_test={params['n_test']})"),
        "crop_box": None,
        "resize": "none (native 32×32)",
        "licence": "CIFAR-10: see https://www.cs.toronto.edu/~kriz/cifar.html",
    }
