"""Time one training step with the focal_frequency term against one with plain L2, same ConvVAE.

Both steps run in one process on copies of one initial model (each with its own optimiser), with the
harness's memory format and optimiser, interleaved repetition by repetition (alternating which goes
first) so that load from other processes hits both alike; the medians and, last, their ratio are
printed. Expected ratio ≤ 1.1×.

    python benchmarks/bench_ffl_step.py [--reps 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from blurbench import plugins  # noqa: E402
from blurbench.config import DEFAULTS  # noqa: E402
from blurbench.model import ConvVAE, kl_divergence  # noqa: E402
from blurbench.train import build_optimizer, memory_format  # noqa: E402

CHANNELS, RESOLUTION, BATCH = 3, 64, 64


def make_runner(method: str, model: ConvVAE, x: torch.Tensor):
    """A closure doing one full training step (forward, loss, backward, Adam) of `method`."""
    m = DEFAULTS["model"]
    module = plugins.load_method(method)
    term = module.Term(module.PARAMS, sigma2=m["sigma2"], steps=DEFAULTS["train"]["steps"],
                       latent_dim=m["latent_dim"], image_shape=(CHANNELS, RESOLUTION, RESOLUTION),
                       device=torch.device("cpu"))
    opt = build_optimizer(model, DEFAULTS["train"]["lr"])

    def step() -> float:
        t0 = time.perf_counter()
        x_hat, mu, logvar, z = model(x)
        rec, _ = term.loss(x, x_hat, z, 0)
        loss = rec + m["beta"] * kl_divergence(mu, logvar)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        term.after_vae_step(x, x_hat.detach(), z.detach(), 0)
        return time.perf_counter() - t0

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    m = DEFAULTS["model"]
    model = ConvVAE(CHANNELS, RESOLUTION, latent_dim=m["latent_dim"], base_width=m["base_width"],
                    max_width=m["max_width"]).to(memory_format=memory_format(torch.device("cpu")))
    x = torch.rand(BATCH, CHANNELS, RESOLUTION, RESOLUTION)
    runners = {name: make_runner(name, copy.deepcopy(model), x) for name in ("l2", "focal_frequency")}
    times = {name: [] for name in runners}
    for _ in range(args.warmup):
        for run in runners.values():
            run()
    for rep in range(args.reps):
        order = list(runners) if rep % 2 == 0 else list(runners)[::-1]
        for name in order:
            times[name].append(runners[name]())

    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"ConvVAE {CHANNELS}×{RESOLUTION}×{RESOLUTION}, batch {BATCH}, {args.reps} interleaved reps, "
          f"{args.threads} thread(s), torch {torch.__version__}")
    for name, t in med.items():
        print(f"  {name:16s} median step {t * 1e3:8.2f} ms  (min {min(times[name]) * 1e3:.2f} ms)")
    print(f"ratio: {med['focal_frequency'] / med['l2']:.2f}")


if __name__ == "__main__":
    main()
