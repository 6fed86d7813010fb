"""Evaluate one trained run on its test split: pixel metrics, LPIPS, FID, blur diagnostics, images.

One function returns the run's tidy metric rows (protocol.md): every row records N, the split, the
implementation and its version, and where a feature extractor's weights came from. A metric that
cannot be computed here (missing weights, disabled in the config, a method that did not train) is a
row with status "unavailable" and the reason, never a number.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
from pathlib import Path

import numpy as np
import torch

from .atomic import atomic_path, write_npz, write_text
from .config import RunSpec
from .data import open_split, to_float, to_uint8
from .errors import WeightsUnavailable
from .fid_reference import load_reference_stats
from .metrics import basic, spectra
from .train import build_model, pick_device

METRICS = ("mse", "psnr", "ssim", "lpips", "fid_recon", "fid_gen", "hfer_recon", "hfer_gen")
ROW_FIELDS = ["run_id", "dataset", "method", "variant", "seed", "split", "metric", "value", "status",
              "reason", "n", "resolution", "channels", "implementation", "version",
              "feature_extractor", "weights_source", "note"]


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


class RowWriter:
    """Collects the tidy rows of one run, filling the fields every row shares."""

    def __init__(self, spec: RunSpec):
        self.spec = spec
        self.rows: list[dict] = []

    def add(self, metric: str, value=None, *, n: int = 0, reason: str = "", **protocol) -> None:
        s = self.spec
        ok = value is not None and not reason
        if ok and not np.isfinite(value):
            ok, reason = False, f"non-finite value {value}"
        row = {"run_id": s.run_id, "dataset": s.dataset, "method": s.method, "variant": s.variant,
               "seed": s.seed, "split": "test", "metric": metric,
               "value": repr(float(value)) if ok else "", "status": "ok" if ok else "unavailable",
               "reason": "" if ok else reason, "n": n, "resolution": s.resolution,
               "channels": s.channels, "implementation": "", "version": "",
               "feature_extractor": "", "weights_source": "", "note": ""}
        row.update(protocol)
        row.update({k: ("" if v is None else v) for k, v in s.swept.items()})
        self.rows.append(row)

    def unavailable_all(self, reason: str, metrics=METRICS) -> None:
        for m in metrics:
            self.add(m, reason=reason)

    def csv_text(self) -> str:
        fields = ROW_FIELDS + sorted(self.spec.swept)
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=fields)
        w.writeheader()
        w.writerows(self.rows)
        return buf.getvalue()


@torch.no_grad()
def _reconstruct(model, images: np.ndarray, batch_size: int, device) -> torch.Tensor:
    """Decoder mean at the posterior mean z = μ(x), the protocol's reconstruction."""
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = to_float(images[start:start + batch_size], device)
        mu, _ = model.encode(x)
        out.append(model.decode(mu).cpu())
    return torch.cat(out)


@torch.no_grad()
def _sample(model, n: int, seed: int, batch_size: int, device) -> torch.Tensor:
    gen = torch.Generator().manual_seed(10_000 + seed)
    return torch.cat([model.sample(min(batch_size, n - s), gen).cpu() for s in range(0, n, batch_size)])


def _pixel_metrics(rows: RowWriter, x: torch.Tensor, x_hat: torch.Tensor) -> None:
    n = x.shape[0]
    proto = {"implementation": "blurbench (torch)", "version": _version("torch")}
    rows.add("mse", basic.mse_per_image(x_hat, x).mean().item(), n=n, **proto)
    rows.add("psnr", basic.psnr_per_image(x_hat, x).mean().item(), n=n, **proto)
    rows.add("ssim", basic.ssim_per_image(x_hat, x).mean().item(), n=n,
             note="gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, data range 1", **proto)


def _lpips(rows: RowWriter, x, x_hat, spec: RunSpec, device) -> None:
    if not spec.evaluate["lpips"]:
        rows.add("lpips", reason="disabled in config (evaluate.lpips: false)")
        return
    from .metrics import lpips_metric

    if spec.resolution < lpips_metric.MIN_SIZE["alex"]:
        rows.add("lpips", reason=f"images of {spec.resolution}x{spec.resolution} are smaller than "
                                 f"LPIPS-alex's minimum of {lpips_metric.MIN_SIZE['alex']} pixels")
        return
    try:
        d = lpips_metric.lpips_distances(x_hat, x, net="alex", batch_size=spec.evaluate["batch_size"],
                                         device=device)
    except WeightsUnavailable as e:
        rows.add("lpips", reason=str(e))
        return
    rows.add("lpips", float(np.mean(d)), n=len(d), **lpips_metric.info("alex"),
             note="single channel replicated" if spec.channels == 1 else "")


