"""The harness's answer: every method against a reference method (L2 by default), paired, with
intervals, p-values and verdicts adjusted for multiplicity within each dataset.

For each dataset, method and metric of `results_schema.COMPARISON_METRICS`, the difference
method − reference is computed from what each run kept next to its metrics (per-image values in
`per_image.csv`, Inception features in `features.npz`, cross-spectra in `transfer.npz`; the test
features in the dataset's FID statistics file), so nothing is rerun. How each interval is built and
what it covers is in `blurbench.stats` (and `metrics.generative` for PRDC):
- per-image means (MSE, PSNR, SSIM, LPIPS, added_hf): centred bootstrap (one seed) or a t interval
  over seeds and images (several seeds);
- detail_hf and HFER: judged by closeness to 1, and that is also what the cell shows (the difference
  of −|value − 1|), so a cell and its verdict never disagree; a footnote marks a value above 1;
- FID-recon: test images resampled with their reconstructions (both sides, the same counts),
  jackknife; FID-gen: prior draws against the test statistics, jackknife; FID below
  `stats.FID_MIN_N` images gets its value and no verdict;
- KID: bootstrap (reconstructions paired with their own test images; samples with the test side
  resampled alike); PRDC: subsampling without duplicates, first seed only, no verdict below
  `generative.PRDC_MIN_N` images; density is shown without a verdict (its ideal is ≈ 1);
- the equivalent blur (a fit per run): the difference of the seed means, no interval, no verdict;
- HFER: a diagnostic (it counts added energy as sharpness): interval, no verdict;
- a flows run's artifact rate per condition set (`compare_flows`): per LR input, the fraction of its
  K samples with an artifact, paired by input (and latent draws) like a per-image mean.
Verdicts: Holm within each dataset over every cell that can get one; `verdict` is the adjusted
one, `verdict_raw` the unadjusted (interval excludes 0), `fragile` flags an adjusted verdict that
flips within ±2 Monte-Carlo SE of its p-value. A cell that cannot be computed (a missing seed, a
NaN, a different N) says why in `reason`, and the rest of the table still builds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import layout, stats
from .results_schema import (COMPARISON_METRICS, FEATURE_SETS, FID_MIN_N, FLOW_CONDITIONS, METRICS, condition_metric,
                             flows_key)

CSV_COLUMNS = ["dataset", "method", "reference", "metric", "diff", "lo", "hi", "p", "p_adjusted", "verdict",
               "verdict_raw", "fragile", "covers", "n", "n_boot", "level", "ci", "note", "reason"]
ADJUSTMENT = "Holm (family-wise error 0.05 within each dataset)"
NO_VERDICT = "n/a (no verdict)"  # a diagnostic, or too few images for one


def _per_image(path: Path):
    import pandas as pd

    if not path.is_file():
        return None
    df = pd.read_csv(path)
    return df if len(df) else None


def _npz(path: Path) -> dict:
    if not path.is_file():
        return {}
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


class Run:
    """What one run kept for the comparison: per-image values, features, cross-spectra."""

    def __init__(self, files: dict):
        self.per = _per_image(Path(files["per_image"]))
        self.feats = _npz(Path(files["features"]))
        self.transfer = _npz(Path(files["transfer"]))

    def values(self, column: str):
        if self.per is None or column not in self.per.columns:
            return None
        return self.per[column].to_numpy(float)

    def blur(self):
        """The equivalent blur σ fitted to this run's transfer function, or None."""
        if not self.transfer:
            return None
        from .metrics import transfer

        return transfer.fit_gaussian_mtf(transfer.CrossSpectra.from_arrays(self.transfer)).sigma


def _reference_stats(path):
    """(mu, sigma, test features) of the dataset's FID statistics, or None where there are none."""
    if path is None or not Path(path).is_file():
        return None
    from .fid_reference import load_reference_stats

    ref = load_reference_stats(path)
    return None if ref.get("unavailable") else ref


def _notes(*texts: str) -> str:
    """A cell's notes, the empty ones left out."""
    return "; ".join(t for t in texts if t)


class CellError(ValueError):
    """A cell that cannot be computed; its message is the cell's reason."""


