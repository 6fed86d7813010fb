"""Flow training step: rational-quadratic spline coupling against SRFlow affine coupling.

The flow is a small image-shaped conditional flow: a 3×16×16 image squeezed (2×2 pixel unshuffle, log-det
0) to 12×8×8, then K conditional couplings with channel reversals, each conditioner a 3×3–1×1–3×3
conv net of `--hidden` channels fed the untransformed half and the context. The context is the
image's ×4 average pool (the SR task's LR), upsampled back to 8×8 (nearest). One step = forward, NLL
(base N(0, I)) + backward + Adam. Inputs are synthetic smooth images in [0, 1] (uniform noise, 3×3
box-blurred), centred; only the shapes matter for the timing. Both arms use blurbench.flows.coupling
with the issue's defaults (affine eps 1e-4; spline 2 bins on [−0.5, 0.5], shift bound 1).

With `--nflows`, nflows 0.14's AffineCouplingTransform and PiecewiseRationalQuadraticCouplingTransform
(linear tails, same bins and bound, same conditioner) are timed too: the measurement behind choosing
our own couplings. Rounds alternate the order of the arms so load from other processes hits all alike.

Prints median ms/step of each arm (wall clock, and CPU time) and, last, `ratio: X.XX` = spline
ms/step ÷ affine ms/step (our couplings; the cost of the spline per step).

    python benchmarks/bench_flow_step.py [--threads 1] [--steps 30] [--rounds 3] [--batch 16] [--couplings 4] [--nflows]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from blurbench.flows.coupling import build_flow, conv_conditioner  # noqa: E402


def batch(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Squeezed, centred images (n, 12, size/2, size/2) and their LR context (n, 3, size/2, size/2)."""
    g = torch.Generator().manual_seed(seed)
    hr = F.avg_pool2d(torch.rand(n, 3, size + 2, size + 2, generator=g), 3, stride=1)
    lr = F.avg_pool2d(hr, 4)
    context = F.interpolate(lr, scale_factor=2, mode="nearest")
    return F.pixel_unshuffle(hr - 0.5, 2), context


def ours(kind: str, channels: int, ctx: int, k: int, hidden: int):
    flow = build_flow(kind, channels, ctx, k, image=True, hidden=hidden)
    return flow, lambda x, c: flow(x, c)


def nflows_arm(kind: str, channels: int, ctx: int, k: int, hidden: int):
    """The same flow from nflows 0.14 transforms, with our conditioner (nflows passes the context separately)."""
    from nflows.transforms.base import CompositeTransform
    from nflows.transforms.coupling import AffineCouplingTransform, PiecewiseRationalQuadraticCouplingTransform
    from nflows.transforms.permutations import ReversePermutation

    class Net(torch.nn.Module):
        def __init__(self, n_in: int, n_out: int):
            super().__init__()
            self.net = conv_conditioner(n_in + ctx, n_out, hidden)

        def forward(self, a, context):
            return self.net(torch.cat([a, context], dim=1))

    mask = torch.zeros(channels)
    mask[channels // 2:] = 1
    layers = []
    for _ in range(k):
        layers.append(ReversePermutation(channels))
        layers.append(AffineCouplingTransform(mask, Net) if kind == "affine" else
                      PiecewiseRationalQuadraticCouplingTransform(mask, Net, num_bins=2, tails="linear",
                                                                  tail_bound=0.5))
    flow = CompositeTransform(layers)
    return flow, lambda x, c: flow(x, context=c)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=16)
    ap.add_argument("--couplings", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--nflows", action="store_true", help="also time nflows 0.14's couplings")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    x, c = batch(args.batch, args.size)
    shape = (x.shape[1], c.shape[1], args.couplings, args.hidden)
    builders = {"affine": lambda: ours("affine", *shape), "spline": lambda: ours("spline", *shape)}
    if args.nflows:
        builders |= {"nflows_affine": lambda: nflows_arm("affine", *shape),
                     "nflows_spline": lambda: nflows_arm("spline", *shape)}
    steps = {}
    for name, build in builders.items():
        module, run = build()
        opt = torch.optim.Adam(module.parameters(), lr=1e-4)

        def step(run=run, opt=opt):
            z, logdet = run(x, c)
            loss = (0.5 * z.pow(2).flatten(1).sum(1) - logdet).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        for _ in range(3):  # warm-up
            step()
        steps[name] = step

    wall = {name: [] for name in steps}
    cpu = {name: [] for name in steps}
    for r in range(args.rounds):
        for name in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                steps[name]()
            wall[name].append(1e3 * (time.perf_counter() - t0) / args.steps)
            cpu[name].append(1e3 * (time.process_time() - c0) / args.steps)

    med = {name: statistics.median(v) for name, v in wall.items()}
    print(f"{args.steps} steps of batch {args.batch}, 3×{args.size}² squeezed to {x.shape[1]}×{x.shape[2]}², "
          f"{args.couplings} couplings, hidden {args.hidden}, {args.threads} thread(s), {args.rounds} interleaved "
          f"rounds, torch {torch.__version__}")
    for name, v in wall.items():
        print(f"  {name:14s} median {med[name]:7.2f} ms/step  CPU {statistics.median(cpu[name]):7.2f} ms/step  "
              f"(rounds: {', '.join(f'{t:.2f}' for t in v)})")
    print(f"ratio: {med['spline'] / med['affine']:.2f}")


if __name__ == "__main__":
    main()
