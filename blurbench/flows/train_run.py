"""Train one conditional-flow run of the workflow (experiments.flows): the VAE and SR runs' contract
(seeded, resumable, budget states, the same files) for `blurbench.flows.sr_flow.SRFlow`.

- Loss: Adam on `SRFlow.training_nll` (nats per null-space dimension, log-det included), with the
  dequantisation noise drawn from a generator seeded with the run's seed.
- ActNorm: set from the first training batch (step 0's) before the first step, as Glow and SRFlow do;
  a resumed run has it in its state and is not re-initialised.
- Batches are `train.batch_indices`, a pure function of the step; the checkpoint holds the flow, Adam,
  both random states and the log rows, so a killed run resumes to an uninterrupted run's model, bit for bit.
- Each log row scores the monitor split (held out, not the test split): `monitor_loss` is its NLL in
  bits/dim (`SRFlow.bits_per_dim`, bin centres, no noise) and `monitor_psnr` the mean per-image PSNR
  of ONE sample per image at the run's temperature, clamped to [0, 1], drawn from the same latents at
  every row (a generator seeded with the run's seed), so the curve moves with the model only.
- A non-finite loss (the NLL: a NaN or infinite log-det makes it so) or gradient norm stops the run
  before the optimiser step that would use it: `TrainingDiverged`, one line naming the step, and the
  checkpoint of the last log row is kept.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from .. import plugins, provenance
from ..config import RunSpec
from ..data import to_float
from ..errors import TrainingDiverged
from ..train import (batch_indices, budget_steps, build_optimizer, finish_run, open_run, resumable_state,
                     save_state, schedule_rates)
from .sr_flow import SRFlow


def build_flow(spec: RunSpec) -> SRFlow:
    """The run's flow (untrained, weights seeded with the run's seed): its plugin's coupling and params."""
    m = spec.model
    return SRFlow(plugins.load_method(spec.method_plugin).COUPLING, spec.channels, levels=m["levels"],
                  n_couplings=m["n_couplings"], hidden=m["hidden"], features=m["features"], seed=spec.seed,
                  **spec.params)


@torch.no_grad()
def score_monitor(flow: SRFlow, images: np.ndarray, batch_size: int, temperature: float, seed: int,
                  device) -> dict:
    """Bits/dim (mean per image) and the PSNR of one clamped sample per image at `temperature`."""
    gen = torch.Generator(device=device).manual_seed(seed)
    bpd, psnr = [], []
    for start in range(0, images.shape[0], batch_size):
        x = to_float(images[start:start + batch_size], device)
        bpd.append(flow.bits_per_dim(x).double())
        x_hat = flow.sample(flow.lr(x), temperature, gen).clamp(0, 1)
        mse = (x_hat - x).pow(2).flatten(1).mean(1).double()
        psnr.append(-10 * torch.log10(mse.clamp_min(1e-12)))
    return {"monitor_loss": float(torch.cat(bpd).mean()), "monitor_psnr": float(torch.cat(psnr).mean())}


def _diverged(spec: RunSpec, step: int, what: str, value: float, rows: list, ckpt_path: Path) -> TrainingDiverged:
    kept = f"after step {rows[-1]['step']}" if rows else "none written yet"
    return TrainingDiverged(f"[{spec.run_id}] {what} became {value} at step {step + 1}; stopped before the "
                            f"optimiser step. The last good checkpoint ({kept}) is kept at {ckpt_path}. "
                            "Lower train.lr.")


def train_run(spec: RunSpec, data_dir: Path, out_dir: Path, ckpt_path: Path, threads: int = 1,
              device: str = "auto", log=print) -> dict:
    """Write every file of `layout.TRAIN_FILES` into `out_dir` for one flows run."""
    started = provenance.now()
    dev, train_x, monitor_x = open_run(spec, data_dir, threads, device, log, f"flow ({spec.method_plugin}), ")
    total, bs, every = spec.train["steps"], spec.train["batch_size"], spec.train["log_every"]
    temperature = spec.model["temperature"]
    flow = build_flow(spec).to(dev)
    opt = build_optimizer(flow, spec.train["lr"])
    gen = torch.Generator(device=dev).manual_seed(spec.seed)  # the dequantisation noise

    step, rows = 0, []
    state = resumable_state(ckpt_path, spec, dev, log)
    if state:
        flow.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["gen"])
        step, rows = state["step"], state["rows"]

    budget = budget_steps(total)
    n = train_x.shape[0]
    loss_sum, since, t0 = 0.0, 0, time.time()
    while step < total:
        x = to_float(train_x[batch_indices(step, n, bs, spec.seed)], dev)
        if step == 0:
            flow.initialise(x)
        loss = flow.training_nll(x, gen)
        if not torch.isfinite(loss):
            raise _diverged(spec, step, "the loss (NLL per dim, log-det included)", loss.item(), rows, ckpt_path)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(flow.parameters(), math.inf)  # the norm; clips nothing
        if not torch.isfinite(norm):
            raise _diverged(spec, step, "the gradient norm", norm.item(), rows, ckpt_path)
        schedule_rates(step, spec.train, opt)
        opt.step()
        loss_sum += loss.item()
        step += 1
        since += 1
        if step % every and step < total and step not in budget.values():
            continue
        rows.append({"step": step, "loss": loss_sum / since,
                     **score_monitor(flow, monitor_x, bs, temperature, spec.seed, dev),
                     "seconds": round(time.time() - t0, 3)})
        save_state(ckpt_path, {"spec": spec.to_json(), "model": flow.state_dict(), "optimizer": opt.state_dict(),
                               "rng": torch.get_rng_state(), "gen": gen.get_state(), "step": step, "rows": rows},
                   budget, step)
        log(f"[{spec.run_id}] step {step}/{total} loss {rows[-1]['loss']:.4f} nats/dim, monitor "
            f"{rows[-1]['monitor_loss']:.3f} bits/dim, 1-sample PSNR {rows[-1]['monitor_psnr']:.2f} dB "
            f"({rows[-1]['seconds']:.1f}s)")
        loss_sum, since, t0 = 0.0, 0, time.time()

    return finish_run(out_dir, ckpt_path, spec, budget, flow.state_dict(), rows, dev, started)
