"""Prepare a dataset once into uint8 arrays, and open them memory-mapped for training.

Preparing is numpy-only (torch is imported by the converters `to_float`/`to_uint8` alone), so the
prepare rule starts without loading torch.

Each split is written to `<out>/<split>.npy` (N×C×H×W, uint8) through a temporary file, so a killed
preparation leaves no half-written split; a split that is already complete is not rebuilt.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from . import layout, plugins
from .atomic import atomic_path, write_text
from .errors import DataError

SPLITS = ("train", "test")


def prepare(dataset_plugin: str, params: dict, resolution: int, out_dir: str | Path) -> dict:
    """Build the train/test arrays of a dataset plugin and write them with `meta.json`."""
    out_dir = Path(out_dir)
    module = plugins.load_dataset(dataset_plugin)
    module.validate(params, resolution)
    channels = module.channels(params)
    started = time.time()
    splits = module.build(params, resolution)
    counts = {}
    for name in SPLITS:
        split = splits[name]
        target = out_dir / layout.split_array(name)
        shape = (split.count, channels, resolution, resolution)
        if target.exists() and np.load(target, mmap_mode="r").shape == shape:
            counts[name] = split.count
            continue
        with atomic_path(target) as tmp:
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
            i = -1
            for i, img in enumerate(split.images):
                if i >= split.count:
                    raise DataError(f"dataset '{dataset_plugin}' yielded more than {split.count} {name} images")
                if img.shape != shape[1:] or img.dtype != np.uint8:
                    raise DataError(f"dataset '{dataset_plugin}' {name} image {i}: expected uint8 "
                                    f"{shape[1:]}, got {img.dtype} {img.shape}")
                arr[i] = img
            if i + 1 != split.count:
                raise DataError(f"dataset '{dataset_plugin}' announced {split.count} {name} images, yielded {i + 1}")
            arr.flush()
            del arr
        counts[name] = split.count
    meta = {"plugin": dataset_plugin, "resolution": resolution, "channels": channels,
            "params": params, "counts": counts, "seconds": round(time.time() - started, 2)}
    if hasattr(module, "describe"):
        meta["provenance"] = module.describe(params, resolution)
    write_text(out_dir / layout.META, json.dumps(meta, indent=2, sort_keys=True, default=str))
    return meta


def open_split(path: str | Path) -> np.ndarray:
    """The prepared uint8 array, memory-mapped (N×C×H×W)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"prepared split {path} does not exist; run the workflow's `prepare` rule")
    return np.load(path, mmap_mode="r")


def to_float(batch: np.ndarray, device="cpu"):
    """uint8 N×C×H×W -> float32 tensor in [0, 1] on `device`, sent as uint8 and converted there.

    To a GPU the batch goes from pinned memory without blocking: a copy from pageable memory makes
    the host wait for the GPU to finish all queued work, a sync at every training step.
    """
    import torch

    x = torch.from_numpy(np.array(batch, dtype=np.uint8))
    if torch.device(device).type == "cuda":
        x = x.pin_memory().to(device, non_blocking=True)
    return x.to(device).float().div_(255.0)


def to_uint8(images) -> np.ndarray:
    """float tensor in [0, 1] -> uint8 array (rounded), the format every image artefact is saved in."""
    import torch

    return images.detach().clamp(0, 1).mul(255).round().to(torch.uint8).cpu().numpy()
