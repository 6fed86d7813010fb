"""Evaluate one trained run on its test split: pixel metrics, LPIPS, FID, blur diagnostics, rate, images.

One function returns the run's tidy metric rows (protocol.md; columns in `results_schema`): every
row records N, the split, the implementation and its version, where a feature extractor's weights
came from, and the commit, device and host. A metric that cannot be computed here (missing
weights, disabled in the config, a method that did not train) is a row with status "unavailable"
and the reason, never a number. Next to `metrics.csv` the run keeps the values behind the means
(`per_image.csv`), the Inception features (`features.npz`) and `provenance.json`, so any later
statistic is recomputed without the model. The scoring itself (`blurbench.scoring`) is shared
with the trivial baselines and the blur ladder: the same code, the same N. An SR run is scored on its
outputs for the test images' LR versions; a flows run on the mean of its samples, with its own rows
(likelihood, single samples, artifacts, OOD score) from `blurbench.flows.evaluate_run`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import layout, plugins, provenance
from .atomic import atomic_path, write_npz, write_text
from .config import EvalSpec
from .data import open_split, to_float, to_uint8
from .errors import DataError
from .flows import evaluate_run as flows_eval
from .metrics import spectra
from .model import build_model, kl_per_image, pick_device
from .results_schema import LR_METRICS, PER_IMAGE_FIELDS, RUN_METRICS, generative_metrics
from .scoring import RowWriter, csv_text, hfer_protocol, package_version, score_against_test


@torch.no_grad()
def _reconstruct(model, images: np.ndarray, batch_size: int, device) -> tuple[torch.Tensor, np.ndarray]:
    """Decoder mean at the posterior mean z = μ(x) (the protocol's reconstruction), and the rate:
    KL(q(z|x) ‖ N(0, I)) in nats per image."""
    out, rate = [], []
    for start in range(0, images.shape[0], batch_size):
        x = to_float(images[start:start + batch_size], device)
        mu, logvar = model.encode(x)
        out.append(model.decode(mu).cpu())
        rate.append(kl_per_image(mu, logvar).double().cpu())
    return torch.cat(out), torch.cat(rate).numpy()


@torch.no_grad()
def _sample(model, n: int, seed: int, batch_size: int, device) -> torch.Tensor:
    """Decoder means at prior draws z ~ N(0, I); the same draws for every method of a seed (paired)."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    return torch.cat([model.sample(min(batch_size, n - s), gen).cpu() for s in range(0, n, batch_size)])


def log_rows(state: dict, train_log: str | Path | None) -> list[dict]:
    """The training log up to the evaluated state: a budget state carries its own rows; a finished
    run's are in train_log.csv."""
    import pandas as pd

    if "rows" in state:
        return state["rows"]
    if train_log and Path(train_log).is_file() and Path(train_log).stat().st_size:
        return pd.read_csv(train_log).to_dict("records")
    return []


def add_log_metrics(rows: RowWriter, log: list[dict]) -> None:
    """From the last log row: the precision gain the method logged over its last log interval, and
    the monitor split's PSNR (held out from training, not the test split)."""
    last = log[-1] if log else {}
    if "gain" in last:
        rows.add("gain", float(last["gain"]), n=1, implementation=layout.TRAIN_LOG, version="",
                 note=f"mean over the last log interval of training (step {last['step']})")
    else:
        rows.add("gain", reason="the method logs no precision gain (not a Gaussian term with a fixed σ²)")
    if "monitor_psnr" in last:
        rows.add("monitor_psnr", float(last["monitor_psnr"]), n=1, implementation=layout.TRAIN_LOG, version="",
                 note=f"mean per-image PSNR of the monitor split at step {last['step']}")
    else:
        rows.add("monitor_psnr", reason="the training log has no monitor PSNR (trained before the monitor split)")


def run_labels(spec: EvalSpec, prov: dict) -> dict:
    r = spec.run
    return {"run_id": r.run_id, "dataset": r.dataset, "method": r.method, "variant": r.variant,
            "seed": r.seed, "resolution": r.resolution, "channels": r.channels,
            **provenance.row_columns(prov)}


def evaluate(spec: EvalSpec, model_path: str | Path, data_dir: str | Path, out_dir: str | Path,
             fid_stats: str | Path | None = None, train_log: str | Path | None = None, threads: int = 1,
             device: str = "auto", other_data: str | Path | None = None) -> list[dict]:
    """Write every file of `layout.EVAL_FILES` into `out_dir` for one run.

    A flows run (`blurbench.flows.evaluate_run`) also reads `data_dir`'s train split (its OOD score's
    fit) and, with `other_data`, the other dataset's prepared test split (the `other_dataset` condition).
    """
    out_dir = Path(out_dir)
    started = provenance.now()
    torch.set_num_threads(threads)
    run, ev = spec.run, spec.evaluate
    state = torch.load(model_path, map_location="cpu", weights_only=True)
    if "unavailable" in state:
        prov = provenance.collect("none", started)
        rows = RowWriter(run_labels(spec, prov), spec.swept)
        rows.unavailable(RUN_METRICS, state["unavailable"])
        _write_empty_artefacts(out_dir)
        provenance.write(out_dir / layout.PROVENANCE, prov)
        write_text(out_dir / layout.METRICS, rows.csv_text())
        return rows.rows

    dev = pick_device(device)
    test = open_split(Path(data_dir) / layout.split_array("test"))
    x = to_float(test[:])
    task = plugins.task_of(plugins.load_method(run.method_plugin))
    sr, flow = task == "sr", task == "flow"
    if sr:
        recon, lr_err, pinv, lr = _super_resolve(run, state, test, ev["batch_size"], dev)
        samples, rate = None, None
    elif flow:
        fs = _sample_flow(spec, state, Path(data_dir), test, other_data, dev)
        recon, lr_err, lr = fs.mean, fs.lr_err, fs.lr
        samples, rate = None, None
    else:
        model = build_model(run)
        model.load_state_dict(state["model"])
        model.to(dev).eval()
        recon, rate = _reconstruct(model, test, ev["batch_size"], dev)
        samples = _sample(model, max(min(ev["n_fid"], x.shape[0]), ev["n_examples"]), run.seed, ev["batch_size"], dev)

    prov = provenance.collect(dev, started)
    rows = RowWriter(run_labels(spec, prov), spec.swept)
    per, feats, cs = score_against_test(rows, x, recon, ev, channels=run.channels, resolution=run.resolution,
                                        fid_stats=fid_stats, device=dev, samples=samples)
    cut = ev["hfer_cutoff"]
    if sr:
        add_lr_consistency(rows, lr_err, _operator_text(run.model), "blurbench.sr.operators")
        rows.unavailable(["rate", *generative_metrics("gen"), "hfer_gen"], "super-resolution: no latent, no prior samples")
    elif flow:
        for row in rows.rows:  # so far, the shared scoring's rows: of the sample mean
            row["note"] = "; ".join(filter(None, [row["note"], flows_eval.sample_mean_note(fs)]))
        flows_eval.add_rows(rows, fs, x, ev, run.channels, run.resolution, dev)
        add_lr_consistency(rows, lr_err, f"avgpool x{fs.factor}", "blurbench.flows.sr_flow (Haar null space)",
                           f"mean over the K = {fs.n_samples} unclamped float32 samples, computed in float64")
    else:
        rows.add("rate", float(rate.mean()), n=len(rate), implementation="closed-form Gaussian KL",
                 version=package_version("torch"), note="KL(q(z|x) || N(0, I)), nats per image")
        h_gen = spectra.high_band_energy(samples, cut)
        rows.add("hfer_gen", spectra.hfer_from_energies(h_gen, per["hf_data"]), n=samples.shape[0],
                 **hfer_protocol(cut))
        per["rate"] = rate
    add_log_metrics(rows, log_rows(state, train_log))

    # SR has no samples: its third image set is the pseudo-inverse A⁺y of each test image's LR version;
    # a flow's is one sample per test image (its first, clamped)
    third = pinv if sr else fs.first if flow else samples
    third_key = "lr_pinv" if sr else "samples"
    p_data, p_recon, p_third = (spectra.mean_power_spectrum(t) for t in (x, recon, third))
    freqs, raps_data = spectra.radial_average(p_data)
    write_npz(out_dir / layout.SPECTRA, freq=freqs, data=raps_data,
              recon=spectra.radial_average(p_recon)[1], **{third_key: spectra.radial_average(p_third)[1]})
    write_npz(out_dir / layout.FEATURES, **({"h_gen": h_gen} if samples is not None else {}), **feats)
    write_npz(out_dir / layout.TRANSFER, **cs.to_arrays())
    k = ev["n_examples"]
    write_npz(out_dir / layout.EXAMPLES, inputs=to_uint8(x[:k]), recon=to_uint8(recon[:k]),
              **{third_key: to_uint8(third[:k])}, **({"lr": to_uint8(lr[:k])} if sr or flow else {}))
    _save_grid(out_dir / layout.RECON_GRID, torch.cat([x[:k], recon[:k]]), k)
    _save_grid(out_dir / layout.SAMPLES_GRID, third[:k], k)
    write_per_image(out_dir / layout.PER_IMAGE, per)
    write_npz(out_dir / layout.FLOWS, **(flows_eval.npz_arrays(fs) if flow else {}))
    provenance.write(out_dir / layout.PROVENANCE, prov)
    write_text(out_dir / layout.METRICS, rows.csv_text())
    return rows.rows


def _sample_flow(spec: EvalSpec, state: dict, data_dir: Path, test: np.ndarray, other_data, device):
    """A flows run's samples on its test split and the condition sets (`flows.evaluate_run.sample_run`)."""
    from .flows.train_run import build_flow

    run, fl = spec.run, spec.evaluate["flows"]
    flow = build_flow(run)
    flow.load_state_dict(state["model"])
    other = None
    if fl["other"]:
        if other_data is None:
            raise DataError(f"{run.run_id}: experiments.flows.other names '{fl['other']}', but no prepared "
                            "data of it was given (--other-data)")
        other = to_float(open_split(Path(other_data) / layout.split_array("test"))[:]).double().numpy()
    return flows_eval.sample_run(flow, test, open_split(data_dir / layout.split_array("train")), other,
                                 n_samples=fl["n_samples"], temperature=run.model["temperature"], seed=run.seed,
                                 batch_size=spec.evaluate["batch_size"], device=device, other_name=fl["other"],
                                 n_ood_images=fl["n_ood_images"])


@torch.no_grad()
def _super_resolve(run, state: dict, images: np.ndarray, batch_size: int, device):
    """An SR run's outputs for the test images' LR versions y = A x, clamped to [0, 1]; per image the
    LR consistency of the unclamped outputs, ‖A x̂ − y‖²/n (LR pixels) and ‖A x̂ − y‖²/‖y‖², in
    float64 (a projection's is then round-off, as the paper's 1e-10 column); A⁺y and y, clamped."""
    from .sr.train_run import build_network

    model = build_network(run)
    model.load_state_dict(state["model"])
    model.to(device).double().eval()
    out, pinv, lr, err = [], [], [], {k: [] for k in LR_METRICS}
    for start in range(0, images.shape[0], batch_size):
        x = to_float(images[start:start + batch_size], device).double()
        y = model.operator.A(x)
        x_hat = model(y)
        r = (model.operator.A(x_hat) - y).pow(2).flatten(1)
        err[LR_METRICS[0]].append(r.mean(1).cpu())
        err[LR_METRICS[1]].append((r.sum(1) / y.pow(2).flatten(1).sum(1)).cpu())
        out.append(x_hat.clamp(0, 1).float().cpu())
        pinv.append(model.operator.pinv(y).clamp(0, 1).float().cpu())
        lr.append(y.clamp(0, 1).float().cpu())
    return torch.cat(out), {k: torch.cat(v).numpy() for k, v in err.items()}, torch.cat(pinv), torch.cat(lr)


def _operator_text(m: dict) -> str:
    """An SR run's degradation as the LR rows' notes name it: 'avgpool x4', 'gaussian x4, sigma 1.5'."""
    return f"{m['operator']} x{m['factor']}" + (f", sigma {m['sigma']:g}" if m.get("sigma") is not None else "")


def add_lr_consistency(rows: RowWriter, err: dict, operator: str, implementation: str,
                       how: str = "float64") -> None:
    """The LR consistency rows of an SR or flows run: per-image errors `err` (LR_METRICS -> (N,)) of the
    unclamped outputs against y = A x (a projection's or the flow's is then round-off)."""
    for metric, what in zip(LR_METRICS, ("||A x_hat - y||^2 / n (LR pixels; images in [0, 1])",
                                         "||A x_hat - y||^2 / ||y||^2")):
        rows.add(metric, float(err[metric].mean()), n=len(err[metric]), implementation=implementation,
                 version=package_version("blurbench"), note=f"{what}; operator {operator}; before clamping, {how}")


def write_per_image(path: Path, per: dict) -> None:
    """One row per test image with the values behind the run's means (PER_IMAGE_FIELDS)."""
    n = len(per["mse"])
    table = [{"image": i, **{k: (repr(float(per[k][i])) if k in per and np.isfinite(per[k][i]) else "")
                             for k in PER_IMAGE_FIELDS[1:]}} for i in range(n)]
    write_text(path, csv_text(table, PER_IMAGE_FIELDS))


def _save_grid(path: Path, images: torch.Tensor, nrow: int) -> None:
    from torchvision.utils import save_image

    with atomic_path(path) as tmp:
        save_image(images, tmp, nrow=nrow, padding=1, format="png")


def _write_empty_artefacts(out_dir: Path) -> None:
    """A run that did not train still gets every declared output, so the workflow completes."""
    write_npz(out_dir / layout.SPECTRA)
    write_npz(out_dir / layout.EXAMPLES)
    write_npz(out_dir / layout.FEATURES)
    write_npz(out_dir / layout.TRANSFER)
    write_npz(out_dir / layout.FLOWS)
    write_text(out_dir / layout.PER_IMAGE, ",".join(PER_IMAGE_FIELDS) + "\n")
    blank = torch.ones(1, 1, 8, 8)
    _save_grid(out_dir / layout.RECON_GRID, blank, 1)
    _save_grid(out_dir / layout.SAMPLES_GRID, blank, 1)
