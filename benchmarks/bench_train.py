"""Training throughput: the harness's loop (`blurbench.train.train`) against a bare PyTorch loop.

Both train the default model of config/config.yaml (ConvVAE, latent 32, widths 16→64, 32×32×3,
batch 64, method l2, Adam lr 1e-3, loss 0.5/σ²·Σ(x − x̂)² + KL) on the same shapes split, prepared
once in a temporary folder, for the same number of steps and threads, in one process, alternating
which goes first round by round so load from other processes hits both alike.

What is timed: the whole `train()` call (opening the memmap, building the model, the loop with its
log rows, probes and checkpoints, the output files) against the bare loop including its own data
loading (the split read into memory) and model construction. Process start, imports and the dataset
preparation are left out of both, and a few untimed bare steps first warm up the kernels both use.
The bare loop leaves torch's deterministic-algorithms flag off and needs no resume, as a minimal loop
would; it uses the harness's memory format and optimiser (fused Adam), so the ratio measures the
harness's overhead, not those choices.

Prints median img/s of each (wall clock; the CPU-time ratio, steadier on a shared machine, is shown
too) and, last, `ratio: X.XX` = harness img/s ÷ bare img/s (bar: ≥ 0.95).

    python benchmarks/bench_train.py [--threads 1] [--steps 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
from blurbench import layout  # noqa: E402
from blurbench.config import build_grid, load_yaml  # noqa: E402
from blurbench.data import prepare  # noqa: E402
from blurbench.plugins import REPO_ROOT  # noqa: E402
from blurbench.model import build_model  # noqa: E402
from blurbench.train import build_optimizer, memory_format, train  # noqa: E402


def default_spec(steps: int):
    """The default config's l2 run on shapes, with the step budget of the benchmark."""
    cfg = load_yaml(REPO_ROOT / "config" / "config.yaml")
    cfg["train"]["steps"] = steps
    cfg["experiments"] = {"main": {"datasets": ["shapes"], "methods": ["l2"]}}
    cfg["datasets"] = {"shapes": cfg["datasets"]["shapes"]}
    cfg["methods"] = {"l2": {}}
    grid = build_grid(cfg)
    return grid.runs["shapes/l2/seed0"], grid.datasets["shapes"]


def bare_loop(spec, data_dir: Path, steps: int) -> None:
    """A minimal PyTorch training loop: shuffled batches of the in-memory split, Adam, NLL + KL."""
    torch.manual_seed(spec.seed)
    images = torch.from_numpy(np.load(data_dir / layout.split_array("train")))
    m = spec.model
    model = build_model(spec).to(memory_format=memory_format(torch.device("cpu")))
    opt = build_optimizer(model, spec.train["lr"])
    n, bs = images.shape[0], spec.train["batch_size"]
    batches = -(-n // bs)
    for step in range(steps):
        b = step % batches
        if b == 0:
            order = torch.randperm(n)
        x = images[order[b * bs:(b + 1) * bs]].float().div_(255)
        x_hat, mu, logvar, z = model(x)
        nll = 0.5 / m["sigma2"] * (x - x_hat).pow(2).flatten(1).sum(1).mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        loss = nll + m["beta"] * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    spec, dataset = default_spec(args.steps)
    imgs = args.steps * spec.train["batch_size"]
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        tmp = Path(tmp)
        prepare(dataset["plugin"], dataset["params"], dataset["resolution"], tmp / "data")

        def harness(r: int) -> None:
            train(spec, tmp / "data", tmp / f"out{r}", tmp / f"ckpt{r}.pt", threads=args.threads,
                  device="cpu", log=lambda message: None)

        def bare(r: int) -> None:
            torch.use_deterministic_algorithms(False)
            torch.set_num_threads(args.threads)
            bare_loop(spec, tmp / "data", args.steps)

        torch.set_num_threads(args.threads)
        bare_loop(spec, tmp / "data", 5)
        runners = {"harness": harness, "bare": bare}
        rates = {name: [] for name in runners}
        cpu = {name: [] for name in runners}
        for r in range(args.rounds):
            for name in (list(runners) if r % 2 == 0 else list(runners)[::-1]):
                t0, c0 = time.perf_counter(), time.process_time()
                runners[name](r)
                rates[name].append(imgs / (time.perf_counter() - t0))
                cpu[name].append(time.process_time() - c0)

    med = {name: statistics.median(v) for name, v in rates.items()}
    print(f"{args.steps} steps of batch {spec.train['batch_size']}, {args.threads} thread(s), "
          f"{args.rounds} interleaved rounds, torch {torch.__version__}")
    for name, v in rates.items():
        print(f"  {name:8s} median {med[name]:7.0f} img/s  (rounds: {', '.join(f'{x:.0f}' for x in v)})")
    cpu_ratio = statistics.median(cpu["bare"]) / statistics.median(cpu["harness"])
    print(f"  CPU-time ratio bare / harness: {cpu_ratio:.2f}")
    print(f"ratio: {med['harness'] / med['bare']:.2f}")


if __name__ == "__main__":
    main()
