"""The harness's answer: every method against a reference method (L2 by default), paired, with CIs.

For each dataset, method and metric of `results_schema.COMPARISON_METRICS`, the difference
method − reference is computed from the values each run kept next to its metrics (per-image values
in `eval/per_image.csv`, Inception features in `eval/features.npz`), so nothing is rerun:
- per-image metrics (MSE, PSNR, SSIM, LPIPS): mean difference over the same test images;
- FID-recon, FID-gen: FID of resampled features against the test split's cached statistics
  (reconstructions are paired by test image, samples by prior draw: every method of a seed decodes
  the same z);
- HFER: ratio of summed high-band energies (the verdict uses closeness to 1, its direction);
- equivalent blur: HFER mapped through the dataset's blur ladder.
With several seeds the bootstrap is hierarchical (`blurbench.stats`). A difference whose CI
contains 0 is "no detectable difference".
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import stats
from .results_schema import COMPARISON_METRICS, METRICS

CSV_COLUMNS = ["dataset", "method", "reference", "metric", "diff", "lo", "hi", "verdict", "n_boot",
               "level", "ci", "reason"]


def _per_image(path: Path):
    import pandas as pd

    if not path.is_file():
        return None
    df = pd.read_csv(path)
    return df if len(df) else None


def _features(path: Path) -> dict:
    if not path.is_file():
        return {}
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _ladder(baselines_csv: Path):
    from .scoring import read_ladder

    return read_ladder(baselines_csv) if baselines_csv.is_file() else None


def equiv_blur_stat(ladder) -> stats.Stat:
    """Equivalent blur σ of the resampled HFER, interpolated in log σ over the ladder (items (N, 2))."""
    sigma, hfer = np.asarray(ladder[0], float), np.asarray(ladder[1], float)
    order = np.argsort(hfer)

    def bind(items) -> stats.Evaluate:
        evaluate = stats.hfer_stat(items)
        return lambda counts: np.exp(np.interp(evaluate(counts), hfer[order], np.log(sigma[order])))
    return bind


def _items(metric: str, per, feats):
    """The paired items of one run for one metric, or None when the run lacks them."""
    if per is None:
        return None
    if metric in ("fid_recon", "fid_gen"):
        return feats.get(metric)
    if metric in ("hfer_recon", "equiv_blur"):
        return per[["hf_recon", "hf_data"]].to_numpy(float)
    values = per[metric].to_numpy(float)
    return None if np.isnan(values).any() else values


def _stat(metric: str, fid_ref, ladder):
    """(statistic for the CI shown, statistic for the verdict, direction of the verdict)."""
    if metric in ("fid_recon", "fid_gen"):
        s = stats.fid_stat(*fid_ref)
        return s, s, "min"
    if metric == "hfer_recon":
        return stats.hfer_stat, stats.closeness_to_one(stats.hfer_stat), "max"
    if metric == "equiv_blur":
        s = equiv_blur_stat(ladder)
        return s, s, "min"
    return stats.mean_stat, stats.mean_stat, METRICS[metric].direction


def compare_dataset(dataset: str, runs: dict, reference: str, fid_stats: Path | None, baselines: Path | None,
                    n_boot: int, n_boot_set: int, seed: int = 0) -> list[dict]:
    """Rows of CSV_COLUMNS for every method but the reference on one dataset.

    `runs`: method -> seed -> {"per_image": path, "features": path} (the reference among the methods).
    """
    fid_ref = _fid_reference(fid_stats)
    ladder = _ladder(Path(baselines)) if baselines else None
    loaded = {m: {s: (_per_image(Path(f["per_image"])), _features(Path(f["features"]))) for s, f in by_seed.items()}
              for m, by_seed in runs.items()}
    seeds = list(runs[reference])
    out = []
    for method in runs:
        if method == reference:
            continue
        for metric in COMPARISON_METRICS:
            row = {"dataset": dataset, "method": method, "reference": reference, "metric": metric,
                   "diff": np.nan, "lo": np.nan, "hi": np.nan, "verdict": "", "n_boot": 0,
                   "level": stats.LEVEL, "ci": "", "reason": ""}
            pairs = [(_items(metric, *loaded[method][s]), _items(metric, *loaded[reference][s])) for s in seeds]
            pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
            needs = {"fid_recon": fid_ref, "fid_gen": fid_ref, "equiv_blur": ladder}
            if metric in needs and needs[metric] is None:
                row["reason"] = "no FID reference statistics" if metric != "equiv_blur" else "no blur ladder"
            elif not pairs:
                row["reason"] = (f"no per-image values or features for {method} and {reference} "
                                 "(a run unavailable, or the metric not computed)")
            else:
                shown, judged, direction = _stat(metric, fid_ref, ladder)
                n = n_boot_set if METRICS[metric].kind == "set" else n_boot
                unit = "prior draws" if metric == "fid_gen" else "test images"
                est = stats.paired_set_diff(shown, [a for a, _ in pairs], [b for _, b in pairs],
                                            n_boot=n, seed=seed, unit=unit)
                judge = est if judged is shown else stats.paired_set_diff(
                    judged, [a for a, _ in pairs], [b for _, b in pairs], n_boot=n, seed=seed, unit=unit)
                row.update(diff=est.diff, lo=est.lo, hi=est.hi, n_boot=est.n_boot, level=est.level,
                           ci=est.method, verdict=stats.verdict(judge, direction))
            out.append(row)
    return out


def _fid_reference(path: Path | None):
    """(mu, sigma) of the test split's cached FID statistics, or None where there are none."""
    if path is None or not Path(path).is_file():
        return None
    from .fid_reference import load_reference_stats

    ref = load_reference_stats(path)
    return None if ref.get("unavailable") else (ref["mu"], ref["sigma"])


def compare(files: dict, reference: str, n_boot: int, n_boot_set: int):
    """The comparison of every main dataset (DataFrame of CSV_COLUMNS).

    `files`: dataset -> {"runs": method -> seed -> {"per_image", "features"} -> path, "fid_stats": path
    or None, "baselines": path}, the inputs the comparison rule declares.
    """
    import pandas as pd

    rows = []
    for dataset, f in files.items():
        rows += compare_dataset(dataset, f["runs"], reference, f["fid_stats"], f["baselines"], n_boot, n_boot_set)
    return pd.DataFrame(rows, columns=CSV_COLUMNS)
