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
from .dataset_api import Split
from .errors import DataError

SPLITS = ("train", "test", "monitor")
# The monitor split: images held out from training, not the test split, on which every log row
# scores the run's loss and PSNR (convergence). A plugin may build its own ("monitor" in `build`);
# otherwise the last images of its training stream are held out: MONITOR_FRACTION of them, at most
# MONITOR_MAX.
MONITOR_MAX = 256
MONITOR_FRACTION = 1 / 8


def carve_monitor(train: Split) -> dict[str, Split]:
    """Hold out the last min(MONITOR_MAX, count × MONITOR_FRACTION) training images as the monitor."""
    n_monitor = min(MONITOR_MAX, max(1, int(train.count * MONITOR_FRACTION)))
    if train.count - n_monitor < 1:
        raise DataError(f"{train.count} training image(s) leave none to train on after holding out a monitor")
    n_train = train.count - n_monitor
    stream, taken = iter(train.images), [0]

    def head():
        while taken[0] < n_train:
            taken[0] += 1
            yield next(stream)

    def tail():  # skips what `head` did not take (a train split already on disk is not rebuilt)
        for _ in range(n_train - taken[0]):
            next(stream)
        taken[0] = n_train
        yield from stream

    return {"train": Split(n_train, head()), "monitor": Split(n_monitor, tail())}


def prepare(dataset_plugin: str, params: dict, resolution: int, out_dir: str | Path) -> dict:
    """Build the train/test arrays of a dataset plugin and write them with `meta.json`."""
    out_dir = Path(out_dir)
    module = plugins.load_dataset(dataset_plugin)
    module.validate(params, resolution)
    channels = module.channels(params)
    started = time.time()
    splits = module.build(params, resolution)
    if "monitor" not in splits:
        splits.update(carve_monitor(splits["train"]))
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
