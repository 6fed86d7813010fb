"""Train one VAE run for a budget of optimiser steps: seeded, resumable, stopped cleanly on divergence.

The budget is in steps (`train.steps`), so an 87-image dataset and a 1,536-image one get the same
number of updates. The checkpoint lives outside the workflow's declared outputs, so a killed or
failed job keeps it, and a rerun continues from the last log row with the same batches and random
state; the final model equals that of an uninterrupted run, even when the budget ends mid-pass.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from . import layout, plugins, provenance
from .atomic import atomic_path, write_npz, write_text
from .config import RunSpec
from .data import open_split, to_float
from .errors import TrainingDiverged
from .model import build_model, kl_divergence, pick_device


def setup_torch(threads: int, seed: int, device: torch.device) -> None:
    """Use exactly `threads` CPU threads and deterministic kernels."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)


def memory_format(device: torch.device) -> torch.memory_format:
    """The model's weight layout: channels_last on CPU, where it makes a ConvVAE step ~1.3× faster
    (benchmarks/bench_train.py); unmeasured on CUDA, so contiguous there. Inputs need no conversion:
    a convolution with channels_last weights returns channels_last activations."""
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


def build_optimizer(model: torch.nn.Module, lr: float) -> torch.optim.Adam:
    """Adam, fused: one kernel over all parameters, 2-5% faster steps than its per-tensor loop on CPU."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=True)


FINAL_LR_FACTOR = 0.01  # the cosine schedule ends at lr / 100


def learning_rate(step: int, train_cfg: dict) -> float:
    """The learning rate of optimiser step `step` (0-based): `lr` throughout ("constant"), or a linear
    warm-up over the first `warmup` of the steps to `lr`, then a half-cosine down to lr/100 at the
    last step ("cosine"). A pure function of the global step, so a resumed run sees the same rates."""
    lr, total = train_cfg["lr"], train_cfg["steps"]
    if train_cfg.get("schedule", "constant") == "constant":
        return lr
    warm = max(1, round(train_cfg.get("warmup", 0.0) * total))
    if step < warm:
        return lr * (step + 1) / warm
    progress = (step - warm) / max(1, total - 1 - warm)
    return lr * (FINAL_LR_FACTOR + (1 - FINAL_LR_FACTOR) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def schedule_rates(step: int, train_cfg: dict, *optimizers) -> None:
    """Set every optimiser's rate for `step` under a schedule; a constant schedule leaves the rates
    as built (an SR discriminator's own rate included)."""
    if train_cfg.get("schedule", "constant") == "constant":
        return
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] = learning_rate(step, train_cfg)


def build_term(spec: RunSpec, device: torch.device):
    module = plugins.load_method(spec.method_plugin)
    return module.Term(spec.params, sigma2=spec.model["sigma2"], steps=spec.train["steps"],
                       latent_dim=spec.model["latent_dim"],
                       image_shape=(spec.channels, spec.resolution, spec.resolution), device=device)


