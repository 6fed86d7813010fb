"""FID reference statistics of a dataset split: computed once by their own rule, cached as .npz.

When the Inception weights cannot be had, the file records why instead, so every run's FID rows
say "unavailable" with that reason and the rest of the workflow still completes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .atomic import write_npz
from .data import open_split, to_float
from .errors import WeightsUnavailable


def write_reference_stats(data: str | Path, n: int, out: str | Path, batch_size: int = 50,
                          device: str = "auto", threads: int = 1) -> None:
    from .metrics import fid
    from .model import pick_device

    torch.set_num_threads(threads)
    images = open_split(data)
    n = min(n, images.shape[0])
    try:
        feats = fid.features(to_float(images[:n]), batch_size=batch_size, device=pick_device(device))
    except WeightsUnavailable as e:
        write_npz(out, unavailable=np.array(str(e)))
        print(f"FID reference statistics unavailable: {e}")
        return
    mu, sigma = fid.stats(feats)
    fid.save_stats(out, mu, sigma, n, fid.info(), feats=feats)
    print(f"wrote {out}: N={n}")


def load_reference_stats(path: str | Path) -> dict:
    """{"mu", "sigma", "n", "feats"} or {"unavailable": reason}. `feats` (n, 2048) are the features of
    the split's first n images, row i that of image i: KID, PRDC and the paired FID-recon bootstrap
    need the features themselves, aligned with the reconstructions of the same images."""
    from .metrics import fid

    with np.load(path, allow_pickle=False) as z:
        if "unavailable" in z.files:
            return {"unavailable": str(z["unavailable"])}
    mu, sigma, n, _ = fid.load_stats(path)
    with np.load(path, allow_pickle=False) as z:
        if "feats" not in z.files:
            raise ValueError(f"{path}: FID statistics without the test features (made by an older "
                             "blurbench): delete it and rerun the fid_stats rule")
        feats = z["feats"].astype(np.float64)
    return {"mu": mu, "sigma": sigma, "n": n, "feats": feats}
