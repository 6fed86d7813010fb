"""Summaries of `metrics.csv`: loading, mean ± std over seeds, best marking, the adequacy check.

Decisions (shown in every table's legend):
- mean ± sample std (ddof = 1) over the seeds whose value is available; with one seed only the mean
  is shown (a std of one value would be a fake number).
- a cell with no available seed is "n/a" with the reason(s); a method or ablation point of the
  config without any row in metrics.csv gets the reason "no results".
- a cell where only some seeds are available shows the mean of those, with a note saying so.
- best value: per column within each dataset (reconstruction, generation) or within each column
  (ablation: which value is best for one method), compared on the displayed (rounded) values so that
  ties are all marked; only marked when at least two cells of the group have a value; never for
  trivial baselines or "info" metrics such as the rate.
- metrics.csv must hold one row per (run, metric); the split is reported in the protocol notes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..convergence import METRIC as CONVERGENCE_METRIC
from ..errors import DataError
from .. import layout
from ..layout import LADDER_PREFIX, variant_name
from ..results_schema import (SR_BICUBIC, ABLATION_METRICS, BASELINE_METHOD, METRICS, REQUIRED_COLUMNS,
                              SIGMA2_SWEEP_PARAM, STATUSES, TRIVIAL_BASELINES)

NO_RESULTS = "no results"
# Row notes that belong to one cell (a footnote there), not to the protocol of the whole column.
CELL_NOTE_PREFIX = "outside the blur ladder"


def load_metrics(path: Path):
    """metrics.csv as a DataFrame of strings plus a float `value`; malformed files raise DataError."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; run the aggregate rule first")
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(f"{path} lacks the column(s) {', '.join(missing)}; "
                        f"expected the columns {', '.join(REQUIRED_COLUMNS)}")
    bad = sorted(set(df["status"]) - set(STATUSES))
    if bad:
        raise DataError(f"{path}: column 'status' has {bad}; expected 'ok' or 'unavailable'")
    dup = df[df.duplicated(["run_id", "metric"], keep=False)]
    if len(dup):
        row = dup.iloc[0]
        raise DataError(f"{path}: {len(dup)} rows share run '{row['run_id']}' and metric "
                        f"'{row['metric']}' (splits: {', '.join(sorted(set(dup['split'])))}); "
                        "tables expect one row per run and metric")
    df["value"] = pd.to_numeric(df["value"].replace("", np.nan), errors="coerce")
    return df


def _summarize_cell(rows) -> dict:
    """Mean/std over the available seeds of one cell, and why the others are missing."""
    if len(rows) == 0:
        return {"mean": np.nan, "std": np.nan, "seeds_ok": 0, "seeds_total": 0, "reason": NO_RESULTS}
    finite = np.isfinite(rows["value"].to_numpy(dtype=float))
    ok_mask = (rows["status"].to_numpy() == "ok") & finite
    values = rows["value"].to_numpy(dtype=float)[ok_mask]
    reasons = []
    for (_, row), good in zip(rows.iterrows(), ok_mask):
        if good:
            continue
        if row["status"] == "ok":
            text = f"non-finite value in {layout.METRICS}"
        else:
            text = row["reason"] or "unavailable (no reason recorded)"
        if text not in reasons:
            reasons.append(text)
    reason = "; ".join(reasons)
    if len(values) and reasons:
        reason = f"mean of {len(values)} of {len(rows)} seeds; the others: {reason}"
    cell_notes = [n for n in dict.fromkeys(rows["note"][ok_mask]) if n.startswith(CELL_NOTE_PREFIX)]
    reason = "; ".join([reason] * bool(reason) + cell_notes)
    return {"mean": float(values.mean()) if len(values) else np.nan,
            "std": float(values.std(ddof=1)) if len(values) >= 2 else np.nan,
            "seeds_ok": int(len(values)), "seeds_total": int(len(rows)), "reason": reason}


