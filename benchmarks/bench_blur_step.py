"""Time one training step of blur-Wiener (per_image) against L2 on the same ConvVAE and batch.

A step is what `blurbench.train` does per batch: forward, term.loss + β·KL, backward, Adam step,
then term.after_vae_step (the kernel step; nothing for L2), with the harness's memory format and
optimiser. Both methods run in one process on identical copies of the model, interleaved rep by rep
so load from other processes hits both alike; medians are compared, the wall-clock ratio last. The
blur term is timed at the steps after its switch-on (`blur.start_step`, its expensive phase).

    python benchmarks/bench_blur_step.py [--reps 30] [--threads 2]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import statistics
import time


def make_step(model, term, opt, x, first_step, beta):
    """One training step per call, at optimiser steps first_step, first_step + 1, …"""
    from blurbench.model import kl_divergence

    counter = itertools.count(first_step)

    def step():
        t = next(counter)
        x_hat, mu, logvar, z = model(x)
        rec, _ = term.loss(x, x_hat, z, t)
        loss = rec + beta * kl_divergence(mu, logvar)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        term.after_vae_step(x, x_hat.detach(), z.detach(), t)
    return step


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
    import torch

    from blurbench import plugins
    from blurbench.config import DEFAULTS
    from blurbench.model import ConvVAE
    from blurbench.train import build_optimizer, memory_format

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=DEFAULTS["threads"])
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=64)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    m = DEFAULTS["model"]
    shape = (3, args.resolution, args.resolution)
    base = ConvVAE(3, args.resolution, latent_dim=m["latent_dim"], base_width=m["base_width"],
                   max_width=m["max_width"]).to(memory_format=memory_format(torch.device("cpu")))
    x = torch.rand(args.batch, *shape)

    steps = {}
    for name in ("l2", "blur_wiener"):
        module = plugins.load_method(name)
        params = copy.deepcopy(module.PARAMS)
        term = module.Term(params, sigma2=m["sigma2"], steps=DEFAULTS["train"]["steps"],
                           latent_dim=m["latent_dim"], image_shape=shape, device=torch.device("cpu"))
        model = copy.deepcopy(base)
        opt = build_optimizer(model, 1e-3)
        steps[name] = make_step(model, term, opt, x, getattr(term, "start_step", 0), m["beta"])

    wall = {name: [] for name in steps}
    cpu = {name: [] for name in steps}
    for rep in range(args.warmup + args.reps):
        for name, step in steps.items():
            w0, c0 = time.perf_counter(), time.process_time()
            step()
            if rep >= args.warmup:
                wall[name].append(time.perf_counter() - w0)
                cpu[name].append(time.process_time() - c0)

    # CPU time is reported next to wall time: on a shared machine it is the steadier of the two
    ratio = {}
    for label, times in (("wall", wall), ("cpu", cpu)):
        med = {name: statistics.median(t) for name, t in times.items()}
        ratio[label] = med["blur_wiener"] / med["l2"]
        paired = statistics.median(b / a for a, b in zip(times["l2"], times["blur_wiener"]))
        print(f"{label}: " + ", ".join(f"{name} median {1e3 * med[name]:.1f} ms "
                                       f"(min {1e3 * min(t):.1f})" for name, t in times.items()))
        print(f"{label}: ratio blur_wiener / l2 = {ratio[label]:.3f} (median of paired ratios {paired:.3f})")
    print(f"bar: ≤ 1.15 at {args.resolution}×{args.resolution}, batch {args.batch}, "
          f"{args.threads} threads, n={args.reps}")
    print(f"ratio: {ratio['wall']:.2f}")


if __name__ == "__main__":
    main()
