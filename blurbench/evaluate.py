"""Evaluate one trained run on its test split: pixel metrics, LPIPS, FID, blur diagnostics, rate, images.

One function returns the run's tidy metric rows (protocol.md; columns in `results_schema`): every
row records N, the split, the implementation and its version, where a feature extractor's weights
came from, and the commit, device and host. A metric that cannot be computed here (missing
weights, disabled in the config, a method that did not train) is a row with status "unavailable"
and the reason, never a number. Next to `metrics.csv` the run keeps the values behind the means
(`per_image.csv`), the Inception features (`features.npz`) and `provenance.json`, so any later
statistic is recomputed without the model.

The scoring of a set of images against the test images (`score_against_test`) is shared with the
trivial baselines and the blur ladder (`blurbench.baselines`): the same code, the same N.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
from pathlib import Path

import numpy as np
import torch

from . import provenance
from .atomic import atomic_path, write_npz, write_text
from .config import EvalSpec
from .data import open_split, to_float, to_uint8
from .errors import WeightsUnavailable
from .fid_reference import load_reference_stats
from .layout import LADDER_PREFIX
from .metrics import basic, spectra
from .results_schema import PER_IMAGE_FIELDS, ROW_FIELDS, RUN_METRICS, fid_bias_note
from .train import build_model, pick_device


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class RowWriter:
    """Collects the tidy rows of one run (or baseline), filling the fields every row shares."""

    def __init__(self, labels: dict, swept: dict | None = None):
        self.labels = labels  # run_id, dataset, method, variant, seed, resolution, channels, provenance
        self.swept = swept or {}
        self.rows: list[dict] = []

    def add(self, metric: str, value=None, *, n: int = 0, reason: str = "", **protocol) -> None:
        ok = value is not None and not reason
        if ok and not np.isfinite(value):
            ok, reason = False, f"non-finite value {value}"
        row = dict.fromkeys(ROW_FIELDS, "")
        row.update(self.labels)
        row.update({"split": "test", "metric": metric, "value": repr(float(value)) if ok else "",
                    "status": "ok" if ok else "unavailable", "reason": "" if ok else reason,
                    "n": n if ok else 0})
        row.update(protocol)
        # a switch is written 1/0 so that every swept column is numeric
        row.update({k: ("" if v is None else int(v) if isinstance(v, bool) else v) for k, v in self.swept.items()})
        self.rows.append(row)

    def unavailable(self, metrics, reason: str) -> None:
        for m in metrics:
            self.add(m, reason=reason)

    def csv_text(self) -> str:
        return rows_csv(self.rows, self.swept)


def rows_csv(rows: list[dict], swept=()) -> str:
    """metrics.csv text of `rows`: the schema's columns, then the swept parameters."""
    return _csv_text(rows, ROW_FIELDS + sorted(swept))


def _csv_text(rows: list[dict], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


@torch.no_grad()
def _reconstruct(model, images: np.ndarray, batch_size: int, device) -> tuple[torch.Tensor, np.ndarray]:
    """Decoder mean at the posterior mean z = μ(x) (the protocol's reconstruction), and the rate:
    KL(q(z|x) ‖ N(0, I)) in nats per image."""
    out, rate = [], []
    for start in range(0, images.shape[0], batch_size):
        x = to_float(images[start:start + batch_size], device)
        mu, logvar = model.encode(x)
        out.append(model.decode(mu).cpu())
        rate.append((0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)).double().cpu())
    return torch.cat(out), torch.cat(rate).numpy()


@torch.no_grad()
def _sample(model, n: int, seed: int, batch_size: int, device) -> torch.Tensor:
    """Decoder means at prior draws z ~ N(0, I); the same draws for every method of a seed (paired)."""
    gen = torch.Generator().manual_seed(10_000 + seed)
    return torch.cat([model.sample(min(batch_size, n - s), gen).cpu() for s in range(0, n, batch_size)])


def _lpips(rows: RowWriter, x, y, ev: dict, channels: int, resolution: int, device) -> np.ndarray | None:
    if not ev["lpips"]:
        rows.add("lpips", reason="disabled in config (evaluate.lpips: false)")
        return None
    from .metrics import lpips_metric

    if resolution < lpips_metric.MIN_SIZE["alex"]:
        rows.add("lpips", reason=f"images of {resolution}x{resolution} are smaller than "
                                 f"LPIPS-alex's minimum of {lpips_metric.MIN_SIZE['alex']} pixels")
        return None
    try:
        d = lpips_metric.lpips_distances(y, x, net="alex", batch_size=ev["batch_size"], device=device)
        proto = lpips_metric.info("alex")
    except WeightsUnavailable as e:
        rows.add("lpips", reason=str(e))
        return None
    rows.add("lpips", float(np.mean(d)), n=len(d), note="single channel replicated" if channels == 1 else "",
             **proto)
    return d