def main_summary(df, main: dict, metrics: list[str]):
    """One row per (dataset, method, metric) of the main runs (variant == method), config order."""
    import pandas as pd

    out = []
    sel = df[df["variant"] == df["method"]]
    for dataset in main["datasets"]:
        for method in main["methods"]:
            runs = sel[(sel["dataset"] == dataset) & (sel["method"] == method)]
            for metric in metrics:
                cell = _summarize_cell(runs[runs["metric"] == metric])
                out.append({"dataset": dataset, "method": method, "metric": metric, **cell})
    return pd.DataFrame(out)


def baseline_summary(df, datasets: list[str], metrics: list[str], names: tuple | None = None):
    """One row per (dataset, baseline, metric): trivial baselines, then the blur ladder by σ (or the
    baselines `names`, in that order, e.g. the SR task's)."""
    import pandas as pd

    out = []
    sel = df[df["method"] == BASELINE_METHOD]
    for dataset in datasets:
        part = sel[sel["dataset"] == dataset]
        present = set(part["variant"])
        if names is None:
            chosen = [n for n in TRIVIAL_BASELINES if n in present]
            chosen += sorted((v for v in present if v.startswith(LADDER_PREFIX)),
                             key=lambda v: float(v[len(LADDER_PREFIX):]))
        else:
            chosen = [n for n in names if n in present]
        for name in chosen:
            rows = part[part["variant"] == name]
            for metric in metrics:
                cell = _summarize_cell(rows[rows["metric"] == metric])
                out.append({"dataset": dataset, "method": name, "metric": metric, **cell})
    return pd.DataFrame(out, columns=["dataset", "method", "metric", "mean", "std", "seeds_ok",
                                      "seeds_total", "reason"])


def adequacy(df, min_gain_db: float, floor_sigma: float | None = None, threshold_db: float | None = None,
             over_bicubic: dict | None = None):
    """Per trained run: its PSNR, the better trivial baseline's, the margin and whether it is
    undertrained (margin < `min_gain_db`); with `floor_sigma`, the PSNR of the blur-ladder row of
    that σ (the fidelity floor: reconstructions at least as accurate as the input blurred by σ) and
    whether the run is below it; with `threshold_db`, its dataset and method's convergence gain (a
    longer budget's monitor-PSNR gain, `blurbench.convergence`) and whether it reaches the
    threshold (not converged). A run of a method in `over_bicubic` (the SR and flows tasks': method ->
    its threshold, `tasks_over_bicubic`) is measured over bicubic upsampling of its LR input instead.
    Runs or datasets without the numbers are left out."""
    import pandas as pd

    gains = df[(df["metric"] == CONVERGENCE_METRIC) & (df["status"] == "ok")]
    gain_of = {(r.dataset, r.method): float(r.value) for r in gains.itertuples()}

    psnr = df[(df["metric"] == "psnr") & (df["status"] == "ok")]
    trivial = psnr[(psnr["method"] == BASELINE_METHOD) & psnr["variant"].isin(TRIVIAL_BASELINES)]
    floor_rows = psnr[(psnr["method"] == BASELINE_METHOD)
                      & (psnr["variant"] == (layout.ladder_variant(floor_sigma) if floor_sigma else None))]
    bicubic = psnr[(psnr["method"] == BASELINE_METHOD) & (psnr["variant"] == SR_BICUBIC)]
    over_bicubic = over_bicubic or {}
    out = []
    for _, run in psnr[psnr["method"] != BASELINE_METHOD].iterrows():
        is_sr = run["method"] in over_bicubic
        base = (bicubic if is_sr else trivial)
        base = base[base["dataset"] == run["dataset"]]
        if not len(base):
            continue
        best = base.loc[base["value"].idxmax()]
        margin = run["value"] - best["value"]
        needed = over_bicubic[run["method"]] if is_sr else min_gain_db
        floor = floor_rows[floor_rows["dataset"] == run["dataset"]]["value"]
        floor_psnr = float(floor.iloc[0]) if len(floor) else np.nan
        out.append({"run_id": run["run_id"], "dataset": run["dataset"], "method": run["method"],
                    "variant": run["variant"], "seed": run["seed"], "psnr": run["value"],
                    "best_baseline": best["variant"], "baseline_psnr": best["value"],
                    "margin_db": margin, "undertrained": bool(margin < needed),
                    "floor_sigma": floor_sigma if len(floor) else np.nan, "floor_psnr": floor_psnr,
                    "below_floor": bool(run["value"] < floor_psnr)})
        gain = gain_of.get((run["dataset"], run["method"]), np.nan) if run["variant"] == run["method"] else np.nan
        out[-1].update(convergence_gain_db=gain,
                       unconverged=bool(threshold_db is not None and gain >= threshold_db))
    return pd.DataFrame(out, columns=["run_id", "dataset", "method", "variant", "seed", "psnr",
                                      "best_baseline", "baseline_psnr", "margin_db", "undertrained",
                                      "floor_sigma", "floor_psnr", "below_floor", "convergence_gain_db",
                                      "unconverged"])