def _seeds(method: str, reference: str, runs: dict, have) -> tuple[list, str]:
    """Seeds where both runs have the items (`have(run)`), and a note naming the seeds left out."""
    seeds = [s for s in runs[reference] if s in runs[method]
             and have(runs[method][s]) and have(runs[reference][s])]
    missing = sorted(set(runs[reference]) | set(runs[method]), key=str)
    missing = [s for s in missing if s not in seeds]
    if not seeds:
        raise CellError(f"no seed with values for both {method} and {reference}"
                        + (f" (seeds {', '.join(map(str, missing))})" if missing else ""))
    note = f"seed(s) {', '.join(map(str, missing))} missing for {method} or {reference}: left out" if missing else ""
    return seeds, note


def _same_n(a, b, method: str, reference: str) -> None:
    if len(a) != len(b):
        raise CellError(f"{method} has {len(a)} paired items and {reference} {len(b)}: not the same images")


def _per_image_cell(column, method, reference, runs, n_boot, closeness: bool):
    seeds, note = _seeds(method, reference, runs, lambda r: r.values(column) is not None)
    m = [runs[method][s].values(column) for s in seeds]
    r = [runs[reference][s].values(column) for s in seeds]
    for a, b in zip(m, r):
        _same_n(a, b, method, reference)
    m, r = np.array(m), np.array(r)
    finite = np.isfinite(m).all(axis=0) & np.isfinite(r).all(axis=0)
    if finite.sum() < 2:
        raise CellError(f"{column}: fewer than 2 images with finite values for both methods")
    if not finite.all():
        note = _notes(note, f"{int((~finite).sum())} image(s) with a NaN left out")
        m, r = m[:, finite], r[:, finite]
    if closeness:
        stat = stats.closeness_to_one(stats.mean_stat)
        est = stats.paired_set_diff(stat, list(m), list(r), n_boot=n_boot)
        above = max(m.mean(), r.mean()) > 1
        note = _notes(note, "a value above 1 (over-sharpening): the cell is −|value − 1|" if above else "")
    else:
        est = stats.paired_mean_diff(m, r, n_boot=n_boot)
    return est, note, m.shape[1]


def _hfer_cell(method, reference, runs, n_boot):
    have = lambda run: run.values("hf_recon") is not None
    seeds, note = _seeds(method, reference, runs, have)
    items = lambda run: np.stack([run.values("hf_recon"), run.values("hf_data")], 1)
    m = [items(runs[method][s]) for s in seeds]
    r = [items(runs[reference][s]) for s in seeds]
    for a, b in zip(m, r):
        _same_n(a, b, method, reference)
    est = stats.paired_set_diff(stats.closeness_to_one(stats.hfer_stat), m, r, n_boot=n_boot)
    hfer = lambda items: np.mean([i[:, 0].sum() / i[:, 1].sum() for i in items])
    if max(hfer(m), hfer(r)) > 1:
        note = _notes(note, "an HFER above 1: the cell is the difference of −|HFER − 1|")
    return est, note, len(m[0])


def _features(run: Run, key: str):
    f = run.feats.get(key)
    if f is None:
        return None
    if not np.isfinite(f).all():
        raise CellError(f"non-finite Inception features ({key})")
    return f.astype(np.float64)


