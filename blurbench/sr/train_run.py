"""Train one SR run of the workflow: the VAE runs' contract (seeded, resumable, budget states, the
same files), with the SR network and method of `blurbench.sr.network.SRStep`.

The HR training images are the dataset's train split; y = A x is computed on the fly. Batches are
the same pure function of the step as the VAE's (`train.batch_indices`), the checkpoint holds the
network, the discriminator, their optimisers, the method's own parts and both random states, so a
killed run resumes to the model an uninterrupted one reaches. Each log row scores the monitor split
(held out, not the test split): its PSNR and MSE of the clamped outputs (`monitor_loss` is that MSE:
a GAN's own loss needs its discriminator and means little on held-out images).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .. import provenance
from ..config import RunSpec
from ..data import to_float
from ..errors import TrainingDiverged
from ..train import batch_indices, budget_steps, finish_run, open_run, resumable_state, save_state, schedule_rates
from .network import SRNet, SRStep, SRTrainingDiverged, method_class
from .operators import make_operator


def build_operator(spec: RunSpec):
    m = spec.model
    return make_operator(m["operator"], (spec.resolution, spec.resolution), factor=m["factor"], sigma=m["sigma"])


def build_network(spec: RunSpec) -> SRNet:
    """The run's SR network (untrained), with or without the projection as its method says."""
    m = spec.model
    return SRNet(build_operator(spec), spec.channels, m["width"], m["depth"],
                 project=method_class(spec.method_plugin).project)


@torch.no_grad()
def score_monitor(model: SRNet, images: np.ndarray, batch_size: int, device) -> dict:
    """PSNR (mean per image) and MSE of the clamped SR outputs of the monitor split."""
    model.eval()
    mse = []
    for start in range(0, images.shape[0], batch_size):
        x = to_float(images[start:start + batch_size], device)
        x_hat = model(model.operator.A(x)).clamp(0, 1)
        mse.append((x_hat - x).pow(2).flatten(1).mean(1).double())
    model.train()
    mse = torch.cat(mse)
    return {"monitor_loss": float(mse.mean()), "monitor_psnr": float((-10 * torch.log10(mse.clamp_min(1e-12))).mean())}


def train_run(spec: RunSpec, data_dir: Path, out_dir: Path, ckpt_path: Path, threads: int = 1,
              device: str = "auto", log=print) -> dict:
    """Write every file of `layout.TRAIN_FILES` into `out_dir` for one SR run."""
    started = provenance.now()
    dev, train_x, monitor_x = open_run(spec, data_dir, threads, device, log, "sr, ")
    total, bs, every = spec.train["steps"], spec.train["batch_size"], spec.train["log_every"]
    sr = SRStep(spec.method_plugin, spec.params, build_operator(spec), spec.channels, total, spec.train["lr"],
                spec.model["width"], spec.model["depth"], dev)
    gen = torch.Generator(device=dev).manual_seed(spec.seed)  # the discriminator's instance noise

    step, rows = 0, []
    state = resumable_state(ckpt_path, spec, dev, log)
    if state:
        sr.load_state_dict(state["sr"])
        gen.set_state(state["gen"])
        step, rows = state["step"], state["rows"]

    budget = budget_steps(total)
    n = train_x.shape[0]
    sums: dict[str, float] = {}
    since, t0 = 0, time.time()
    while step < total:
        x = to_float(train_x[batch_indices(step, n, bs, spec.seed)], dev)
        schedule_rates(step, spec.train, *filter(None, (sr.opt, sr.opt_d)))
        try:
            values = sr(x, step, gen, rows)
        except SRTrainingDiverged as e:
            kept = rows[-1]["step"] if rows else None
            raise TrainingDiverged(f"[{spec.run_id}] {e} The last good checkpoint "
                                   f"({f'after step {kept}' if kept else 'none written yet'}) is kept at "
                                   f"{ckpt_path}.") from None
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        step += 1
        since += 1
        if step % every and step < total and step not in budget.values():
            continue
        rows.append({"step": step, **{k: v / since for k, v in sums.items()},
                     **score_monitor(sr.model, monitor_x, bs, dev), "seconds": round(time.time() - t0, 3)})
        save_state(ckpt_path, {"spec": spec.to_json(), "sr": sr.state_dict(), "rng": torch.get_rng_state(),
                               "gen": gen.get_state(), "step": step, "rows": rows, "model": sr.model.state_dict()},
                   budget, step)
        log(f"[{spec.run_id}] step {step}/{total} loss {rows[-1]['loss']:.4f} "
            f"monitor PSNR {rows[-1]['monitor_psnr']:.2f} dB ({rows[-1]['seconds']:.1f}s)")
        sums, since, t0 = {}, 0, time.time()

    return finish_run(out_dir, ckpt_path, spec, budget, sr.model.state_dict(), rows, dev, started)