def tasks_over_bicubic(experiments: dict) -> dict:
    """Method -> adequacy threshold over bicubic, for the SR and flows tasks' methods (×4 SR gains a
    few dB over bicubic, not the VAE's margin over a constant image)."""
    return {m: exp["min_gain_db"] for name in ("sr", "flows") if (exp := experiments.get(name))
            for m in exp["methods"]}


def floor_misses(table, method: str) -> list[str]:
    """One line per dataset whose `method` model (mean PSNR over seeds, main variant) is below the
    fidelity floor of `adequacy`, naming the dataset and both numbers."""
    runs = table[(table["variant"] == method) & table["floor_psnr"].notna()]
    out = []
    for dataset, part in runs.groupby("dataset", sort=True):
        psnr, floor = part["psnr"].mean(), part["floor_psnr"].iloc[0]
        if psnr < floor:
            out.append(f"{dataset}: {method} PSNR {psnr:.2f} dB is below the fidelity floor, the "
                       f"σ = {part['floor_sigma'].iloc[0]:g} px blur-ladder row's {floor:.2f} dB")
    return out


def undertrained_note(runs, min_gain_db: float) -> str:
    """The footnote of a table cell whose runs (rows of `adequacy`) include undertrained ones."""
    bad = runs[runs["undertrained"]]
    parts = [f"seed {r.seed}: PSNR {r.psnr:.2f} dB, {r.margin_db:+.2f} dB over "
             f"{r.best_baseline.replace('_', ' ')} ({r.baseline_psnr:.2f} dB)" for r in bad.itertuples()]
    return (f"undertrained (less than {min_gain_db:g} dB above the best trivial baseline): "
            + "; ".join(parts))


def unconverged_note(runs, threshold_db: float) -> str:
    """The footnote of a table cell whose dataset and method did not converge (rows of `adequacy`)."""
    gain = runs["convergence_gain_db"].iloc[0]
    return (f"not converged: training for longer gains {gain:+.2f} dB of monitor PSNR "
            f"(threshold {threshold_db:g} dB)")


def ablation_rows(df, name: str, ablation: dict):
    """The metrics.csv rows of one ablation, with a float column `point` = the swept value.

    A point is the run whose variant is `<method>__<tag><value>`, or the main run (variant ==
    method) when the value is the method's configured one; the swept column must equal the value.
    """
    import pandas as pd

    param, tag = ablation["param"], ablation.get("tag", name)
    if param not in df.columns:
        raise DataError(f"{layout.METRICS} lacks the column '{param}' swept by ablation '{name}'")
    swept = pd.to_numeric(df[param], errors="coerce").to_numpy(dtype=float)
    keep = np.zeros(len(df), dtype=bool)
    point = np.full(len(df), np.nan)
    for method in ablation["methods"]:
        for value in ablation["values"]:
            variants = {method, variant_name(method, tag, value)}
            hit = ((df["dataset"] == ablation["dataset"]) & (df["method"] == method)
                   & df["variant"].isin(variants)).to_numpy() & np.isclose(swept, float(value))
            keep |= hit
            point[hit] = float(value)
    out = df[keep].copy()
    out["point"] = point[keep]
    return out


