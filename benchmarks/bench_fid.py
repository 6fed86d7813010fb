"""FID feature extraction: pytorch-fid's own `get_activations` vs blurbench.metrics.fid, same images.

    python benchmarks/bench_fid.py [--n 500] [--rounds 5] [--size 64] [--threads 2]

Writes N deterministic RGB PNGs to a temp folder. pytorch-fid reads them with its own data path
(`get_activations(files, model, batch_size=50, num_workers=1)`, its defaults) into its unmodified
InceptionV3 holding the same weights; ours gets the same images as a uint8 array.

Each side lives in its own worker process (ours changes process-wide malloc settings, which would
also speed up pytorch-fid in a shared process), and the two take turns on the same slices of the
images, round by round, never at the same time: load from other jobs on the machine then hits
both sides alike. Prints images/s (wall clock) and CPU seconds per image of each, their ratios,
the load average, and the max abs feature difference.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent


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


def worker(side: str, folder: str, threads: int, batch_size: int | None, conn) -> None:
    """Build one side's extractor, then time it on each (start, stop) slice the parent sends."""
    sys.path.insert(0, str(REPO))
    import torch

    from blurbench.metrics import fid

    torch.set_num_threads(threads)
    files = sorted(Path(folder).glob("*.png"))
    if side == "pytorch-fid":
        from pytorch_fid.fid_score import get_activations

        model, info = fid.reference_model("cpu")

        def run(a, b):
            return get_activations(files[a:b], model, batch_size=50, dims=2048, device="cpu", num_workers=1)

        run(0, 2)  # warm-up outside the timing, as for ours
    else:
        images = np.load(Path(folder) / "images.npy")
        info = fid.info()
        fid.features(images[:2])  # build and warm up outside the timing
        bs = batch_size or fid.DEFAULT_BATCH

        def run(a, b):
            return fid.features(images[a:b], batch_size=bs)
    conn.send(info.source if side == "pytorch-fid" else info["weights_source"])
    while (job := conn.recv()) is not None:
        c0, t0 = cpu_seconds(), time.perf_counter()
        feats = run(*job)
        conn.send((feats, time.perf_counter() - t0, cpu_seconds() - c0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--rounds", type=int, default=5, help="turns per side (N is split evenly)")
    p.add_argument("--size", type=int, default=64, help="image side before the resize to 299")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=None, help="ours (default: fid.DEFAULT_BATCH)")
    a = p.parse_args()

    from PIL import Image

    images = make_images(a.n, a.size)
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        for i, img in enumerate(images):
            Image.fromarray(img.transpose(1, 2, 0)).save(Path(tmp) / f"{i:05d}.png")
        np.save(Path(tmp) / "images.npy", images)
        sides = {}
        for side in ("pytorch-fid", "blurbench"):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(side, tmp, a.threads, a.batch_size, child))
            proc.start()
            sides[side] = (proc, parent, parent.recv())  # waits until the side is built
        feats = {s: [] for s in sides}
        wall = dict.fromkeys(sides, 0.0)
        cpu = dict.fromkeys(sides, 0.0)
        load0 = os.getloadavg()[0]
        bounds = np.linspace(0, a.n, a.rounds + 1).astype(int)
        for r, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            order = list(sides) if r % 2 == 0 else list(sides)[::-1]
            for side in order:
                sides[side][1].send((int(lo), int(hi)))
                f, w, c = sides[side][1].recv()
                feats[side].append(f)
                wall[side] += w
                cpu[side] += c
        load1 = os.getloadavg()[0]
        for proc, conn, _ in sides.values():
            conn.send(None)
            proc.join()

    ref, ours = np.concatenate(feats["pytorch-fid"]), np.concatenate(feats["blurbench"])
    ips = {s: a.n / wall[s] for s in sides}
    print(f"{a.n} images {a.size}x{a.size}, {a.threads} threads, {a.rounds} alternating rounds; "
          f"weights: {sides['blurbench'][2]}")
    print(f"pytorch-fid get_activations: {ips['pytorch-fid']:6.2f} images/s, "
          f"{cpu['pytorch-fid'] / a.n:.3f} CPU s/image")
    print(f"blurbench fid.features:      {ips['blurbench']:6.2f} images/s, {cpu['blurbench'] / a.n:.3f} CPU s/image")
    print(f"ratio (images/s): {ips['blurbench'] / ips['pytorch-fid']:.2f}x   "
          f"ratio (CPU time): {cpu['pytorch-fid'] / cpu['blurbench']:.2f}x   (bar 2x, aim 3x)")
    print(f"max abs feature difference: {np.abs(ours - ref).max():.2e} (bound 1e-4)")
    print(f"load average at start/end: {load0:.1f}/{load1:.1f} on {os.cpu_count()} CPUs "
          "(above the thread count, other jobs distort the wall-clock numbers)")


if __name__ == "__main__":
    main()
