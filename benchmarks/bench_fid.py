"""FID feature extraction: pytorch-fid's own `get_activations` vs blurbench.metrics.fid, same images.

    python benchmarks/bench_fid.py [--n 500] [--size 64] [--threads 2]

Writes N deterministic RGB PNGs to a temp folder; pytorch-fid reads them with its own data path
(`get_activations(files, model, batch_size=50, num_workers=1)`, its defaults) and its unmodified
InceptionV3 holding the same weights; ours gets the same images as a uint8 array. pytorch-fid runs
first: our extraction changes the process's malloc settings, which would otherwise speed it up too.
Prints images/s (wall clock) and CPU seconds per image of each, their ratios, the load average
(other processes on the machine distort wall-clock numbers) and the max abs feature difference.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def make_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour images (uint8 N×3×H×W): blurred noise plus a gradient."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, 3, size // 4, size // 4, generator=g)
    x = F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)
    x = 0.7 * x + 0.3 * torch.linspace(0, 1, size)[None, None, None, :]
    return x.clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # pytorch-fid's DataLoader worker
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn):
    c0, t0 = cpu_seconds(), time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0, cpu_seconds() - c0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--size", type=int, default=64, help="image side before the resize to 299")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=None, help="ours (default: fid.DEFAULT_BATCH)")
    a = p.parse_args()

    import torch
    from PIL import Image
    from pytorch_fid.fid_score import get_activations

    from blurbench.metrics import fid

    torch.set_num_threads(a.threads)
    images = make_images(a.n, a.size)
    reference, winfo = fid.reference_model("cpu")
    print(f"{a.n} images {a.size}x{a.size}, {a.threads} threads, weights: {winfo.source}")
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, img in enumerate(images):
            files.append(Path(tmp) / f"{i:05d}.png")
            Image.fromarray(img.transpose(1, 2, 0)).save(files[-1])
        load0 = os.getloadavg()[0]
        ref, ref_wall, ref_cpu = timed(lambda: get_activations(files, reference, batch_size=50,
                                                               dims=2048, device="cpu", num_workers=1))
    fid.features(images[:2])  # model build and warm-up outside the timing, as for pytorch-fid
    ours, our_wall, our_cpu = timed(lambda: fid.features(images, batch_size=a.batch_size or fid.DEFAULT_BATCH))
    load1 = os.getloadavg()[0]

    ref_ips, our_ips = a.n / ref_wall, a.n / our_wall
    print(f"pytorch-fid get_activations: {ref_ips:6.2f} images/s, {ref_cpu / a.n:.3f} CPU s/image")
    print(f"blurbench fid.features:      {our_ips:6.2f} images/s, {our_cpu / a.n:.3f} CPU s/image")
    print(f"ratio (images/s): {our_ips / ref_ips:.2f}x   ratio (CPU time): {ref_cpu / our_cpu:.2f}x   "
          f"(bar 2x, aim 3x)")
    print(f"max abs feature difference: {np.abs(ours - ref).max():.2e} (bound 1e-4)")
    print(f"load average at start/end: {load0:.1f}/{load1:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