def _feature_cell(metric, method, reference, runs, ref, n_boot):
    from .metrics import generative

    key = next(k for k in FEATURE_SETS if f"_{k}" in metric)  # fid_recon, prdc_recon_recall, ...
    if ref is None:
        raise CellError("no FID reference statistics (FID off, or its weights unavailable)")
    seeds, note = _seeds(method, reference, runs, lambda run: run.feats.get(key) is not None)
    m = [_features(runs[method][s], key) for s in seeds]
    r = [_features(runs[reference][s], key) for s in seeds]
    for a, b in zip(m, r):
        _same_n(a, b, method, reference)
    n = len(m[0])
    test = ref["feats"][:n]
    if len(test) < n:
        raise CellError(f"{n} feature rows but only {len(test)} test features in the FID statistics")
    family = metric.split("_")[0]
    if family == "fid":
        if key == "recon":
            pair = lambda f: np.stack([f, test], 1)
            est = stats.paired_set_diff(stats.fid_recon_stat, [pair(f) for f in m], [pair(f) for f in r],
                                        resampling="jackknife")
        else:
            est = stats.paired_set_diff(stats.fid_stat(ref["mu"], ref["sigma"]), m, r, resampling="jackknife",
                                        unit="prior draws")
        bias = (f"N = {n} < {stats.FID_MIN_N}: value shown, no verdict" if n < stats.FID_MIN_N else
                f"N = {n} < {FID_MIN_N}: the interval covers FID's expected difference at this N, which is "
                "biased and can differ from the difference at large N" if n < FID_MIN_N else "")
        return est, _notes(note, bias), n
    if family == "kid":
        if key == "recon":
            pair = lambda f: np.stack([f, test], 1)
            est = stats.paired_set_diff(generative.kid_recon_stat, [pair(f) for f in m],
                                        [pair(f) for f in r], n_boot=n_boot)
        else:
            est = stats.paired_set_diff(generative.kid_gen_stat(test), m, r, n_boot=n_boot,
                                        unit="prior draws and test images")
        return est, note, n
    which = metric.split("_")[-1]
    est = generative.prdc_paired_diff(m[0], r[0], test if key == "recon" else ref["feats"],
                                      paired=key == "recon")[which]
    extra = [] if len(seeds) == 1 else [f"first seed only ({seeds[0]}) of {len(seeds)}"]
    if n < generative.PRDC_MIN_N:
        extra.append(f"N = {n} < {generative.PRDC_MIN_N}: value shown, no verdict")
    return est, _notes(note, *extra), n


def _blur_cell(method, reference, runs):
    seeds, note = _seeds(method, reference, runs, lambda run: bool(run.transfer))
    m = np.mean([runs[method][s].blur() for s in seeds])
    r = np.mean([runs[reference][s].blur() for s in seeds])
    return float(m - r), _notes(note, "a fit per run: difference of seed means, no interval")


def _verdict_allowed(metric: str, note: str) -> bool:
    """Whether a cell enters the multiplicity family (gets a verdict)."""
    if METRICS[metric].direction in ("info",) or metric == "hfer_recon":
        return False
    return "no verdict" not in note  # the notes of FID/PRDC below their minimum N say so


def compare_dataset(dataset: str, runs_files: dict, reference: str, fid_stats, n_boot: int, n_boot_set: int,
                    metrics: list[str] = COMPARISON_METRICS) -> list[dict]:
    """Rows of CSV_COLUMNS for every method but the reference on one dataset.

    `runs_files`: method -> seed -> {"per_image", "features", "transfer"} -> path.
    """
    runs = {m: {s: Run(f) for s, f in by_seed.items()} for m, by_seed in runs_files.items()}
    ref = _reference_stats(fid_stats)
    out = []
    for method in runs:
        if method == reference:
            continue
        for metric in metrics:
            row = dict.fromkeys(CSV_COLUMNS, "")
            row.update(dataset=dataset, method=method, reference=reference, metric=metric, diff=np.nan,
                       lo=np.nan, hi=np.nan, p=np.nan, p_adjusted=np.nan, fragile=False, n=0, n_boot=0,
                       level=stats.LEVEL)
            try:
                if metric == "equiv_blur":
                    row["diff"], row["note"] = _blur_cell(method, reference, runs)
                    row["verdict"] = row["verdict_raw"] = NO_VERDICT
                    out.append(row)
                    continue
                kind = METRICS[metric].kind
                if metric == "hfer_recon":
                    est, note, n = _hfer_cell(method, reference, runs, n_boot_set)
                elif kind == "per_image":
                    est, note, n = _per_image_cell(metric, method, reference, runs, n_boot,
                                                   closeness=METRICS[metric].direction == "one")
                else:
                    est, note, n = _feature_cell(metric, method, reference, runs, ref, n_boot_set)
            except (CellError, ValueError) as e:
                row["reason"] = str(e)
                out.append(row)
                continue
            direction = "max" if METRICS[metric].direction == "one" else METRICS[metric].direction
            allowed = _verdict_allowed(metric, note)
            row.update(diff=est.diff, lo=est.lo, hi=est.hi, p=est.p, n=n, n_boot=est.n_boot, level=est.level,
                       ci=est.method, covers=est.covers, note=note,
                       verdict_raw=stats.verdict(est, direction) if allowed else NO_VERDICT,
                       _estimate=est, _direction=direction, _allowed=allowed)
            out.append(row)
    _adjust(out)
    return out


