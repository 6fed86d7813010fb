"""The paper's figures and the blur diagnostics, as PNG and PDF (matplotlib, Agg backend).

Each figure is one function taking explicit file paths, so it can be called and tested alone;
`write_figures` takes the files the figures rule declares (names and places: `blurbench.layout`).
A missing per-run file (a method that could not run, e.g. weights missing) becomes an "n/a" row,
panel or legend entry; a file that exists but lacks an expected key is an error naming both.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from . import layout
from .errors import DataError

MISSING = "no {file} data (run missing or not trained)"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out_base: Path) -> list[Path]:
    """Write `<out_base>.png` and `.pdf` atomically, close the figure, return both paths."""
    from .atomic import atomic_path

    out_base = Path(out_base)
    paths = []
    for ext, meta in (("png", {"Software": None}), ("pdf", {"CreationDate": None})):
        path = out_base.with_name(f"{out_base.name}.{ext}")
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150, bbox_inches="tight", metadata=meta)
        paths.append(path)
    _pyplot().close(fig)
    return paths


def load_npz(path: Path | None, keys: list[str], optional: tuple = ()) -> dict | None:
    """The arrays `keys` (and those of `optional` it has) of an .npz file.

    None when the file does not exist or holds no array (what a run that did not train writes).
    """
    if path is None or not Path(path).exists():
        return None
    try:
        with np.load(path) as f:
            if not f.files:
                return None
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise DataError(f"{path} lacks the array(s) {', '.join(missing)}; it has {', '.join(f.files)}")
            return {k: f[k] for k in [*keys, *optional] if k in f.files}
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable .npz file: {e}") from None


def method_colors(methods: list[str]) -> dict:
    """One colour per method, the same in every figure."""
    cmap = _pyplot().get_cmap("tab10")
    return {m: cmap(i % 10) for i, m in enumerate(methods)}


def _na(ax, text: str) -> None:
    ax.text(0.5, 0.5, "\n".join(textwrap.wrap(f"n/a: {text}", 40)), ha="center", va="center",
            transform=ax.transAxes, fontsize=8, color="0.3")
    ax.set_xticks([])
    ax.set_yticks([])


def _na_legend(ax, label: str) -> None:
    ax.plot([], [], " ", label=label)


# ----------------------------------------------------------------------------- qualitative
def _strip(images: np.ndarray) -> np.ndarray:
    """(n, C, H, W) uint8 -> one H × (n·W + gaps) image, white 2-pixel gaps; 2-D for one channel."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(f"example images have shape {images.shape}; expected (n, C, H, W) with C = 1 or 3")
    n, c, h, w = images.shape
    out = np.full((c, h, n * w + 2 * (n - 1)), 255, dtype=np.uint8)
    for i in range(n):
        out[:, :, i * (w + 2):i * (w + 2) + w] = images[i]
    return out[0] if c == 1 else out.transpose(1, 2, 0)


def qualitative_grid(dataset: str, examples: dict, out_base: Path, max_images: int = 8) -> list[Path]:
    """Input row, one reconstruction row per method, then one sample row per method.

    `examples`: method -> path of its eval/examples.npz (inputs, recon, samples), None if absent.
    When a method's inputs differ from the first input row, its own input row is shown above it.
    """
    loaded = {m: load_npz(p, ["inputs", "recon", "samples"]) for m, p in examples.items()}
    rows = []  # (label, images or None, reason)
    shown_inputs = None
    for method, arrays in loaded.items():
        if arrays is None:
            continue
        inputs = arrays["inputs"][:max_images]
        if shown_inputs is None:
            rows.append(("input", inputs, ""))
            shown_inputs = inputs
        elif not np.array_equal(inputs, shown_inputs):
            rows.append((f"input ({method})", inputs, ""))
    if shown_inputs is None:
        rows.append(("input", None, f"no {layout.EXAMPLES} for any method"))
    for kind, key in (("recon", "recon"), ("samples", "samples")):
        for method, arrays in loaded.items():
            reason = MISSING.format(file=layout.EXAMPLES)
            rows.append((f"{kind}: {method}", None if arrays is None else arrays[key][:max_images], reason))
    return _image_rows(rows, f"{dataset}: test inputs, reconstructions and samples", out_base, max_images)


