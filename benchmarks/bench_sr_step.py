"""The projection's cost per SR training step: `SRNet` with the affine projection against the same
network without it.

Both variants are the default SR network of `blurbench.sr.network` (width 64, depth 4, a 3×3 conv
body at 16², PixelShuffle ×4), built from the same seed, trained with mean (x̂ − x)² and Adam on the
same random 64²×3 images in [0, 1], batch 32, in one process. A step is: y = A x, the forward pass,
the loss, the backward pass and the optimiser step, so the difference between the two is the
projection f + A⁺(y − A f) in place of f + A⁺y, forward and backward. Each round times a few steps
of one variant and then of the other (alternating which goes first), so the two of a round see the
same load from other processes; a few untimed steps first warm up both.

Prints the median ms per step of each, and the median over rounds of the round's projected ÷ plain
time per step (wall clock, and CPU time, steadier on a shared machine), for the default `avgpool`
operator and, as information, for `gaussian` (its A and A⁺ are two small matrix products); last, `ratio: X.XX` =
that median wall-clock ratio for `avgpool` (bar: ≤ 1.05).

    python benchmarks/bench_sr_step.py [--threads 1] [--steps 5] [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from blurbench.sr.network import SRNet  # noqa: E402
from blurbench.sr.operators import make_operator  # noqa: E402

SIZE, CHANNELS, BATCH = 64, 3, 32


def make_step(op, project: bool, images: torch.Tensor):
    """A closure running `n` training steps of one variant over the image pool."""
    torch.manual_seed(0)
    model = SRNet(op, CHANNELS, project=project)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    batches = images.split(BATCH)

    def run(n: int) -> None:
        for i in range(n):
            x = batches[i % len(batches)]
            y = op.A(x)
            loss = (model(y) - x).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def measure(op_name: str, steps: int, rounds: int, images: torch.Tensor) -> tuple[dict, dict]:
    """Wall and CPU seconds per step of each variant, one entry per round."""
    op = make_operator(op_name, (SIZE, SIZE), factor=4)
    runners = {"plain": make_step(op, False, images), "projected": make_step(op, True, images)}
    for run in runners.values():
        run(3)
    wall = {name: [] for name in runners}
    cpu = {name: [] for name in runners}
    for r in range(rounds):
        for name in (list(runners) if r % 2 == 0 else list(runners)[::-1]):
            t0, c0 = time.perf_counter(), time.process_time()
            runners[name](steps)
            wall[name].append((time.perf_counter() - t0) / steps)
            cpu[name].append((time.process_time() - c0) / steps)
    return wall, cpu


def paired_ratio(times: dict) -> float:
    """The median over rounds of projected ÷ plain time per step within the round."""
    return statistics.median(p / q for p, q in zip(times["projected"], times["plain"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=30)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    images = torch.rand(4 * BATCH, CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(0))

    print(f"SR training step, {SIZE}² HR ×4, batch {BATCH}, {args.threads} thread(s), {args.steps} steps × "
          f"{args.rounds} interleaved rounds, torch {torch.__version__}")
    ratios = {}
    for op_name in ("gaussian", "avgpool"):
        wall, cpu = measure(op_name, args.steps, args.rounds, images)
        ratios[op_name] = paired_ratio(wall)
        print(f"  {op_name:8s} plain {1e3 * statistics.median(wall['plain']):6.1f} ms/step, projected "
              f"{1e3 * statistics.median(wall['projected']):6.1f} ms/step; median ratio: wall "
              f"{ratios[op_name]:.3f}, CPU time {paired_ratio(cpu):.3f}")
    print(f"ratio: {ratios['avgpool']:.2f}")


if __name__ == "__main__":
    main()