def unavailable_reason(spec: RunSpec) -> str | None:
    return plugins.load_method(spec.method_plugin).Term.unavailable_reason(spec.params)


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> np.ndarray:
    """The training images of optimiser step `step`: pass `step // batches` over a seeded order.

    A pure function of the step, so a run resumed at any step sees exactly the batches an
    uninterrupted run sees, whether or not the budget ends mid-pass.
    """
    epoch, b = divmod(step, -(-n // batch_size))
    return np.sort(_pass_order(n, seed, epoch)[b * batch_size:(b + 1) * batch_size])


@functools.lru_cache(maxsize=2)
def _pass_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The seeded image order of one pass, drawn once per pass, not per step (~2 ms for n = 160k)."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    order.flags.writeable = False
    return order


def budget_steps(total: int) -> dict[str, int]:
    """TRAIN_FILES key -> step of the budget states kept at fractions of the full run (not a run with
    a smaller budget: the schedule and the blur term's start depend on the full budget)."""
    return {layout.budget_key(f): layout.budget_step(f, total) for f in layout.BUDGET_FRACTIONS[:-1]}


def budget_state_path(ckpt_path: Path, key: str) -> Path:
    """Where a budget state waits until the run ends: beside the checkpoint, so a killed job keeps it."""
    return ckpt_path.with_name(f"{ckpt_path.stem}.{layout.TRAIN_FILES[key]}")


@torch.no_grad()
def score_monitor(model, term, images: np.ndarray, beta: float, step: int, batch_size: int, device) -> dict:
    """The run's own loss (at the posterior mean z = μ) and mean per-image PSNR on the monitor split."""
    model.eval()
    loss, psnr = 0.0, []
    for start in range(0, images.shape[0], batch_size):
        x = to_float(images[start:start + batch_size], device)
        mu, logvar = model.encode(x)
        x_hat = model.decode(mu)
        rec, _ = term.loss(x, x_hat, mu, step)
        loss += float(rec + beta * kl_divergence(mu, logvar)) * x.shape[0]
        mse = (x_hat.clamp(0, 1) - x).pow(2).flatten(1).mean(1).double()
        psnr.append(-10 * torch.log10(mse.clamp_min(1e-12)))
    model.train()
    return {"monitor_loss": loss / images.shape[0], "monitor_psnr": float(torch.cat(psnr).mean())}


def _csv_text(rows: list[dict]) -> str:
    keys = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys or ["step"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _save_probe(path: Path, probes: list[dict], steps: list[int], extra: dict) -> None:
    arrays = {k: np.stack([p[k] for p in probes]) for k in (probes[0] if probes else {})}
    if arrays:
        arrays["steps"] = np.asarray(steps)
    arrays.update({k: np.asarray(v) for k, v in extra.items()})
    write_npz(path, **arrays)


def train(spec: RunSpec, data_dir: str | Path, out_dir: str | Path, ckpt_path: str | Path,
          threads: int = 1, device: str = "auto", log=print) -> dict:
    """Train `spec` for `train.steps` optimiser steps on `data_dir/train.npy` (an SR method's run:
    `blurbench.sr.train_run`, a flow method's: `blurbench.flows.train_run`; the same files).

    Writes model.pt, train_log.csv (one row per `train.log_every` steps and at each budget step, with
    the monitor split's loss and PSNR), probe.npz, provenance.json and the budget states (the full
    training state at 1/8, 1/4 and 1/2 of the steps) to `out_dir`. The checkpoint is written at every
    log row.
    """
    data_dir, out_dir, ckpt_path = Path(data_dir), Path(out_dir), Path(ckpt_path)
    task = plugins.task_of(plugins.load_method(spec.method_plugin))
    if task == "sr":
        from .sr.train_run import train_run

        return train_run(spec, data_dir, out_dir, ckpt_path, threads=threads, device=device, log=log)
    if task == "flow":
        from .flows.train_run import train_run

        return train_run(spec, data_dir, out_dir, ckpt_path, threads=threads, device=device, log=log)
    started = provenance.now()
    reason = unavailable_reason(spec)
    if reason:
        log(f"[{spec.run_id}] unavailable: {reason}; not trained")
        _write_outputs(out_dir, {"unavailable": reason, "spec": spec.to_json()}, [], [], [], {},
                       provenance.collect("none", started))
        for key in budget_steps(spec.train["steps"]):
            with atomic_path(out_dir / layout.TRAIN_FILES[key]) as tmp:
                torch.save({"unavailable": reason, "spec": spec.to_json()}, tmp)
        return {"unavailable": reason}

    dev, train_x, monitor_x = open_run(spec, data_dir, threads, device, log)
    test_x = open_split(data_dir / layout.split_array("test"))
    model = build_model(spec).to(dev, memory_format=memory_format(dev))
    term = build_term(spec, dev)
    opt = build_optimizer(model, spec.train["lr"])
    probe_x = to_float(test_x[: spec.train["n_probe"]], dev)

    step, rows, probes = 0, [], []
    state = resumable_state(ckpt_path, spec, dev, log)
    if state:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        term.load_state_dict(state["term"])
        step, rows = state["step"], state["rows"]
        probes = [{k: v.numpy() for k, v in p.items()} for p in state["probes"]]

    total, bs, beta = spec.train["steps"], spec.train["batch_size"], spec.model["beta"]
    every = spec.train["log_every"]
    budget = budget_steps(total)
    n = train_x.shape[0]
    sums: dict[str, torch.Tensor] = {}
    since, t0 = 0, time.time()
    model.train()
    while step < total:
        x = to_float(train_x[batch_indices(step, n, bs, spec.seed)], dev)
        x_hat, mu, logvar, z = model(x)
        rec, logs = term.loss(x, x_hat, z, step)
        kl = kl_divergence(mu, logvar)
        loss = rec + beta * kl
        opt.zero_grad(set_to_none=True)
        loss.backward()
        schedule_rates(step, spec.train, opt)
        opt.step()
        logs.update(term.after_vae_step(x, x_hat.detach(), z.detach(), step))
        logs.update(loss=loss.detach(), kl=kl.detach())
        for k, v in logs.items():  # summed on the device: no host sync per step
            sums[k] = sums[k] + v if k in sums else torch.as_tensor(v, dtype=torch.float64, device=dev)
        step += 1
        since += 1
        if step % every and step < total and step not in budget.values():
            continue
        row = {"step": step, **{k: float(v) / since for k, v in sums.items()},
               **score_monitor(model, term, monitor_x, beta, step - 1, bs, dev),
               "seconds": round(time.time() - t0, 3)}
        if not math.isfinite(row["loss"]):
            raise TrainingDiverged(
                f"[{spec.run_id}] loss became {row['loss']} between step {step - since + 1} and {step}; "
                f"stopped. The last good checkpoint (after step {step - since}"
                f"{'' if ckpt_path.is_file() else ', none written yet'}) is kept at {ckpt_path}. "
                f"Lower train.lr or raise model.sigma2.")
        rows.append(row)
        model.eval()
        with torch.no_grad():
            z_probe, _ = model.encode(probe_x)
        model.train()
        probe = term.probe(z_probe, step)
        if probe:
            probes.append(probe)
        save_state(ckpt_path, {"spec": spec.to_json(), "model": model.state_dict(), "optimizer": opt.state_dict(),
                               "term": term.state_dict(), "rng": torch.get_rng_state(), "step": step, "rows": rows,
                               "probes": [{k: torch.as_tensor(v) for k, v in p.items()} for p in probes]},
                   budget, step)
        log(f"[{spec.run_id}] step {step}/{total} loss {row['loss']:.4f} "
            f"kl {row['kl']:.3f} ({row['seconds']:.1f}s)")
        sums, since, t0 = {}, 0, time.time()

    probe_steps = [r["step"] for r in rows][-len(probes):] if probes else []
    _write_outputs(out_dir, {"model": model.state_dict(), "spec": spec.to_json()}, rows, probes,
                   probe_steps, term.probe_metadata(), provenance.collect(dev, started))
    write_budget_states(out_dir, ckpt_path, spec, budget)
    return {"steps": total, "final_loss": rows[-1]["loss"] if rows else math.nan}


def resumable_state(ckpt_path: Path, spec, device, log) -> dict | None:
    """The checkpoint to resume from, with the global RNG restored, or None: no checkpoint, or one of
    another training identity (then training starts over)."""
    if not ckpt_path.is_file():
        return None
    state = torch.load(ckpt_path, map_location=device, weights_only=True)
    if state["spec"] != spec.to_json():
        log(f"[{spec.run_id}] checkpoint {ckpt_path} is of another training identity; starting over")
        return None
    torch.set_rng_state(state["rng"])
    log(f"[{spec.run_id}] resuming after step {state['step']} from {ckpt_path}")
    return state


def keep_budget_state(ckpt_path: Path, budget: dict, step: int) -> None:
    """After the checkpoint of `step` is written: keep it as each budget state of that step."""
    for key in (k for k, at in budget.items() if at == step):
        shutil.copyfile(ckpt_path, budget_state_path(ckpt_path, key))


def write_budget_states(out_dir: Path, ckpt_path: Path, spec, budget: dict) -> None:
    """Copy the kept budget states into the run's folder (a state that was not kept says why)."""
    for key, step_f in budget.items():
        kept = budget_state_path(ckpt_path, key)
        with atomic_path(out_dir / layout.TRAIN_FILES[key]) as tmp:
            if kept.is_file():
                shutil.copyfile(kept, tmp)
            else:  # resumed from a checkpoint written after this step by a run that kept no state
                torch.save({"unavailable": f"the training state at step {step_f} was not kept (the run resumed "
                            f"from {ckpt_path} written after it, without {kept.name})", "spec": spec.to_json()}, tmp)


def open_run(spec, data_dir: Path, threads: int, device: str, log, what: str = "") -> tuple:
    """The device (torch threads and seed set, the start logged) and the train and monitor splits
    (memory-mapped): the start every task's training shares."""
    dev = pick_device(device)
    setup_torch(threads, spec.seed, dev)
    log(f"[{spec.run_id}] {what}device {dev}, torch threads {torch.get_num_threads()}")
    return dev, open_split(data_dir / layout.split_array("train")), open_split(data_dir / layout.split_array("monitor"))


def save_state(ckpt_path: Path, state: dict, budget: dict, step: int) -> None:
    """A log row's checkpoint, written atomically, then kept as each budget state of its step."""
    with atomic_path(ckpt_path) as tmp:
        torch.save(state, tmp)
    keep_budget_state(ckpt_path, budget, step)


def finish_run(out_dir: Path, ckpt_path: Path, spec, budget: dict, model_state: dict, rows: list, device,
               started: str) -> dict:
    """An SR or flows run's files (model.pt, train_log.csv, an empty probe.npz, provenance.json and
    the budget states) and its summary."""
    _write_outputs(out_dir, {"model": model_state, "spec": spec.to_json()}, rows, [], [], {},
                   provenance.collect(device, started))
    write_budget_states(out_dir, ckpt_path, spec, budget)
    return {"steps": spec.train["steps"], "final_loss": rows[-1]["loss"] if rows else math.nan}


def _write_outputs(out_dir: Path, model_state: dict, rows, probes, probe_steps, extra, prov) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / layout.TRAIN_LOG, _csv_text(rows))
    _save_probe(out_dir / layout.PROBE, probes, probe_steps, extra)
    provenance.write(out_dir / layout.PROVENANCE, prov)
    with atomic_path(out_dir / layout.MODEL) as tmp:
        torch.save(model_state, tmp)
