"""Train one VAE run: seeded, resumable from a per-epoch checkpoint, stopped cleanly on divergence.

The checkpoint lives outside the workflow's declared outputs, so a killed or failed job keeps it and
a rerun continues from the last finished epoch with the same data order and random state; the final
model equals that of an uninterrupted run.
"""

from __future__ import annotations

import csv
import io
import math
import time
from pathlib import Path

import numpy as np
import torch

from . import plugins
from .atomic import atomic_path, write_npz, write_text
from .config import RunSpec
from .data import open_split, to_float
from .errors import TrainingDiverged
from .model import ConvVAE, kl_divergence


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key 'device': cuda was asked for but no CUDA device is available")
    return torch.device(name)


def setup_torch(threads: int, seed: int, device: torch.device) -> None:
    """Use exactly `threads` CPU threads and deterministic kernels."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    np.random.seed(seed)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)


def build_model(spec: RunSpec) -> ConvVAE:
    m = spec.model
    return ConvVAE(spec.channels, spec.resolution, latent_dim=m["latent_dim"],
                   base_width=m["base_width"], max_width=m["max_width"])


def build_term(spec: RunSpec, device: torch.device):
    module = plugins.load_method(spec.method_plugin)
    return module.Term(spec.params, sigma2=spec.model["sigma2"], epochs=spec.train["epochs"],
                       latent_dim=spec.model["latent_dim"],
                       image_shape=(spec.channels, spec.resolution, spec.resolution), device=device)


def unavailable_reason(spec: RunSpec) -> str | None:
    return plugins.load_method(spec.method_plugin).Term.unavailable_reason(spec.params)


def _csv_text(rows: list[dict]) -> str:
    keys = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=keys or ["epoch"])
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _save_probe(path: Path, probes: list[dict], epochs: list[int], extra: dict) -> None:
    arrays = {k: np.stack([p[k] for p in probes]) for k in (probes[0] if probes else {})}
    if arrays:
        arrays["epochs"] = np.asarray(epochs)
    arrays.update({k: np.asarray(v) for k, v in extra.items()})
    write_npz(path, **arrays)


def train(spec: RunSpec, data_dir: str | Path, out_dir: str | Path, ckpt_path: str | Path,
          threads: int = 1, log=print) -> dict:
    """Train `spec` on `data_dir/train.npy`; write model.pt, train_log.csv and probe.npz to `out_dir`."""
    data_dir, out_dir, ckpt_path = Path(data_dir), Path(out_dir), Path(ckpt_path)
    reason = unavailable_reason(spec)
    if reason:
        log(f"[{spec.run_id}] unavailable: {reason}; not trained")
        _write_outputs(out_dir, {"unavailable": reason, "spec": spec.to_json()}, [], [], [], {})
        return {"unavailable": reason}

    device = pick_device(spec.device)
    setup_torch(threads, spec.seed, device)
    log(f"[{spec.run_id}] device {device}, torch threads {torch.get_num_threads()}")
    train_x = open_split(data_dir / "train.npy")
    test_x = open_split(data_dir / "test.npy")
    model = build_model(spec).to(device)
    term = build_term(spec, device)
    opt = torch.optim.Adam(model.parameters(), lr=spec.train["lr"])
    probe_x = to_float(test_x[: spec.train["n_probe"]], device)

    start_epoch, rows, probes = 0, [], []
    if ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        if state["spec"] == spec.to_json():
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            term.load_state_dict(state["term"])
            torch.set_rng_state(state["rng"])
            start_epoch, rows = state["epoch"] + 1, state["rows"]
            probes = [{k: v.numpy() for k, v in p.items()} for p in state["probes"]]
            log(f"[{spec.run_id}] resuming after epoch {start_epoch} from {ckpt_path}")
        else:
            log(f"[{spec.run_id}] checkpoint {ckpt_path} is of another config; starting over")

    epochs, bs, beta = spec.train["epochs"], spec.train["batch_size"], spec.model["beta"]
    n = train_x.shape[0]
    for epoch in range(start_epoch, epochs):
        t0 = time.time()
        model.train()
        order = np.random.default_rng([spec.seed, epoch]).permutation(n)
        sums: dict[str, float] = {}
        batches = 0
        for b, start in enumerate(range(0, n, bs)):
            idx = np.sort(order[start:start + bs])
            x = to_float(train_x[idx], device)
            x_hat, mu, logvar, z = model(x)
            rec, logs = term.loss(x, x_hat, z, epoch)
            kl = kl_divergence(mu, logvar)
            loss = rec + beta * kl
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"[{spec.run_id}] loss became {float(loss.detach())} at epoch {epoch + 1}, batch {b + 1}; "
                    f"stopped. The last good checkpoint (after epoch {start_epoch if start_epoch else 0}"
                    f"{'' if ckpt_path.is_file() else ', none written yet'}) is kept at {ckpt_path}. "
                    f"Lower train.lr or raise model.sigma2.")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            logs.update(term.after_vae_step(x, x_hat.detach(), z.detach(), epoch))
            logs.update(loss=float(loss.detach()), kl=float(kl.detach()))
            for k, v in logs.items():
                sums[k] = sums.get(k, 0.0) + v
            batches += 1
        row = {"epoch": epoch, **{k: v / batches for k, v in sums.items()},
               "seconds": round(time.time() - t0, 3)}
        rows.append(row)
        model.eval()
        with torch.no_grad():
            z_probe, _ = model.encode(probe_x)
        probe = term.probe(z_probe, epoch)
        if probe:
            probes.append(probe)
        _checkpoint(ckpt_path, spec, model, opt, term, epoch, rows, probes)
        log(f"[{spec.run_id}] epoch {epoch + 1}/{epochs} loss {row['loss']:.4f} "
            f"kl {row['kl']:.3f} ({row['seconds']:.1f}s)")
        start_epoch = epoch + 1

    probe_epochs = [r["epoch"] for r in rows][-len(probes):] if probes else []
    extra = term.probe_metadata()
    _write_outputs(out_dir, {"model": model.state_dict(), "spec": spec.to_json()}, rows, probes,
                   probe_epochs, extra)
    return {"epochs": epochs, "final_loss": rows[-1]["loss"] if rows else math.nan}


def _checkpoint(path: Path, spec, model, opt, term, epoch, rows, probes) -> None:
    state = {"spec": spec.to_json(), "model": model.state_dict(), "optimizer": opt.state_dict(),
             "term": term.state_dict(), "rng": torch.get_rng_state(), "epoch": epoch, "rows": rows,
             "probes": [{k: torch.as_tensor(v) for k, v in p.items()} for p in probes]}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _write_outputs(out_dir: Path, model_state: dict, rows, probes, probe_epochs, extra) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "train_log.csv", _csv_text(rows))
    _save_probe(out_dir / "probe.npz", probes, probe_epochs, extra)
    with atomic_path(out_dir / "model.pt") as tmp:
        torch.save(model_state, tmp)