def _fid(rows: RowWriter, sets: dict, ev: dict, fid_stats: Path | None, channels: int, device) -> dict:
    """FID of each image set (metric name -> images) against the test statistics, one Inception pass.

    Returns the features (metric name -> float32 array) for the bootstrap of `blurbench.stats`.
    """
    if not ev["fid"]:
        rows.unavailable(sets, ev.get("fid_off", "disabled in config (evaluate.fid: false)"))
        return {}
    from .metrics import fid

    ref = load_reference_stats(fid_stats)
    if ref.get("unavailable"):
        rows.unavailable(sets, ref["unavailable"])
        return {}
    try:
        feats = dict(zip(sets, fid.features_many(list(sets.values()), batch_size=ev["batch_size"],
                                                 device=device)))
        proto = fid.info()
    except WeightsUnavailable as e:
        rows.unavailable(sets, str(e))
        return {}
    replicated = "single channel replicated" if channels == 1 else ""
    for metric, f in feats.items():
        note = "; ".join(t for t in (replicated, fid_bias_note(f.shape[0])) if t)
        rows.add(metric, fid.frechet_distance_features(f, ref["mu"], ref["sigma"]), n=f.shape[0],
                 note=note, **proto)
    return {k: v.astype(np.float32) for k, v in feats.items()}


def hfer_protocol(cutoff: float) -> dict:
    return {"implementation": "blurbench (torch FFT)", "version": _version("torch"),
            "note": f"cutoff {cutoff} x Nyquist"}


def score_against_test(rows: RowWriter, x: torch.Tensor, y: torch.Tensor, ev: dict, *, channels: int,
                       resolution: int, fid_stats: Path | None, device, extra_fid_sets=None):
    """Score images `y` paired with the test images `x`: MSE, PSNR, SSIM, LPIPS, FID-recon, HFER.

    `extra_fid_sets` (metric -> images) share the same Inception pass (a run's samples).
    Returns (per-image columns, FID features, h_data): what `per_image.csv` and `features.npz` keep.
    """
    n = x.shape[0]
    proto = {"implementation": "blurbench (torch)", "version": _version("torch")}
    per = {"mse": basic.mse_per_image(y, x).double().numpy(), "psnr": basic.psnr_per_image(y, x).double().numpy(),
           "ssim": basic.ssim_per_image(y, x).double().numpy()}
    rows.add("mse", per["mse"].mean(), n=n, **proto)
    rows.add("psnr", per["psnr"].mean(), n=n, **proto)
    rows.add("ssim", per["ssim"].mean(), n=n, note="gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, "
                                                    "data range 1", **proto)
    lp = _lpips(rows, x, y, ev, channels, resolution, device)
    per["lpips"] = lp if lp is not None else np.full(n, np.nan)
    n_fid = min(ev["n_fid"], n)
    feats = _fid(rows, {"fid_recon": y[:n_fid], **(extra_fid_sets or {})}, ev, fid_stats, channels, device)
    cut = ev["hfer_cutoff"]
    h_data = spectra.high_band_energy(x, cut)
    per["hf_recon"], per["hf_data"] = spectra.high_band_energy(y, cut), h_data
    rows.add("hfer_recon", spectra.hfer_from_energies(per["hf_recon"], h_data), n=n, **hfer_protocol(cut))
    return per, feats, h_data


def read_ladder(path: str | Path | None) -> tuple[list[float], list[float]] | None:
    """(σ, HFER) of the blur ladder from a baselines metrics.csv, or None without one."""
    if path is None:
        return None
    import pandas as pd

    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    part = df[(df["metric"] == "hfer_recon") & df["variant"].str.startswith(LADDER_PREFIX)
              & (df["status"] == "ok")]
    if len(part) < 2:
        return None
    return [float(v[len(LADDER_PREFIX):]) for v in part["variant"]], [float(v) for v in part["value"]]


def add_equivalent_blur(rows: RowWriter, hfer_value: float | None, ladder, n: int) -> None:
    """The σ at which the blur ladder's HFER matches `hfer_value` (protocol.md)."""
    if ladder is None:
        rows.add("equiv_blur", reason="no blur ladder (baselines not computed)")
    elif hfer_value is None or not np.isfinite(hfer_value):
        rows.add("equiv_blur", reason="no HFER")
    else:
        sigma, note = spectra.equivalent_blur(hfer_value, *ladder)
        rows.add("equiv_blur", sigma, n=n, implementation="blurbench (log-σ interpolation)",
                 version=_version("blurbench"), note=note or f"blur ladder σ = {', '.join(f'{s:g}' for s in ladder[0])} px")


def add_gain(rows: RowWriter, train_log: str | Path | None) -> None:
    """The precision gain the method logged over its last log interval (`gain` in train_log.csv)."""
    import pandas as pd

    log = pd.read_csv(train_log) if train_log and Path(train_log).is_file() else None
    if log is None or "gain" not in log.columns or log.empty:
        rows.add("gain", reason="the method logs no precision gain (not a Gaussian term with a fixed σ²)")
        return
    rows.add("gain", float(log["gain"].iloc[-1]), n=1, implementation="train_log.csv", version="",
             note="mean over the last log interval of training")