def _adjust(rows: list[dict]) -> None:
    """Holm over the dataset's cells that get a verdict (`stats.adjust_family`): the adjusted
    verdict and the fragile flag."""
    family = [r for r in rows if r.pop("_allowed", False) and np.isfinite(r["p"])]
    adjusted = stats.adjust_family([r["_estimate"] for r in family], [r["_direction"] for r in family])
    for r, (pa, verdict, flip) in zip(family, adjusted):
        r.update(p_adjusted=pa, verdict=verdict, fragile=flip)
    for r in rows:
        r.pop("_estimate", None)
        r.pop("_direction", None)
        if not r["verdict"] and not r["reason"]:
            r["verdict"] = NO_VERDICT


def compare_flows(files: dict, reference: str, n_boot: int):
    """The flows comparison (DataFrame of CSV_COLUMNS): per dataset, coupling and condition set, the
    coupling's artifact rate minus the reference's, paired by LR input (each input's fraction of its K
    samples with an artifact, `flows.npz`), seeds pooled as for per-image metrics (`stats.paired_mean_diff`);
    Holm within each dataset.

    `files`: dataset -> {"runs": method -> seed -> {"flows": path}}, the inputs the rule declares.
    """
    import pandas as pd

    out = []
    for dataset, f in files.items():
        runs = {m: {s: _npz(Path(p["flows"])) for s, p in by_seed.items()} for m, by_seed in f["runs"].items()}
        rows = []
        for method in (m for m in runs if m != reference):
            for condition in FLOW_CONDITIONS:
                key, metric = flows_key("artifacts", condition), condition_metric("artifact_rate", condition)
                row = dict.fromkeys(CSV_COLUMNS, "")
                row.update(dataset=dataset, method=method, reference=reference, metric=metric, diff=np.nan,
                           lo=np.nan, hi=np.nan, p=np.nan, p_adjusted=np.nan, fragile=False, n=0, n_boot=0,
                           level=stats.LEVEL)
                if not any(key in r for by_seed in runs.values() for r in by_seed.values()):
                    why = " (experiments.flows.other names no dataset)" if condition == "other_dataset" else ""
                    row["reason"] = f"no {condition} condition set in the runs' {layout.FLOWS}{why}"
                    rows.append(row)
                    continue
                try:
                    seeds, note = _seeds(method, reference, runs, lambda r: key in r)
                    m, r = [runs[method][s][key] for s in seeds], [runs[reference][s][key] for s in seeds]
                    for a, b in zip(m, r):
                        _same_n(a, b, method, reference)
                    est = stats.paired_mean_diff(np.array(m), np.array(r), n_boot=n_boot)
                except (CellError, ValueError) as e:
                    row["reason"] = str(e)
                    rows.append(row)
                    continue
                row.update(diff=est.diff, lo=est.lo, hi=est.hi, p=est.p, n=len(m[0]), n_boot=est.n_boot,
                           level=est.level, ci=est.method, covers=est.covers, note=note,
                           verdict_raw=stats.verdict(est, "min"), _estimate=est, _direction="min", _allowed=True)
                rows.append(row)
        _adjust(rows)
        out += rows
    return pd.DataFrame(out, columns=CSV_COLUMNS)


def compare(files: dict, reference: str, n_boot: int, n_boot_set: int, metrics: list[str] = COMPARISON_METRICS):
    """The comparison of every main dataset (DataFrame of CSV_COLUMNS).

    `files`: dataset -> {"runs": method -> seed -> {"per_image", "features", "transfer"} -> path,
    "fid_stats": path or None}, the inputs the comparison rule declares.
    """
    import pandas as pd

    rows = []
    for dataset, f in files.items():
        rows += compare_dataset(dataset, f["runs"], reference, f["fid_stats"], n_boot, n_boot_set, metrics)
    return pd.DataFrame(rows, columns=CSV_COLUMNS)