def _fid(rows: RowWriter, recon, samples, fid_stats: Path | None, spec: RunSpec, device) -> None:
    if not spec.evaluate["fid"]:
        reason = spec.evaluate.get("fid_off", "disabled in config (evaluate.fid: false)")
        for m in ("fid_recon", "fid_gen"):
            rows.add(m, reason=reason)
        return
    from .metrics import fid

    ref = load_reference_stats(fid_stats)
    if ref.get("unavailable"):
        for m in ("fid_recon", "fid_gen"):
            rows.add(m, reason=ref["unavailable"])
        return
    try:
        feats_recon, feats_gen = fid.features_pair(recon, samples, batch_size=spec.evaluate["batch_size"],
                                                   device=device)
        proto = fid.info()
    except WeightsUnavailable as e:
        for m in ("fid_recon", "fid_gen"):
            rows.add(m, reason=str(e))
        return
    note = "single channel replicated; " if spec.channels == 1 else ""
    for metric, feats in (("fid_recon", feats_recon), ("fid_gen", feats_gen)):
        n = feats.shape[0]
        warn = f"N={n} < 2048: biased, rank-deficient covariance" if n < 2048 else ""
        rows.add(metric, fid.frechet_distance_features(feats, ref["mu"], ref["sigma"]), n=n,
                 note=(note + warn).strip("; "), **proto)


def evaluate(spec: RunSpec, model_path: str | Path, data_dir: str | Path, out_dir: str | Path,
             fid_stats: str | Path | None = None, threads: int = 1) -> list[dict]:
    """Write eval/metrics.csv, examples.npz, spectra.npz, recon.png and samples.png for one run."""
    out_dir = Path(out_dir)
    torch.set_num_threads(threads)
    rows = RowWriter(spec)
    state = torch.load(model_path, map_location="cpu", weights_only=True)
    if "unavailable" in state:
        rows.unavailable_all(state["unavailable"])
        _write_empty_artefacts(out_dir)
        write_text(out_dir / "metrics.csv", rows.csv_text())
        return rows.rows

    device = pick_device(spec.device)
    model = build_model(spec)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    ev = spec.evaluate
    test = open_split(Path(data_dir) / "test.npy")
    x = to_float(test[:])
    recon = _reconstruct(model, test, ev["batch_size"], device)
    n_fid = min(ev["n_fid"], x.shape[0])
    samples = _sample(model, max(n_fid, ev["n_examples"]), spec.seed, ev["batch_size"], device)

    _pixel_metrics(rows, x, recon)
    _lpips(rows, x, recon, spec, device)
    _fid(rows, recon[:n_fid], samples[:n_fid], Path(fid_stats) if fid_stats else None, spec, device)

    p_data = spectra.mean_power_spectrum(x)
    p_recon = spectra.mean_power_spectrum(recon)
    p_gen = spectra.mean_power_spectrum(samples)
    cut = ev["hfer_cutoff"]
    proto = {"implementation": "blurbench (numpy)", "version": np.__version__,
             "note": f"cutoff {cut} x Nyquist"}
    rows.add("hfer_recon", spectra.hfer(p_recon, p_data, cut), n=x.shape[0], **proto)
    rows.add("hfer_gen", spectra.hfer(p_gen, p_data, cut), n=samples.shape[0], **proto)

    freqs, raps_data = spectra.radial_average(p_data)
    write_npz(out_dir / "spectra.npz", freq=freqs, data=raps_data,
           recon=spectra.radial_average(p_recon)[1], samples=spectra.radial_average(p_gen)[1])
    k = ev["n_examples"]
    write_npz(out_dir / "examples.npz", inputs=to_uint8(x[:k]), recon=to_uint8(recon[:k]),
           samples=to_uint8(samples[:k]))
    _save_grid(out_dir / "recon.png", torch.cat([x[:k], recon[:k]]), k)
    _save_grid(out_dir / "samples.png", samples[:k], k)
    write_text(out_dir / "metrics.csv", rows.csv_text())
    return rows.rows


def _save_grid(path: Path, images: torch.Tensor, nrow: int) -> None:
    from torchvision.utils import save_image

    with atomic_path(path) as tmp:
        save_image(images, tmp, nrow=nrow, padding=1, format="png")


def _write_empty_artefacts(out_dir: Path) -> None:
    """A run that did not train still gets every declared output, so the workflow completes."""
    write_npz(out_dir / "spectra.npz")
    write_npz(out_dir / "examples.npz")
    blank = torch.ones(1, 1, 8, 8)
    _save_grid(out_dir / "recon.png", blank, 1)
    _save_grid(out_dir / "samples.png", blank, 1)