def ablation_summary(df, name: str, ablation: dict, metrics: list[str] = ABLATION_METRICS):
    """One row per (value, method, metric) of one ablation, config order."""
    import pandas as pd

    rows = ablation_rows(df, name, ablation)
    out = []
    for value in ablation["values"]:
        for method in ablation["methods"]:
            runs = rows[(rows["method"] == method) & np.isclose(rows["point"], float(value))]
            for metric in metrics:
                cell = _summarize_cell(runs[runs["metric"] == metric])
                out.append({"dataset": ablation["dataset"], "method": method, "param": ablation["param"],
                            "value": value, "metric": metric, **cell})
    return pd.DataFrame(out)


def display(value: float, decimals: int) -> str:
    """A mean as the tables show it: `decimals` places, or two significant digits when it is smaller
    than the last place (a projection's LR error of 1e-30 is not 0.00); bold compares these."""
    return f"{value:.1e}" if 0 < abs(value) < 10 ** -decimals else f"{value:.{decimals}f}"


def mark_best(summary, group_cols: list[str]):
    """Add a boolean `best` column: best rounded mean per metric within each group (≥ 2 values)."""
    summary = summary.copy()
    summary["best"] = False
    for _, idx in summary.groupby(group_cols + ["metric"], sort=False).groups.items():
        part = summary.loc[idx]
        metric = part["metric"].iloc[0]
        direction, decimals = METRICS[metric].direction, METRICS[metric].decimals
        if direction == "info":
            continue
        means = part["mean"].dropna()
        if len(means) < 2:
            continue
        shown = means.map(lambda v: float(display(v, decimals)))
        score = {"min": shown, "max": -shown, "one": (shown - 1).abs().round(decimals)}[direction]
        summary.loc[score[score == score.min()].index, "best"] = True
    return summary


def sweep_ablations(ablations: dict) -> dict:
    """The ablations that sweep L2's σ² (name -> ablation): the control curve of each dataset."""
    return {n: a for n, a in (ablations or {}).items() if a["param"] == SIGMA2_SWEEP_PARAM}


def controls_summary(df, dataset: str, sweep: dict, metrics: list[str]):
    """One row per (variant, metric) on `dataset`: the σ² sweep (role 'sweep', with its divisor g)
    first, then every other trained variant (role 'point')."""
    import pandas as pd

    runs = df[(df["dataset"] == dataset) & (df["method"] != BASELINE_METHOD)]
    tag = sweep.get("tag")
    sweep_variants = {}
    for method in sweep["methods"]:
        for value in sweep["values"]:
            hit = runs[(runs["method"] == method) & runs["variant"].isin({method, variant_name(method, tag, value)})]
            swept = pd.to_numeric(hit[SIGMA2_SWEEP_PARAM], errors="coerce") if SIGMA2_SWEEP_PARAM in hit else None
            if swept is not None:
                hit = hit[np.isclose(swept, float(value))]
            for v in dict.fromkeys(hit["variant"]):
                sweep_variants[v] = float(value)
    others = [v for v in dict.fromkeys(runs["variant"]) if v not in sweep_variants]
    out = []
    for variant in [*sweep_variants, *others]:
        part = runs[runs["variant"] == variant]
        for metric in metrics:
            cell = _summarize_cell(part[part["metric"] == metric])
            out.append({"dataset": dataset, "variant": variant, "method": part["method"].iloc[0],
                        "role": "sweep" if variant in sweep_variants else "point",
                        "g": sweep_variants.get(variant, np.nan), "metric": metric, **cell})
    return pd.DataFrame(out)
