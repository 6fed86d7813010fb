"""The paper's tables from `results/metrics.csv`: reconstruction (with the trivial baselines and the
blur ladder), generation, one per ablation, and the adequacy check.

`summaries` turns metrics.csv into per-cell summaries (mean ± std over seeds, best marking);
`render` writes a `Table` as Markdown, LaTeX, HTML and CSV. This module builds the tables.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..layout import METRICS as METRICS_CSV, format_value
from ..results_schema import (ABLATION_METRICS, BASELINE_METHOD, BASELINE_METRICS, COMPARISON_METRICS,
                              CONTROL_METRICS, FID_MIN_N, FLOWS_TABLE_METRICS, GEN_METRICS, METRICS, OOD_METRICS,
                              RECON_METRICS, SR_BICUBIC, LR_METRICS, SR_COMPARISON_METRICS, SR_METRICS, SR_PINV,
                              metric_header)
from ..comparison import ADJUSTMENT, NO_VERDICT
from .render import Cell, Footnotes, Table, atomic_write_text, write_table
from .summaries import (CELL_NOTE_PREFIX, ablation_rows, ablation_summary, adequacy, baseline_summary,
                        controls_summary, display, floor_misses, load_metrics, main_summary, mark_best,
                        sweep_ablations,
                        undertrained_note, unconverged_note)

PARAM_LABELS = {"blur.eps": "ε", "kernel.size": "kernel size", "sigma2_divisor": "σ² divisor g",
                "blur.normalize_gain": "normalised gain"}
BASELINE_LABEL = "baseline"
NOT_APPLICABLE = "–"  # a baseline has no model: no rate, no samples
LEGEND = ("Mean ± sample std (ddof = 1) over seeds; a value without ± comes from one seed. "
          "Bold: best {scope} (↓ lower is better, ↑ higher is better, →1 closest to 1).")


def param_label(param: str) -> str:
    return PARAM_LABELS.get(param, param)


def _value_cell(cell: dict, metric: str, notes: Footnotes, *extra_notes: str) -> Cell:
    decimals = METRICS[metric].decimals
    numbers = notes.numbers(cell["reason"], *extra_notes)
    if np.isnan(cell["mean"]):
        return Cell("n/a", notes=numbers)
    text = display(cell["mean"], decimals)
    if not np.isnan(cell["std"]):
        text += f" ± {display(cell['std'], decimals)}"
    return Cell(text, best=bool(cell.get("best", False)), notes=numbers)


def _fmt_n(values) -> str:
    nums = sorted({int(float(v)) if float(v).is_integer() else float(v) for v in values if v != ""})
    return "/".join(str(v) for v in nums) if nums else "not recorded"


def protocol_notes(rows, metrics: list[str], datasets: list[str]) -> list[str]:
    """One line per group of metrics sharing a protocol: implementation, weights, split, N."""
    groups: dict[tuple, list[str]] = {}
    ok = rows[rows["status"] == "ok"]
    for metric in metrics:
        part = ok[ok["metric"] == metric]
        if not len(part):
            continue
        impl = [" ".join(x for x in pair if x)
                for pair in dict.fromkeys(zip(part["implementation"], part["version"])) if any(pair)]
        fields = ["/".join(impl)] if impl else []
        for col, prefix in (("feature_extractor", "features: "), ("weights_source", "weights: "),
                            ("split", "split: ")):
            vals = [v for v in dict.fromkeys(part[col]) if v]
            if vals:
                fields.append(prefix + " / ".join(vals))
        per_dataset = [(d, _fmt_n(part.loc[part["dataset"] == d, "n"])) for d in datasets
                       if (part["dataset"] == d).any()]
        if len({n for _, n in per_dataset}) == 1:
            fields.append(f"N = {per_dataset[0][1]}")
        else:
            fields.append("N = " + ", ".join(f"{n} ({d})" for d, n in per_dataset))
        extra = ""
        ns = [float(v) for v in part["n"] if v != ""]
        if metric.startswith("fid") and ns and min(ns) < FID_MIN_N:
            extra = (f" N < {FID_MIN_N}: FID is biased upward and not comparable with "
                     "published values.")
        notes = [v for v in dict.fromkeys(part["note"]) if v and not v.startswith(CELL_NOTE_PREFIX)]
        if notes:
            extra += " Note: " + "; ".join(notes) + "."
        groups.setdefault((tuple(fields), extra), []).append(METRICS[metric].label)
    return [f"{', '.join(labels)}: {'; '.join(fields)}.{extra}"
            for (fields, extra), labels in groups.items()]


def _by_key(summary, keys: list[str]) -> dict:
    return {tuple(r[k] for k in keys) + (r["metric"],): r for r in summary.to_dict("records")}


def main_table(df, main: dict, metrics: list[str], name: str, title: str, min_gain_db: float | None = None,
               threshold_db: float | None = None):
    """(Table, summary) with rows dataset × method and one column per metric.

    With `min_gain_db` (the reconstruction table) each dataset's block ends with its trivial
    baselines and blur ladder, set apart, and a method whose runs are undertrained gets a footnote
    on its PSNR giving both numbers; with `threshold_db` (experiments.convergence) so does a method
    that training for longer still improves.
    """
    import pandas as pd

    summary = mark_best(main_summary(df, main, metrics), ["dataset"])
    cells = _by_key(summary, ["dataset", "method"])
    base = baseline_summary(df, main["datasets"], metrics) if min_gain_db is not None else None
    adequate = adequacy(df, min_gain_db, threshold_db=threshold_db) if min_gain_db is not None else None
    notes = Footnotes()
    rows, starts = [], []
    for dataset in main["datasets"]:
        starts.append(len(rows))
        for method in main["methods"]:
            flag = ""
            if adequate is not None:
                runs = adequate[(adequate["dataset"] == dataset) & (adequate["method"] == method)
                                & (adequate["variant"] == method)]
                flag = "; ".join(([undertrained_note(runs, min_gain_db)] if runs["undertrained"].any() else [])
                                 + ([unconverged_note(runs, threshold_db)] if runs["unconverged"].any() else []))
            rows.append([Cell(dataset), Cell(method)]
                        + [_value_cell(cells[(dataset, method, m)], m, notes, flag if m == "psnr" else "")
                           for m in metrics])
        if base is not None and (base["dataset"] == dataset).any():
            starts.append(len(rows))
            bcells = _by_key(base, ["dataset", "method"])
            for b in dict.fromkeys(base.loc[base["dataset"] == dataset, "method"]):
                rows.append([Cell(dataset), Cell(f"{BASELINE_LABEL}: {b}")]
                            + [_value_cell(bcells[(dataset, b, m)], m, notes) if m in BASELINE_METRICS
                               else Cell(NOT_APPLICABLE) for m in metrics])
    used = df[(df["variant"] == df["method"]) & df["dataset"].isin(main["datasets"])
              & df["method"].isin(main["methods"])]
    legend = LEGEND.format(scope="per dataset and column")
    if base is not None:
        legend += (f" Rows '{BASELINE_LABEL}: …' are not models: the training-set mean image, each test "
                   "image's own mean colour, and the test images blurred by a Gaussian of σ px, scored "
                   f"by the same code; a method less than {min_gain_db:g} dB above the better trivial "
                   "baseline's PSNR is marked undertrained.")
        legend += (f" Convergence checked: a method whose run gains {threshold_db:g} dB or more of held-out "
                   "PSNR when trained longer is footnoted." if threshold_db is not None else
                   " Convergence not checked (no experiments.convergence): a demonstration, not evidence.")
        summary = pd.concat([summary, base.assign(best=False)], ignore_index=True)
    table = Table(name=name, title=title, header=["Dataset", "Method"] + [metric_header(m) for m in metrics],
                  rows=rows, n_keys=2, group_starts=starts, legend=legend, footnotes=notes.texts,
                  protocol=protocol_notes(used, metrics, main["datasets"]))
    return table, summary


def ablation_table(df, name: str, ablation: dict, metrics: list[str] = ABLATION_METRICS):
    """(Table, summary) with one row per swept value and, per metric, one column per method."""
    summary = mark_best(ablation_summary(df, name, ablation, metrics), ["method"])
    cells = _by_key(summary, ["value", "method"])
    notes = Footnotes()
    methods = ablation["methods"]
    rows = []
    for value in ablation["values"]:
        row = [Cell(format_value(value))]
        for metric in metrics:
            row += [_value_cell(cells[(value, method, metric)], metric, notes) for method in methods]
        rows.append(row)
    label = param_label(ablation["param"])
    header = [label] + [f"{metric_header(m)} ({method})" for m in metrics for method in methods]
    groups = [("", 1)] + [(metric_header(m), len(methods)) for m in metrics]
    subheader = [label] + [method for _ in metrics for method in methods]
    return Table(name=f"ablation_{name}",
                 title=f"Ablation of {label} ({ablation['param']}) on {ablation['dataset']}",
                 header=header, rows=rows, n_keys=1, header_groups=groups, subheader=subheader,
                 legend=LEGEND.format(scope="per column, i.e. per method over the values"),
                 footnotes=notes.texts,
                 protocol=protocol_notes(ablation_rows(df, name, ablation), metrics,
                                         [ablation["dataset"]])), summary


def controls_table(df, ablations: dict):
    """(Table, summary): per dataset with an L2 σ² sweep, the sweep's points and every other run's,
    on the rate axis: a method whose sharpness lies above the sweep's curve at equal rate is more
    than a change of effective β."""
    import pandas as pd

    notes = Footnotes()
    rows, starts, parts = [], [], []
    for sweep in sweep_ablations(ablations).values():
        summary = controls_summary(df, sweep["dataset"], sweep, CONTROL_METRICS)
        parts.append(summary)
        cells = _by_key(summary, ["variant"])
        starts.append(len(rows))
        for variant in dict.fromkeys(summary["variant"]):
            first = cells[(variant, CONTROL_METRICS[0])]
            role, g = first["role"], first["g"]
            label = f"{variant} (L2 at σ²/{format_value(g)})" if role == "sweep" else variant
            rows.append([Cell(sweep["dataset"]), Cell(label)]
                        + [_value_cell(cells[(variant, m)], m, notes) for m in CONTROL_METRICS])
    summary = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    legend = ("L2 at σ²/g for each g of the sweep, then every other run on the dataset. 'precision gain' is "
              "the weight on a white reconstruction error relative to L2 at model.sigma2 at the end of "
              "training (⟨|W|²⟩ of the blur term, g of an L2 run): a blur-Wiener run that is sharper than L2 "
              "only where L2 with the same gain or rate is equally sharp shows a change of effective β, not "
              "of spectral shape. Figure rate_<dataset> draws the same numbers. Mean ± std over seeds.")
    used = df[df["dataset"].isin([a["dataset"] for a in sweep_ablations(ablations).values()])
              & (df["method"] != BASELINE_METHOD)]
    table = Table(name="controls", title="Controls: sharpness against rate, and the L2 σ² sweep",
                  header=["Dataset", "Run"] + [metric_header(m) for m in CONTROL_METRICS], rows=rows,
                  n_keys=2, group_starts=starts, legend=legend, footnotes=notes.texts,
                  protocol=protocol_notes(used, CONTROL_METRICS, sorted(set(used["dataset"]))))
    return table, summary


VERDICT_MARKS = {"better": "better", "worse": "worse", "no detectable difference": "n.d.", NO_VERDICT: ""}


def _comparison_cell(c: dict, metric: str, notes: Footnotes) -> Cell:
    """diff [lo, hi] and the adjusted verdict; footnotes for the cell's notes, a raw verdict that
    the adjustment removed, and a verdict within Monte-Carlo error of its threshold."""
    if c is None:
        return Cell("n/a", notes=notes.numbers("no results"))
    if not np.isfinite(c["diff"]):
        return Cell("n/a", notes=notes.numbers(c["reason"]))
    d = METRICS[metric].decimals + 1  # differences are small: one decimal more than the tables
    text = f"{c['diff']:+.{d}f}"
    if np.isfinite(c["lo"]):
        text += f" [{c['lo']:+.{d}f}, {c['hi']:+.{d}f}]"
    text = f"{text} {VERDICT_MARKS[c['verdict']]}".strip()
    extra = [c["note"]]
    if c["verdict_raw"] in ("better", "worse") and c["verdict"] != c["verdict_raw"]:
        extra.append(f"{c['verdict_raw']} before the multiplicity adjustment (interval excludes 0; "
                     f"adjusted p = {c['p_adjusted']:.3g})")
    if c["fragile"] in (True, "True"):
        extra.append("verdict within 2 Monte-Carlo SE of its threshold: it may change with the resampling seed")
    return Cell(text, best=c["verdict"] == "better", notes=notes.numbers(*extra))


def comparison_table(comparison, main: dict, name: str = "comparison") -> Table:
    """Rows dataset × metric, a column per method: method − reference, interval, adjusted verdict."""
    notes = Footnotes()
    metrics = list(dict.fromkeys(comparison["metric"])) or list(COMPARISON_METRICS)
    cells = {(r["dataset"], r["method"], r["metric"]): r for r in comparison.to_dict("records")}
    reference = main["reference"]
    methods = [m for m in main["methods"] if m != reference]
    rows, starts = [], []
    for dataset in main["datasets"]:
        starts.append(len(rows))
        for metric in metrics:
            rows.append([Cell(dataset), Cell(metric_header(metric))]
                        + [_comparison_cell(cells.get((dataset, m, metric)), metric, notes) for m in methods])
    ok = comparison[comparison["ci"].astype(str) != ""]
    by_ci: dict[str, list[str]] = {}
    for m, ci in dict.fromkeys(zip(ok["metric"], ok["ci"])):
        by_ci.setdefault(ci, []).append(METRICS[m].label)
    protocol = [f"{', '.join(labels)}: {ci}." for ci, labels in by_ci.items()]
    covers = sorted(set(ok["covers"].astype(str)) - {""})
    if covers:
        protocol.append("What an interval covers: " + "; ".join(covers) + (
            ". With one seed it covers the variation of the test images (or prior draws) for that one "
            "trained model, not seed-to-seed variation." if covers == ["test images"] or "seeds" not in " ".join(covers)
            else "."))

    protocol.append(f"Verdicts adjusted by {ADJUSTMENT} over every cell with a verdict; comparison.csv keeps "
                    "the raw p-value, the adjusted one and the unadjusted verdict (verdict_raw).")
    level = f"{100 * comparison['level'].iloc[0]:g}%" if len(comparison) else "95%"
    legend = (f"Each cell: method − {reference} on the same test images (samples: the same prior draws), "
              f"[{level} interval], and the adjusted verdict by the metric's direction (↓ lower is better, "
              "↑ higher is better, →1 closest to 1: the cell is the difference of −|value − 1|): better "
              "(bold), worse, or n.d. = no detectable difference; no word = no verdict (a diagnostic, or "
              "too few images: see the footnote).")
    return Table(name=name, title=f"Paired differences against {reference}",
                 header=["Dataset", "Metric"] + methods, rows=rows, n_keys=2,
                 group_starts=starts, legend=legend, footnotes=notes.texts, protocol=protocol)


COMPARISONS = {"comparison": COMPARISON_METRICS, "comparison_sr": SR_COMPARISON_METRICS}  # name -> its metrics
# The flows task's comparison: artifact rates per condition set (`comparison.compare_flows`), not metrics.csv cells.
FLOWS_COMPARISON = "comparison_flows"


def write_comparison(files: dict, main: dict, out_dir: Path, n_boot: int, n_boot_set: int,
                     name: str = "comparison") -> list[Path]:
    """results/tables/<name>.{csv,md,tex,html}: `comparison` of the VAE task, `comparison_sr` of the SR
    task (`files`: see `comparison.compare`; `main`: the experiment's datasets, methods, reference)."""
    from ..comparison import compare, compare_flows

    if name == FLOWS_COMPARISON:
        comparison = compare_flows(files, main["reference"], n_boot)
        table = comparison_table(comparison, main, name)
        table.legend += (" Here each cell is an artifact rate per condition set: per LR input the fraction of its "
                         "K samples with an artifact (unclamped), paired by input and latent draws across couplings "
                         "of a seed (the flows table's legend defines the sets).")
    else:
        comparison = compare(files, main["reference"], n_boot, n_boot_set, COMPARISONS[name])
        table = comparison_table(comparison, main, name)
    return write_table(table, comparison, out_dir)


def sr_table(df, sr: dict):
    """(Table, summary) of the SR task: rows dataset × SR method, then A⁺y and bicubic, then (on the
    datasets of `sr["paper_rows"]`) Sønderby et al.'s reported numbers, labelled as the paper's."""
    import pandas as pd

    from ..sr import paper

    summary = mark_best(main_summary(df, sr, SR_METRICS), ["dataset"])
    cells = _by_key(summary, ["dataset", "method"])
    base = baseline_summary(df, sr["datasets"], SR_METRICS, names=(SR_PINV, SR_BICUBIC))
    bcells = _by_key(base, ["dataset", "method"])
    notes = Footnotes()
    rows, starts = [], []
    for dataset in sr["datasets"]:
        starts.append(len(rows))
        rows += [[Cell(dataset), Cell(m)] + [_value_cell(cells[(dataset, m, k)], k, notes) for k in SR_METRICS]
                 for m in sr["methods"]]
        starts.append(len(rows))
        rows += [[Cell(dataset), Cell(f"{BASELINE_LABEL}: {b}")]
                 + [Cell(NOT_APPLICABLE) if k in LR_METRICS else _value_cell(bcells[(dataset, b, k)], k, notes)
                    for k in SR_METRICS]
                 for b in (SR_PINV, SR_BICUBIC) if (dataset, b, "psnr") in bcells]
        if dataset in sr.get("paper_rows", []):
            starts.append(len(rows))
            rows += [[Cell(dataset), Cell(f"paper: {m}")]
                     + [Cell(f"{v:.2e}" if k == "lr_mse" else f"{v:.2f}") if (v := reported.get(k)) is not None
                        else Cell(NOT_APPLICABLE) for k in SR_METRICS]
                     for m, reported in paper.TABLE2.items()]
    used = df[(df["variant"] == df["method"]) & df["dataset"].isin(sr["datasets"]) & df["method"].isin(sr["methods"])]
    legend = (LEGEND.format(scope="per dataset and column") + f" Degradation y = A x ({sr['operator']['name']}, "
              f"×{sr['operator']['factor']}); LR MSE = ‖A x̂ − y‖²/n over LR pixels and LR rel. error = "
              "‖A x̂ − y‖²/‖y‖², before clamping, in float64 (a projection's is round-off). Rows "
              f"'{BASELINE_LABEL}: sr_pinv' (A⁺y) and 'sr_bicubic' (bicubic upsampling of y) are not models; a "
              f"method less than {sr['min_gain_db']:g} dB above bicubic's PSNR is undertrained (the adequacy table). "
              f"Rows 'paper: …' are {paper.SOURCE}, not ours.")
    table = Table(name="sr", title="Super-resolution (test images from their LR versions)",
                  header=["Dataset", "Method"] + [metric_header(m) for m in SR_METRICS], rows=rows, n_keys=2,
                  group_starts=starts, legend=legend, footnotes=notes.texts,
                  protocol=protocol_notes(used, SR_METRICS, sr["datasets"]))
    return table, pd.concat([summary, base.assign(best=False)], ignore_index=True)


FLOWS_LEGEND = (
    " Each run draws K = {k} samples per LR input at temperature {t:g} (z ∼ N(0, T² I)); PSNR, SSIM and LPIPS "
    "are of the sample mean (the K samples, each clamped to [0, 1], averaged), 'PSNR (1 sample)' of the first "
    "sample, clamped; diversity is the per-pixel std across the K samples. NLL: bits per null-space dimension "
    "of the test images (bins of 1/256). Artifacts (Hong et al.'s criterion, on the unclamped samples): the "
    "fraction of samples with a pixel > 1.5, < −0.5 or non-finite, on the test split's LR inputs (in "
    "distribution) and on condition sets built from them: noise σ (Gaussian noise added), contrast k (scaled "
    "about each image's mean), inverted (1 − y), other dataset (that dataset's test images, area-resized to "
    "the LR size, grey ↔ RGB converted), constant (each image's mean colour), saturated (thresholded at 0.5); "
    "none clamped; each set from {ood_images}. A flow's samples satisfy A x̂ = y, so an LR input already outside "
    "the bounds forces an artifact whatever the coupling (each row's note in {metrics} says how many inputs of the "
    "set are). {reference} is the reference of comparison_flows (each coupling's artifact rate − "
    "its, paired).")


def flows_tables(df, flows: dict) -> list[tuple[Table, object]]:
    """(Table, summary) of the flows table (rows dataset × flow method: NLL, quality of the sample mean
    and of one sample, diversity, the artifact rate per condition set) and of flows_ood (the OOD score
    against artifacts)."""
    flows_table, flows_summary = main_table(df, flows, FLOWS_TABLE_METRICS, "flows",
                                            "Conditional flows for ×4 SR: likelihood, samples and artifacts")
    flows_table.legend += FLOWS_LEGEND.format(k=flows["n_samples"], t=flows["temperature"],
                                              reference=flows["reference"],
                                              metrics=METRICS_CSV, ood_images=(
                                                  f"the first {flows['n_ood_images']} test images"
                                                  if flows.get("n_ood_images") else "every test image"))
    ood_table, ood_summary = main_table(df, flows, OOD_METRICS, "flows_ood",
                                        "Conditional flows: does the OOD score predict an artifact?")
    ood_table.legend += (
        " Score: the Mahalanobis distance of the LR conditioner's pooled features of an input from those of "
        "training LR inputs (Ledoit–Wolf shrunk covariance), against 'any of the input's K samples has an "
        "artifact', every condition set's inputs pooled (in distribution and each set of the flows table): "
        "AUROC (0.5: chance) and Spearman ρ, n/a when no input (or every input) produced an artifact; 'inputs "
        "with an artifact' counts them, of the N in the protocol notes.")
    return [(flows_table, flows_summary), (ood_table, ood_summary)]


def table_names(ablations: dict, sr: dict | None = None, main: dict | None = None,
                flows: dict | None = None) -> list[str]:
    """File stems the tables rule writes (each as .csv, .md, .tex, .html); no VAE tables without `main`."""
    return (["reconstruction", "generation"] * bool(main) + [f"ablation_{n}" for n in ablations]
            + ["controls"] * bool(sweep_ablations(ablations)) + ["sr"] * bool(sr)
            + ["flows", "flows_ood"] * bool(flows))


def build_tables(df, ablations: dict, main: dict | None, min_gain_db: float = 3.0,
                 threshold_db: float | None = None, sr: dict | None = None,
                 flows: dict | None = None) -> list[tuple[Table, object]]:
    """All (Table, summary) pairs in `table_names` order, from the rows `load_metrics` gives."""
    out = [main_table(df, main, RECON_METRICS, "reconstruction", "Reconstruction (test images, z = μ(x))",
                      min_gain_db=min_gain_db, threshold_db=threshold_db),
           main_table(df, main, GEN_METRICS, "generation", "Generation (decoder samples, z ∼ N(0, I))")] if main else []
    out += [ablation_table(df, name, abl) for name, abl in (ablations or {}).items()]
    if sweep_ablations(ablations):
        out.append(controls_table(df, ablations))
    if sr:
        out.append(sr_table(df, sr))
    if flows:
        out += flows_tables(df, flows)
    return out


def write_adequacy(df, out: Path, min_gain_db: float, floor_sigma: float, reference: str,
                   threshold_db: float | None = None,
                   over_bicubic: dict | None = None) -> tuple[list[str], list[str], list[str]]:
    """Write every run's margin over the trivial baselines, its place against the fidelity floor and
    its convergence (CSV); return the undertrained run ids, the datasets whose `reference` model
    misses the floor, and the unconverged run ids."""
    table = adequacy(df, min_gain_db, floor_sigma, threshold_db, over_bicubic)
    atomic_write_text(out, table.to_csv(index=False, float_format="%.4f"))
    return (list(table.loc[table["undertrained"], "run_id"]), floor_misses(table, reference),
            list(table.loc[table["unconverged"], "run_id"]))


def write_tables(df, out_dir: Path, ablations: dict, main: dict | None, min_gain_db: float = 3.0,
                 threshold_db: float | None = None, sr: dict | None = None, flows: dict | None = None) -> list[Path]:
    """Write every table as CSV, Markdown, LaTeX and HTML into `out_dir`; return the paths."""
    paths = []
    for table, summary in build_tables(df, ablations, main, min_gain_db, threshold_db, sr, flows):
        paths += write_table(table, summary, out_dir)
    return paths
