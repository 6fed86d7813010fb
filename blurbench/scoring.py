"""Scoring a set of images against the test images: one room shared by every producer of metric rows.

A run's reconstructions (`blurbench.evaluate`), the trivial baselines and the blur ladder
(`blurbench.baselines`), and the comparison (`blurbench.comparison`, which reads the ladder) all
score through here: the same code, the same N, the same row fields (`results_schema.ROW_FIELDS`).
A metric that cannot be computed (missing weights, disabled in the config) is a row with status
"unavailable" and the reason, never a number.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
from pathlib import Path

import numpy as np
import torch

from .errors import WeightsUnavailable
from .fid_reference import load_reference_stats
from .layout import LADDER_PREFIX
from .metrics import basic, spectra
from .results_schema import ROW_FIELDS, fid_bias_note
from .weights import LPIPS_METRIC_NET


def package_version(package: str) -> str:
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
    return csv_text(rows, ROW_FIELDS + sorted(swept))


def csv_text(rows: list[dict], fields: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=fields)
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


def lpips_scores(rows: RowWriter, x, y, ev: dict, channels: int, resolution: int, device) -> np.ndarray | None:
    if not ev["lpips"]:
        rows.add("lpips", reason="disabled in config (evaluate.lpips: false)")
        return None
    from .metrics import lpips_metric

    net = LPIPS_METRIC_NET
    if resolution < lpips_metric.MIN_SIZE[net]:
        rows.add("lpips", reason=f"images of {resolution}x{resolution} are smaller than "
                                 f"LPIPS-{net}'s minimum of {lpips_metric.MIN_SIZE[net]} pixels")
        return None
    try:
        d = lpips_metric.lpips_distances(y, x, net=net, batch_size=ev["batch_size"], device=device)
        proto = lpips_metric.info(net)
    except WeightsUnavailable as e:
        rows.add("lpips", reason=str(e))
        return None
    rows.add("lpips", float(np.mean(d)), n=len(d), note="single channel replicated" if channels == 1 else "",
             **proto)
    return d


def fid_scores(rows: RowWriter, sets: dict, ev: dict, fid_stats: Path | None, channels: int, device) -> dict:
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
    return {"implementation": "blurbench (torch FFT)", "version": package_version("torch"),
            "note": f"cutoff {cutoff} x Nyquist"}


def score_against_test(rows: RowWriter, x: torch.Tensor, y: torch.Tensor, ev: dict, *, channels: int,
                       resolution: int, fid_stats: Path | None, device, extra_fid_sets=None):
    """Score images `y` paired with the test images `x`: MSE, PSNR, SSIM, LPIPS, FID-recon, HFER.

    `extra_fid_sets` (metric -> images) share the same Inception pass (a run's samples).
    Returns (per-image columns, FID features, h_data): what `per_image.csv` and `features.npz` keep.
    """
    n = x.shape[0]
    proto = {"implementation": "blurbench (torch)", "version": package_version("torch")}
    per = {"mse": basic.mse_per_image(y, x).double().numpy(), "psnr": basic.psnr_per_image(y, x).double().numpy(),
           "ssim": basic.ssim_per_image(y, x).double().numpy()}
    rows.add("mse", per["mse"].mean(), n=n, **proto)
    rows.add("psnr", per["psnr"].mean(), n=n, **proto)
    rows.add("ssim", per["ssim"].mean(), n=n, note="gaussian window 11, sigma 1.5, K1 0.01, K2 0.03, "
                                                    "data range 1", **proto)
    lp = lpips_scores(rows, x, y, ev, channels, resolution, device)
    per["lpips"] = lp if lp is not None else np.full(n, np.nan)
    n_fid = min(ev["n_fid"], n)
    feats = fid_scores(rows, {"fid_recon": y[:n_fid], **(extra_fid_sets or {})}, ev, fid_stats, channels, device)
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
                 version=package_version("blurbench"), note=note or f"blur ladder σ = {', '.join(f'{s:g}' for s in ladder[0])} px")


