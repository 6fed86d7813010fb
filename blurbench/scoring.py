"""Scoring a set of images against the test images: one room shared by every producer of metric rows.

A run's reconstructions (`blurbench.evaluate`) and the trivial baselines and blur ladder
(`blurbench.baselines`) score through here: the same code, the same N, the same row fields (`results_schema.ROW_FIELDS`).
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
from .metrics import basic, spectra, transfer
from .results_schema import ROW_FIELDS, fid_bias_note, generative_metrics
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


def lpips_scores(rows: RowWriter, x, y, ev: dict, channels: int, resolution: int, device,
                 metric: str = "lpips") -> np.ndarray | None:
    """Per-image LPIPS of `y` against the test images `x`, and its row `metric` (or why it is unavailable)."""
    if not ev["lpips"]:
        rows.add(metric, reason="disabled in config (evaluate.lpips: false)")
        return None
    from .metrics import lpips_metric

    net = LPIPS_METRIC_NET
    if resolution < lpips_metric.MIN_SIZE[net]:
        rows.add(metric, reason=f"images of {resolution}x{resolution} are smaller than "
                                f"LPIPS-{net}'s minimum of {lpips_metric.MIN_SIZE[net]} pixels")
        return None
    try:
        d = lpips_metric.lpips_distances(y, x, net=net, batch_size=ev["batch_size"], device=device)
        proto = lpips_metric.info(net)
    except WeightsUnavailable as e:
        rows.add(metric, reason=str(e))
        return None
    rows.add(metric, float(np.mean(d)), n=len(d), note="single channel replicated" if channels == 1 else "",
             **proto)
    return d


def generative_scores(rows: RowWriter, sets: dict, ev: dict, fid_stats: Path | None, channels: int,
                      device) -> dict:
    """FID, KID and precision/recall/density/coverage of each image set against the test images'
    Inception features (one pass for every set).

    `sets`: "recon" (images paired with the first N test images, whose features the FID statistics
    file keeps) and/or "gen" (samples) -> images. KID of reconstructions leaves out each image's pair
    with its own reconstruction (`generative.kid_paired`). Returns the features (set -> float32
    (N, 2048)) that `features.npz` keeps for the comparison's bootstrap.
    """
    names = [m for s in sets for m in generative_metrics(s)]
    if not ev["fid"]:
        rows.unavailable(names, ev.get("fid_off", "disabled in config (evaluate.fid: false)"))
        return {}
    from .metrics import fid, generative

    ref = load_reference_stats(fid_stats)
    if ref.get("unavailable"):
        rows.unavailable(names, ref["unavailable"])
        return {}
    try:
        feats = dict(zip(sets, fid.features_many(list(sets.values()), batch_size=ev["batch_size"],
                                                 device=device)))
        proto = fid.info()
    except WeightsUnavailable as e:
        rows.unavailable(names, str(e))
        return {}
    replicated = "single channel replicated" if channels == 1 else ""
    test = ref["feats"]
    small_n = {**proto, "implementation": f"blurbench.metrics.generative (checked against torch-fidelity "
                                          f"and prdc, k = {generative.PRDC_K})", "version": package_version("blurbench")}
    for name, f in feats.items():
        n = f.shape[0]
        note = "; ".join(t for t in (replicated, fid_bias_note(n)) if t)
        rows.add(f"fid_{name}", fid.frechet_distance_features(f, ref["mu"], ref["sigma"]), n=n, note=note, **proto)
        if name == "recon":
            kid = generative.kid_paired(f, test[:n])
            note = "; ".join(t for t in (replicated, "own pairs left out of the cross term") if t)
        else:
            kid = generative.kid(f, test)
            note = replicated
        rows.add(f"kid_{name}", kid, n=n, note=note, **small_n)
        for metric, value in generative.prdc(f, test[:n] if name == "recon" else test).items():
            rows.add(f"prdc_{name}_{metric}", value, n=n, note=replicated, **small_n)
    return {k: v.astype(np.float32) for k, v in feats.items()}


def hfer_protocol(cutoff: float) -> dict:
    return {"implementation": f"blurbench (torch FFT, {spectra.WINDOW} window)", "version": package_version("torch"),
            "note": f"cutoff {cutoff} x Nyquist"}


def score_against_test(rows: RowWriter, x: torch.Tensor, y: torch.Tensor, ev: dict, *, channels: int,
                       resolution: int, fid_stats: Path | None, device, samples: torch.Tensor | None = None):
    """Score images `y` paired with the test images `x`: MSE, PSNR, SSIM, LPIPS, FID/KID/PRDC, HFER,
    the transfer split (detail_hf, added_hf) and the equivalent blur fitted to the transfer function.

    `samples` (a run's prior draws) share the Inception pass. Returns (per-image columns, features,
    cross-spectra): what `per_image.csv`, `features.npz` and `transfer.npz` keep.
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
    sets = {"recon": y[:n_fid], **({"gen": samples[:n_fid]} if samples is not None else {})}
    feats = generative_scores(rows, sets, ev, fid_stats, channels, device)
    cut = ev["hfer_cutoff"]
    per["hf_recon"], per["hf_data"] = spectra.high_band_energy(y, cut), spectra.high_band_energy(x, cut)
    rows.add("hfer_recon", spectra.hfer_from_energies(per["hf_recon"], per["hf_data"]), n=n, **hfer_protocol(cut))
    cs = transfer.cross_spectra(x, y)
    split = transfer.high_band_split(cs, cut)
    tf_proto = {"implementation": f"blurbench.metrics.transfer ({spectra.WINDOW} window, cross-spectra)",
                "version": package_version("blurbench")}
    rows.add("detail_hf", split.detail_hf, n=n, note=f"coherent high-band energy / data's; cutoff {cut} x Nyquist",
             **tf_proto)
    rows.add("added_hf", split.added_hf, n=n, note=f"added high-band energy / data's; cutoff {cut} x Nyquist",
             **tf_proto)
    pv = transfer.pseudo_values(x, y, cut)
    per["detail_hf"], per["added_hf"] = pv[:, 0], pv[:, 1]
    fit = transfer.fit_gaussian_mtf(cs)
    rows.add("equiv_blur", fit.sigma, n=n, note="; ".join(t for t in (f"fit residual {fit.residual:.3g}", fit.note) if t),
             **{**tf_proto, "implementation": "blurbench.metrics.transfer (sampled-Gaussian MTF fit to |H|)"})
    return per, feats, cs
