"""The interface every dataset in `datasets/` implements.

A dataset file `datasets/<name>.py` defines:
  - `PARAMS`: a dict of default parameters; the config may override any key, an unknown key is an error.
  - `RESOLUTIONS`: the image sizes (square, pixels) it supports, e.g. (32, 64, 128, 256).
  - `channels(params) -> int`: 1 (grayscale, MRI) or 3 (colour).
  - `validate(params, resolution) -> None`: cheap checks run before any job (raise `ConfigError`
    naming the key, or `DataError` naming the missing path and how to obtain the data).
  - `build(params, resolution) -> dict[str, Split]` with keys "train" and "test": each `Split`
    holds the image count and an iterable of uint8 arrays of shape C×H×W. The core writes them,
    atomically, to `results/data/<dataset>/<split>.npy`, which training memory-maps.
  - optionally `describe(params, resolution) -> dict`: provenance recorded in `meta.json`
    (source files, crop box, split rule).
  - optionally `fetch(params) -> None`: download the data where a licence allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from .errors import ConfigError


@dataclass
class Split:
    """`count` images, yielded one by one as uint8 C×H×W arrays (so large datasets stream)."""

    count: int
    images: Iterable[np.ndarray]


def check_counts(params: dict) -> None:
    """`n_train`/`n_test`: a positive integer cap, or null for all images."""
    for key in ("n_train", "n_test"):
        n = params[key]
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise ConfigError(f"params.{key}: {n!r}; expected a positive integer or null (all images)")


def check_counts_and_download(params: dict) -> None:
    """The checks every loader of a downloadable dataset shares: the caps and `download`."""
    check_counts(params)
    if not isinstance(params["download"], bool):
        raise ConfigError(f"params.download: {params['download']!r}; expected true or false")