def _image_rows(rows: list, title: str, out_base: Path, max_images: int) -> list[Path]:
    """One labelled strip of images per row (label, (n, C, H, W) uint8 or None, reason if None)."""
    plt = _pyplot()
    # at least one figure pixel per image pixel (dpi 150), so blur is not hidden by downsampling
    size = max(0.9, max((r[1].shape[-1] for r in rows if r[1] is not None), default=0) / 150)
    fig, axes = plt.subplots(len(rows), 1, figsize=(max(6.0, size * max_images + 1.5),
                                                     (size + 0.05) * len(rows) + 0.6), squeeze=False)
    for ax, (label, images, reason) in zip(axes[:, 0], rows):
        if images is None:
            _na(ax, reason)
        else:
            strip = _strip(images)
            ax.imshow(strip, cmap="gray" if strip.ndim == 2 else None, vmin=0, vmax=255,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle(title, fontsize=10)
    return save_figure(fig, out_base)


def sr_qualitative(dataset: str, examples: dict, out_base: Path, max_images: int = 8) -> list[Path]:
    """Super-resolution at one scale: the LR input y (nearest-upsampled to the HR size, so every row
    has one scale), A⁺y, one row per method, then the HR image.

    `examples`: SR method -> path of its eval/examples.npz (inputs, recon, lr_pinv, lr), None if
    absent. The test images and the operator are the same for every method, so the first available
    run gives the LR, A⁺y and HR rows.
    """
    loaded = {m: load_npz(p, ["inputs", "recon", "lr_pinv", "lr"]) for m, p in examples.items()}
    first = next((a for a in loaded.values() if a is not None), None)
    reason = MISSING.format(file=layout.EXAMPLES)
    shared = [("LR y (nearest)", "lr"), ("A⁺y", "lr_pinv")]
    rows = [(label, None if first is None else first[key][:max_images], reason) for label, key in shared]
    if first is not None:
        factor = first["inputs"].shape[-1] // first["lr"].shape[-1]
        rows[0] = (f"LR y (×{factor} nearest)", rows[0][1].repeat(factor, -1).repeat(factor, -2), "")
    rows += [(m, None if a is None else a["recon"][:max_images], reason) for m, a in loaded.items()]
    rows.append(("HR", None if first is None else first["inputs"][:max_images], reason))
    return _image_rows(rows, f"{dataset}: super-resolution of test images", out_base, max_images)


# ----------------------------------------------------------------------------- kernels
def _step_columns(steps: np.ndarray, start_step, n_columns: int) -> list[int]:
    """Evenly spaced log points, always including the first one with the blur term on.

    A probe logged after `steps` optimiser steps saw the blur term on when steps > start_step.
    """
    idx = set(np.unique(np.round(np.linspace(0, len(steps) - 1, n_columns)).astype(int)).tolist())
    if start_step is not None:
        on = np.nonzero(steps > start_step)[0]
        if len(on):
            idx.add(int(on[0]))
    return sorted(idx)


def kernel_evolution(probe: Path | None, out_base: Path, title: str, n_images: int = 4,
                     n_columns: int = 6) -> list[Path]:
    """Per-image kernels of probe images (rows) at several log points (columns), blur switch marked.

    `probe`: the run's probe.npz with kernels (E, P, s, s), steps (E,) and, if logged, start_step.
    """
    plt = _pyplot()
    arrays = load_npz(probe, ["kernels", "steps"], optional=("start_step",))
    if arrays is None:
        fig, ax = plt.subplots(figsize=(5, 2))
        _na(ax, MISSING.format(file=layout.PROBE))
        ax.set_title(title, fontsize=10)
        return save_figure(fig, out_base)
    kernels, steps = arrays["kernels"], np.asarray(arrays["steps"]).reshape(-1)
    if kernels.ndim != 4 or kernels.shape[0] != len(steps):
        raise DataError(f"{probe}: kernels have shape {kernels.shape}, steps {steps.shape}; "
                        "expected kernels (E, P, s, s) and steps (E,)")
    start = float(arrays["start_step"]) if "start_step" in arrays else None
    cols = _step_columns(steps, start, n_columns)
    rows = min(n_images, kernels.shape[1])
    switch = next((c for c in cols if start is not None and steps[c] > start), None)
    vmax = float(kernels[cols][:, :rows].max())
    fig, axes = plt.subplots(rows, len(cols), figsize=(1.3 * len(cols) + 0.8, 1.3 * rows + 0.8),
                             squeeze=False)
    for j, c in enumerate(cols):
        for i in range(rows):
            ax = axes[i, j]
            im = ax.imshow(kernels[c, i], cmap="viridis", vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if c == switch:
                for spine in ax.spines.values():
                    spine.set_edgecolor("red")
                    spine.set_linewidth(2)
            if j == 0:
                ax.set_ylabel(f"probe {i}", fontsize=8)
        phase = "blur on" if c == switch else ("L2 warm-up" if start is not None and steps[c] <= start else "")
        axes[0, j].set_title(f"step {int(steps[c])}" + (f"\n{phase}" if phase else ""), fontsize=8,
                             color="red" if c == switch else "black")
    if start is None:
        note = "start step of the blur term not logged"
    elif switch is None:
        note = f"blur term starts at step {int(start)}, after the last logged step"
    else:
        note = f"blur term on from step {int(start)} (red)"
    fig.colorbar(im, ax=axes, shrink=0.8, label="kernel weight")
    fig.suptitle(f"{title}\n{note}", fontsize=10)
    return save_figure(fig, out_base)


# ----------------------------------------------------------------------------- ablation curves
def ablation_curves(metrics_csv: Path, name: str, ablation: dict, out_base: Path) -> list[Path]:
    """One panel per metric against the swept value, one line per method, error bars = std over seeds."""
    from .results_schema import ABLATION_METRICS, metric_header
    from .tables import ablation_summary, load_metrics, param_label

    plt = _pyplot()
    summary = ablation_summary(load_metrics(metrics_csv), name, ablation)
    colors = method_colors(ablation["methods"])
    ncols = 4
    nrows = -(-len(ABLATION_METRICS) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax in axes.flat[len(ABLATION_METRICS):]:
        ax.axis("off")
    for ax, metric in zip(axes.flat, ABLATION_METRICS):
        part = summary[summary["metric"] == metric]
        if part["mean"].notna().sum() == 0:
            _na(ax, "; ".join(dict.fromkeys(part["reason"])))
        else:
            for method in ablation["methods"]:
                rows = part[(part["method"] == method) & part["mean"].notna()]
                if not len(rows):
                    reason = part.loc[part["method"] == method, "reason"].iloc[0]
                    _na_legend(ax, f"{method}: n/a ({textwrap.shorten(reason, 40)})")
                    continue
                ax.errorbar(rows["value"].astype(float), rows["mean"], yerr=rows["std"].fillna(0),
                            marker="o", capsize=3, color=colors[method], label=method)
            ax.set_xticks([float(v) for v in ablation["values"]])
            ax.legend(fontsize=6)
        ax.set_title(metric_header(metric), fontsize=9)
        ax.set_xlabel(param_label(ablation["param"]), fontsize=8)
    fig.suptitle(f"Ablation '{name}' on {ablation['dataset']}: mean ± std over seeds", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_base)


# ----------------------------------------------------------------------------- spectra
def power_spectra(spectra: dict, out_base: Path, methods: list[str]) -> list[Path]:
    """Radially averaged power spectra, log–log, one panel per dataset.

    `spectra`: dataset -> {method -> path of eval/spectra.npz (freq, data, recon, samples) or None}.
    Data in black, reconstructions solid, samples dashed; DC (freq 0) is left out of the log axis.
    """
    from matplotlib.ticker import NullFormatter

    plt = _pyplot()
    colors = method_colors(methods)
    n = len(spectra)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.4 * nrows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (dataset, runs) in zip(axes.flat, spectra.items()):
        loaded = {m: load_npz(p, ["freq", "data", "recon", "samples"]) for m, p in runs.items()}
        if all(a is None for a in loaded.values()):
            _na(ax, MISSING.format(file=layout.SPECTRA) + " for every method")
            ax.set_title(dataset, fontsize=9)
            continue
        data_drawn = False
        for method, arrays in loaded.items():
            if arrays is None:
                _na_legend(ax, f"{method}: n/a")
                continue
            keep = arrays["freq"] > 0
            if not data_drawn:
                ax.loglog(arrays["freq"][keep], arrays["data"][keep], color="black", lw=2, label="data")
                data_drawn = True
            ax.loglog(arrays["freq"][keep], arrays["recon"][keep], color=colors[method], label=f"{method} recon")
            ax.loglog(arrays["freq"][keep], arrays["samples"][keep], color=colors[method], ls="--",
                      label=f"{method} samples")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_title(dataset, fontsize=9)
        ax.set_xlabel("radial frequency", fontsize=8)
        ax.set_ylabel("power", fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle("Radially averaged power spectra (blur: curve below the data's at high frequencies)",
                 fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_base)


# ----------------------------------------------------------------------------- transfer functions
LADDER_SIGMAS = (0.5, 1.0, 2.0, 4.0)  # the config's default `evaluate.blur_ladder`, when metrics.csv has no ladder rows
TRANSFER_KEYS = ["n", "sxx", "syy", "syx_re", "syx_im", "window"]  # CrossSpectra.to_arrays()


def ladder_sigmas(df, dataset: str) -> list[float]:
    """σ (px) of the blur-ladder baseline rows of `dataset` in metrics.csv; LADDER_SIGMAS if none."""
    from .results_schema import BASELINE_METHOD

    rows = df[(df["dataset"] == dataset) & (df["method"] == BASELINE_METHOD)
              & df["variant"].str.startswith(layout.LADDER_PREFIX)]
    return sorted({float(v[len(layout.LADDER_PREFIX):]) for v in rows["variant"]}) or list(LADDER_SIGMAS)


def transfer_figure(dataset: str, transfer: dict, out_base: Path, ladder=LADDER_SIGMAS) -> list[Path]:
    """Left: each method's annulus-averaged |H| (its MTF), legend with the fitted equivalent blur σ
    and the fit's residual, the ladder's Gaussians thin and grey; right: each method's added-energy
    spectrum (log y, down to 1e-6 of the data's peak; bins where it is ≤ 0 are left out) with the
    data's spectrum for scale.

    `transfer`: method -> path of its eval/transfer.npz (CrossSpectra.to_arrays()) or None.
    """
    from .metrics import transfer as T

    plt = _pyplot()
    colors = method_colors(list(transfer))
    loaded = {m: load_npz(p, TRANSFER_KEYS) for m, p in transfer.items()}
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 4.2))
    left.set_title("transfer |H| per annulus (MTF)", fontsize=9)
    right.set_title("added-energy spectrum", fontsize=9)
    if all(a is None for a in loaded.values()):
        for ax in (left, right):
            _na(ax, MISSING.format(file=layout.TRANSFER) + " for every method")
        fig.suptitle(f"{dataset}: transfer functions and added energy", fontsize=10)
        return save_figure(fig, out_base)
    first, peak = True, 0.0
    for method, arrays in loaded.items():
        if arrays is None:
            for ax in (left, right):
                _na_legend(ax, f"{method}: n/a")
            continue
        cs = T.CrossSpectra.from_arrays(arrays)
        s = T.radial_spectra(cs)
        peak = max(peak, float(np.nanmax(s["data"][1:])))
        if first:  # the same test images for every method: one data spectrum, one set of ladder curves
            first = False
            right.semilogy(s["freq"][1:], s["data"][1:], color="black", lw=2, label="data")
            for sigma in ladder:
                f, curve = T.model_curve(cs, sigma)
                left.plot(f[1:], curve[1:], color="0.6", lw=0.7, zorder=1)
                i = 1 + int(np.nanargmin(np.abs(curve[1:] - 0.5)))
                left.annotate(f"σ={sigma:g}", (f[i], curve[i]), xytext=(2, 2), textcoords="offset points",
                              fontsize=6, color="0.4")
        fit = T.fit_gaussian_mtf(cs)
        freq, mtf, _ = T.annulus_transfer(cs)
        note = f" ({fit.note})" if fit.note else ""
        label = f"{method}: σ = {fit.sigma:.2f} px, residual {fit.residual:.3f}{note}"
        left.plot(freq[1:], mtf[1:], marker=".", color=colors[method], label=label)
        right.semilogy(s["freq"][1:], np.where(s["added"] > 0, s["added"], np.nan)[1:], color=colors[method],
                       label=method)
    left.plot([], [], color="0.6", lw=0.7, label="ladder Gaussians (σ px)")
    left.set_ylabel("|H|", fontsize=8)
    right.set_ylabel("power (per image and channel)", fontsize=8)
    right.set_ylim(bottom=max(right.get_ylim()[0], 1e-6 * peak))
    for ax in (left, right):
        ax.set_xlabel("radial frequency (cycles/px)", fontsize=8)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    fig.suptitle(f"{dataset}: transfer functions and added energy (blur: |H| falls; added: energy not in the "
                 "data)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_base)


# ----------------------------------------------------------------------------- training curves
def _read_log(path: Path | None):
    import pandas as pd

    if path is None or not Path(path).exists():
        return None
    try:
        log = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return None
    if "step" not in log.columns:
        raise DataError(f"{path} lacks the column 'step'; it has {', '.join(log.columns)}")
    if log.empty:  # a run that did not train writes the header only
        return None
    return log.drop_duplicates("step", keep="last")  # a resumed job may log a step twice


def training_curves(dataset: str, logs: dict, out_base: Path) -> list[Path]:
    """One panel per logged loss term (every train_log.csv column but step and seconds)."""
    from matplotlib.ticker import MaxNLocator

    plt = _pyplot()
    loaded = {m: _read_log(p) for m, p in logs.items()}
    colors = method_colors(list(logs))
    logged = [c for log in loaded.values() if log is not None for c in log.columns if c not in ("step", "seconds")]
    terms = list(dict.fromkeys([t for t in ("loss", "recon_nll", "kl") if t in logged] + logged))
    if not terms:
        fig, ax = plt.subplots(figsize=(5, 2))
        _na(ax, MISSING.format(file=layout.TRAIN_LOG) + " for every method")
        ax.set_title(f"{dataset}: training curves", fontsize=10)
        return save_figure(fig, out_base)
    ncols = min(len(terms), 4)
    nrows = -(-len(terms) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 2.6 * nrows), squeeze=False)
    for ax in axes.flat[len(terms):]:
        ax.axis("off")
    for ax, term in zip(axes.flat, terms):
        positive = True
        for method, log in loaded.items():
            if log is None:
                _na_legend(ax, f"{method}: n/a")
            elif term in log.columns:
                ax.plot(log["step"], log[term], marker=".", color=colors[method], label=method)
                positive &= bool((log[term].dropna() > 0).all())
        if positive:
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(term, fontsize=9)
        ax.set_xlabel("optimiser step", fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle(f"{dataset}: training loss terms (means over each log interval)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_base)


# ----------------------------------------------------------------------------- rate vs sharpness
RATE_PANELS = ["hfer_recon", "lpips", "fid_recon", "fid_gen"]


def rate_figure(metrics_csv: Path, dataset: str, sweep: dict, out_base: Path) -> list[Path]:
    """Sharpness against rate: the L2 σ² sweep as a curve, every other run as a labelled point.

    One panel per metric of RATE_PANELS; values are means over seeds (tables.controls_summary).
    """
    from .results_schema import metric_header
    from .tables import controls_summary, load_metrics

    plt = _pyplot()
    summary = controls_summary(load_metrics(metrics_csv), dataset, sweep, ["rate", "gain", *RATE_PANELS])
    wide = summary.pivot_table(index=["variant", "role", "g"], columns="metric", values="mean",
                               dropna=False).reset_index() if len(summary) else None
    fig, axes = plt.subplots(1, len(RATE_PANELS), figsize=(3.4 * len(RATE_PANELS), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], RATE_PANELS):
        ax.set_title(metric_header(metric), fontsize=9)
        ax.set_xlabel("rate (nats per image)", fontsize=8)
        if wide is None or metric not in wide or wide[metric].notna().sum() == 0:
            _na(ax, "; ".join(dict.fromkeys(summary.loc[summary["metric"] == metric, "reason"]))
                if len(summary) else "no runs")
            continue
        curve = wide[(wide["role"] == "sweep") & wide[metric].notna() & wide["rate"].notna()].sort_values("g")
        ax.plot(curve["rate"], curve[metric], "-o", color="black", label="L2 σ²/g")
        for r in curve.itertuples():
            ax.annotate(f"g={r.g:g}", (r.rate, getattr(r, metric)), fontsize=6, xytext=(3, 3),
                        textcoords="offset points")
        points = wide[(wide["role"] == "point") & wide[metric].notna() & wide["rate"].notna()]
        for i, r in enumerate(points.itertuples()):
            gain = getattr(r, "gain", np.nan)
            label = r.variant + (f" (gain {gain:.2g})" if np.isfinite(gain) and gain != 1 else "")
            ax.scatter(r.rate, getattr(r, metric), marker="s", color=f"C{i % 10}", label=label, zorder=3)
        ax.legend(fontsize=5)
    fig.suptitle(f"{dataset}: sharpness against rate (mean over seeds); the curve is L2 at σ²/g", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_base)


# ----------------------------------------------------------------------------- all figures
def figure_names(main: dict, ablations: dict, kernel_methods: list[str]) -> list[str]:
    """File stems `write_figures` writes (each as .png and .pdf), for the rule's outputs."""
    names = [f"qualitative_{d}" for d in main["datasets"]]
    names += [f"kernels_{d}_{m}" for d in main["datasets"] for m in kernel_methods]
    names += [f"ablation_{a}" for a in ablations or {}]
    names += ["spectra"] + [f"transfer_{d}" for d in main["datasets"]]
    names += [f"training_{d}" for d in main["datasets"]]
    names += [f"rate_{d}" for d in sweep_datasets(ablations)]
    return names


def sr_figure_names(sr: dict | None) -> list[str]:
    """File stems `write_sr_figures` writes: one qualitative figure per SR dataset."""
    return [f"qualitative_sr_{d}" for d in (sr or {}).get("datasets", [])]


def write_sr_figures(files: dict, out_dir: Path) -> list[Path]:
    """`files`: SR dataset -> method -> path of its examples.npz (one seed, the rule's inputs)."""
    return [p for d, runs in files.items()
            for p in sr_qualitative(d, {m: Path(f) for m, f in runs.items()}, Path(out_dir) / f"qualitative_sr_{d}")]


def sweep_datasets(ablations: dict) -> list[str]:
    from .tables import sweep_ablations

    return list(dict.fromkeys(a["dataset"] for a in sweep_ablations(ablations).values()))


def write_figures(files: dict, metrics_csv: Path, ablations: dict, out_dir: Path, seed: int = 0) -> list[Path]:
    """Every figure of `figure_names`, from the main runs' files and metrics.csv.

    `files`: dataset -> method -> {"examples", "spectra", "transfer", "train_log", and "probe" for a
    method with per-image kernels} -> path, the files of seed `seed` that the figures rule declares as
    inputs. The transfer figures' ladder σ are those of metrics.csv's blur-ladder rows.
    """
    out_dir = Path(out_dir)
    paths = []
    for d, runs in files.items():
        paths += qualitative_grid(d, {m: Path(f["examples"]) for m, f in runs.items()}, out_dir / f"qualitative_{d}")
        for m, f in runs.items():
            if "probe" in f:
                paths += kernel_evolution(Path(f["probe"]), out_dir / f"kernels_{d}_{m}",
                                          title=f"{d}, {m} (seed {seed}): kernels of probe test images")
    for name, abl in (ablations or {}).items():
        paths += ablation_curves(metrics_csv, name, abl, out_dir / f"ablation_{name}")
    methods = list(dict.fromkeys(m for runs in files.values() for m in runs))
    paths += power_spectra({d: {m: Path(f["spectra"]) for m, f in runs.items()} for d, runs in files.items()},
                           out_dir / "spectra", methods)
    from .tables import load_metrics, sweep_ablations

    df = load_metrics(metrics_csv)
    for d, runs in files.items():
        paths += transfer_figure(d, {m: Path(f["transfer"]) for m, f in runs.items()}, out_dir / f"transfer_{d}",
                                 ladder_sigmas(df, d))
    for d, runs in files.items():
        paths += training_curves(d, {m: Path(f["train_log"]) for m, f in runs.items()}, out_dir / f"training_{d}")
    for dataset, sweep in {a["dataset"]: a for a in sweep_ablations(ablations).values()}.items():
        paths += rate_figure(metrics_csv, dataset, sweep, out_dir / f"rate_{dataset}")
    return paths