def run_labels(spec: EvalSpec, prov: dict) -> dict:
    r = spec.run
    return {"run_id": r.run_id, "dataset": r.dataset, "method": r.method, "variant": r.variant,
            "seed": r.seed, "resolution": r.resolution, "channels": r.channels,
            **provenance.row_columns(prov)}


def evaluate(spec: EvalSpec, model_path: str | Path, data_dir: str | Path, out_dir: str | Path,
             fid_stats: str | Path | None = None, baselines: str | Path | None = None,
             train_log: str | Path | None = None, threads: int = 1, device: str = "auto") -> list[dict]:
    """Write eval/metrics.csv, per_image.csv, features.npz, examples.npz, spectra.npz, recon.png,
    samples.png and provenance.json for one run."""
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
        provenance.write(out_dir / "provenance.json", prov)
        write_text(out_dir / "metrics.csv", rows.csv_text())
        return rows.rows

    dev = pick_device(device)
    model = build_model(run)
    model.load_state_dict(state["model"])
    model.to(dev).eval()
    test = open_split(Path(data_dir) / "test.npy")
    x = to_float(test[:])
    recon, rate = _reconstruct(model, test, ev["batch_size"], dev)
    n_fid = min(ev["n_fid"], x.shape[0])
    samples = _sample(model, max(n_fid, ev["n_examples"]), run.seed, ev["batch_size"], dev)

    prov = provenance.collect(dev, started)
    rows = RowWriter(run_labels(spec, prov), spec.swept)
    per, feats, h_data = score_against_test(rows, x, recon, ev, channels=run.channels,
                                            resolution=run.resolution, fid_stats=fid_stats, device=dev,
                                            extra_fid_sets={"fid_gen": samples[:n_fid]})
    hfer = next(float(r["value"]) for r in rows.rows if r["metric"] == "hfer_recon")
    add_equivalent_blur(rows, hfer, read_ladder(baselines), x.shape[0])
    rows.add("rate", float(rate.mean()), n=len(rate), implementation="closed-form Gaussian KL",
             version=_version("torch"), note="KL(q(z|x) || N(0, I)), nats per image")
    add_gain(rows, train_log)
    cut = ev["hfer_cutoff"]
    h_gen = spectra.high_band_energy(samples, cut)
    rows.add("hfer_gen", spectra.hfer_from_energies(h_gen, h_data), n=samples.shape[0], **hfer_protocol(cut))
    per["rate"] = rate

    p_data, p_recon, p_gen = (spectra.mean_power_spectrum(t) for t in (x, recon, samples))
    freqs, raps_data = spectra.radial_average(p_data)
    write_npz(out_dir / "spectra.npz", freq=freqs, data=raps_data,
              recon=spectra.radial_average(p_recon)[1], samples=spectra.radial_average(p_gen)[1])
    write_npz(out_dir / "features.npz", h_gen=h_gen, **feats)
    k = ev["n_examples"]
    write_npz(out_dir / "examples.npz", inputs=to_uint8(x[:k]), recon=to_uint8(recon[:k]),
              samples=to_uint8(samples[:k]))
    _save_grid(out_dir / "recon.png", torch.cat([x[:k], recon[:k]]), k)
    _save_grid(out_dir / "samples.png", samples[:k], k)
    write_per_image(out_dir / "per_image.csv", per)
    provenance.write(out_dir / "provenance.json", prov)
    write_text(out_dir / "metrics.csv", rows.csv_text())
    return rows.rows


def write_per_image(path: Path, per: dict) -> None:
    """One row per test image with the values behind the run's means (PER_IMAGE_FIELDS)."""
    n = len(per["mse"])
    table = [{"image": i, **{k: (repr(float(per[k][i])) if k in per and np.isfinite(per[k][i]) else "")
                             for k in PER_IMAGE_FIELDS[1:]}} for i in range(n)]
    write_text(path, _csv_text(table, PER_IMAGE_FIELDS))


def _save_grid(path: Path, images: torch.Tensor, nrow: int) -> None:
    from torchvision.utils import save_image

    with atomic_path(path) as tmp:
        save_image(images, tmp, nrow=nrow, padding=1, format="png")


def _write_empty_artefacts(out_dir: Path) -> None:
    """A run that did not train still gets every declared output, so the workflow completes."""
    write_npz(out_dir / "spectra.npz")
    write_npz(out_dir / "examples.npz")
    write_npz(out_dir / "features.npz")
    write_text(out_dir / "per_image.csv", ",".join(PER_IMAGE_FIELDS) + "\n")
    blank = torch.ones(1, 1, 8, 8)
    _save_grid(out_dir / "recon.png", blank, 1)
    _save_grid(out_dir / "samples.png", blank, 1)
