"""FID feature extraction, side by side on the same images: pytorch-fid's own `get_activations`
(plain), blurbench's torch path (what runs without onnxruntime) and its ONNX Runtime path.

    python benchmarks/bench_fid.py [--n 192] [--rounds 4] [--size 64] [--threads 2]

Writes N deterministic RGB PNGs to a temp folder. pytorch-fid reads them with its own data path
(`get_activations(files, model, batch_size=50, num_workers=1)`, its defaults) into its unmodified
InceptionV3 holding the same weights; blurbench's paths get the same images as a uint8 array.

Each side lives in its own worker process (blurbench changes process-wide malloc settings, which
would also speed up pytorch-fid in a shared process), and the sides take turns on the same slices
of the images, round by round, never at the same time, in rotating order: load from other jobs on
the machine then hits all sides alike. Prints images/s (wall clock) and CPU seconds per image of
each side, the max abs feature difference from plain, and as its last line the speedup of the
ONNX Runtime path over plain: the median over rounds of the two sides' time ratio on one slice.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SIDES = ("plain", "torch", "onnxruntime")


def make_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour images (uint8 N×3×H×W): blurred noise plus a gradient."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(n, 3, max(size // 4, 1), max(size // 4, 1), generator=g)
    x = F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)
    x = 0.7 * x + 0.3 * torch.linspace(0, 1, size)[None, None, None, :]
    return x.clamp(0, 1).mul(255).round().to(torch.uint8).numpy()


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # pytorch-fid's DataLoader worker
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def worker(side: str, folder: str, threads: int, conn) -> None:
    """Build one side's extractor, then time it on each (start, stop) slice the parent sends."""
    sys.path.insert(0, str(REPO))
    os.environ["TQDM_DISABLE"] = "1"  # pytorch-fid's progress bar
    if side == "torch":
        sys.modules["onnxruntime"] = None  # as if not installed: fid falls back to torch
    import torch

    from blurbench.metrics import fid

    torch.set_num_threads(threads)
    if side == "plain":
        from pytorch_fid.fid_score import get_activations

        files = sorted(Path(folder).glob("*.png"))
        model, _ = fid.reference_model("cpu")

        def run(a, b):
            with contextlib.redirect_stdout(io.StringIO()):  # its "batch size is bigger" notice
                return get_activations(files[a:b], model, batch_size=50, dims=2048, device="cpu",
                                       num_workers=1)
    else:
        images = np.load(Path(folder) / "images.npy")

        def run(a, b):
            return fid.features(images[a:b])
    run(0, 2)  # build and warm up outside the timing
    conn.send(fid.info()["implementation"] if side != "plain" else "pytorch-fid get_activations")
    while (job := conn.recv()) is not None:
        c0, t0 = cpu_seconds(), time.perf_counter()
        feats = run(*job)
        conn.send((feats, time.perf_counter() - t0, cpu_seconds() - c0))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=192)
    p.add_argument("--rounds", type=int, default=4, help="turns per side (N is split evenly)")
    p.add_argument("--size", type=int, default=64, help="image side before the resize to 299")
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()

    from PIL import Image

    images = make_images(a.n, a.size)
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        for i, img in enumerate(images):
            Image.fromarray(img.transpose(1, 2, 0)).save(Path(tmp) / f"{i:05d}.png")
        np.save(Path(tmp) / "images.npy", images)
        sides, names = {}, {}
        for side in SIDES:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(side, tmp, a.threads, child))
            proc.start()
            names[side] = parent.recv()  # waits until the side is built
            sides[side] = (proc, parent)
        feats = {s: [] for s in SIDES}
        wall = {s: [] for s in SIDES}
        cpu = {s: [] for s in SIDES}
        load0 = os.getloadavg()[0]
        bounds = np.linspace(0, a.n, a.rounds + 1).astype(int)
        for r, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            for side in SIDES[r % 3:] + SIDES[:r % 3]:
                sides[side][1].send((int(lo), int(hi)))
                f, w, c = sides[side][1].recv()
                feats[side].append(f)
                wall[side].append(w)
                cpu[side].append(c)
        load1 = os.getloadavg()[0]
        for proc, conn in sides.values():
            conn.send(None)
            proc.join()

    plain = np.concatenate(feats["plain"])
    print(f"{a.n} images {a.size}x{a.size}, {a.threads} threads, {a.rounds} rotating rounds; "
          f"load average {load0:.1f}/{load1:.1f} at start/end on {os.cpu_count()} CPUs")
    for side in SIDES:
        diff = np.abs(np.concatenate(feats[side]) - plain).max()
        print(f"{side:12s} {a.n / sum(wall[side]):6.2f} images/s  {sum(cpu[side]) / a.n:.3f} CPU s/image  "
              f"max |feature - plain| {diff:.2e}  ({names[side]})")
    for side in SIDES[1:]:
        ratios = np.array(wall["plain"]) / np.array(wall[side])
        print(f"{side} over plain: median {np.median(ratios):.2f}x per round "
              f"({' '.join(f'{x:.2f}' for x in ratios)}), CPU time {sum(cpu['plain']) / sum(cpu[side]):.2f}x")
    print(f"speedup: {np.median(np.array(wall['plain']) / np.array(wall['onnxruntime'])):.2f}")


if __name__ == "__main__":
    main()
