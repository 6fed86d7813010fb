"""The paper's tables from `results/metrics.csv`: reconstruction, generation and one per ablation.

Each table is one `Table` (cells + footnotes + protocol notes) rendered four ways: Markdown, LaTeX
(booktabs), HTML (what the Snakemake report embeds) and a CSV that keeps full precision (long format:
one row per table cell with mean, std, seed counts, best flag and reason).

Decisions (documented here, shown in every table's legend):
- mean ± sample std (ddof = 1) over the seeds whose value is available; with one seed only the mean
  is shown (a std of one value would be a fake number).
- a cell with no available seed is "n/a" with a numbered footnote giving the reason(s); a method
  or ablation point of the config without any row in metrics.csv gets the reason "no results".
- a cell where only some seeds are available shows the mean of those, with a footnote saying so.
- best value: per column within each dataset (reconstruction, generation) or within each column
  (ablation: which value is best for one method), compared on the displayed (rounded) values so that
  ties are all marked; only marked when at least two cells of the group have a value.
- metrics.csv must hold one row per (run, metric); the split is reported in the protocol notes.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DataError

# Display name, direction ("min": lower is better, "max": higher, "one": closest to 1), decimals.
METRICS = {
    "mse": ("MSE", "min", 4),
    "psnr": ("PSNR", "max", 2),
    "ssim": ("SSIM", "max", 3),
    "lpips": ("LPIPS", "min", 3),
    "fid_recon": ("FID-recon", "min", 1),
    "hfer_recon": ("HFER", "one", 3),
    "fid_gen": ("FID-gen", "min", 1),
    "hfer_gen": ("HFER-gen", "one", 3),
}
ARROWS = {"min": "↓", "max": "↑", "one": "→1"}
RECON_METRICS = ["mse", "psnr", "ssim", "lpips", "fid_recon", "hfer_recon"]
GEN_METRICS = ["fid_gen", "hfer_gen"]
ABLATION_METRICS = ["mse", "psnr", "ssim", "lpips", "fid_recon", "hfer_recon", "fid_gen"]
PARAM_LABELS = {"blur.eps": "ε", "kernel.size": "kernel size"}
FID_MIN_N = 2048
NO_RESULTS = "no results"

REQUIRED_COLUMNS = ["run_id", "dataset", "method", "variant", "seed", "split", "metric", "value",
                    "status", "reason", "n", "implementation", "version", "feature_extractor",
                    "weights_source", "note"]
LEGEND = ("Mean ± sample std (ddof = 1) over seeds; a value without ± comes from one seed. "
          "Bold: best {scope} (↓ lower is better, ↑ higher is better, →1 closest to 1).")


def metric_header(metric: str) -> str:
    label, direction, _ = METRICS[metric]
    return f"{label} {ARROWS[direction]}"


def param_label(param: str) -> str:
    return PARAM_LABELS.get(param, param)


# ----------------------------------------------------------------------------- reading + summary
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
    bad = sorted(set(df["status"]) - {"ok", "unavailable"})
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
            text = "non-finite value in metrics.csv"
        else:
            text = row["reason"] or "unavailable (no reason recorded)"
        if text not in reasons:
            reasons.append(text)
    reason = "; ".join(reasons)
    if len(values) and reasons:
        reason = f"mean of {len(values)} of {len(rows)} seeds; the others: {reason}"
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


def ablation_rows(df, name: str, ablation: dict):
    """The metrics.csv rows of one ablation, with a float column `point` = the swept value.

    A point is the run whose variant is `<method>__<tag><value>`, or the main run (variant ==
    method) when the value is the method's configured one; the swept column must equal the value.
    """
    import pandas as pd

    from .config import format_value

    param, tag = ablation["param"], ablation.get("tag", name)
    if param not in df.columns:
        raise DataError(f"metrics.csv lacks the column '{param}' swept by ablation '{name}'")
    swept = pd.to_numeric(df[param], errors="coerce").to_numpy(dtype=float)
    keep = np.zeros(len(df), dtype=bool)
    point = np.full(len(df), np.nan)
    for method in ablation["methods"]:
        for value in ablation["values"]:
            variants = {method, f"{method}__{tag}{format_value(value)}"}
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


def mark_best(summary, group_cols: list[str]):
    """Add a boolean `best` column: best rounded mean per metric within each group (≥ 2 values)."""
    summary = summary.copy()
    summary["best"] = False
    for _, idx in summary.groupby(group_cols + ["metric"], sort=False).groups.items():
        part = summary.loc[idx]
        metric = part["metric"].iloc[0]
        _, direction, decimals = METRICS[metric]
        means = part["mean"].dropna()
        if len(means) < 2:
            continue
        shown = means.round(decimals)
        score = {"min": shown, "max": -shown, "one": (shown - 1).abs().round(decimals)}[direction]
        summary.loc[score[score == score.min()].index, "best"] = True
    return summary


# ----------------------------------------------------------------------------- table model
@dataclass
class Cell:
    text: str
    best: bool = False
    note: int | None = None  # footnote number


@dataclass
class Table:
    name: str
    title: str
    header: list[str]
    rows: list[list[Cell]]
    n_keys: int  # leading key columns (left-aligned, not numbers)
    group_starts: list[int] = field(default_factory=list)  # row indices that start a block
    header_groups: list[tuple[str, int]] | None = None  # spanning first header row (LaTeX, HTML)
    subheader: list[str] | None = None  # second header row under header_groups (LaTeX, HTML)
    legend: str = ""
    footnotes: list[str] = field(default_factory=list)
    protocol: list[str] = field(default_factory=list)


class _Footnotes:
    """Numbers reasons in order of first use; the same reason always gets the same number."""

    def __init__(self):
        self.texts: list[str] = []

    def number(self, text: str) -> int:
        if text not in self.texts:
            self.texts.append(text)
        return self.texts.index(text) + 1


def _value_cell(cell: dict, metric: str, notes: _Footnotes) -> Cell:
    decimals = METRICS[metric][2]
    note = notes.number(cell["reason"]) if cell["reason"] else None
    if np.isnan(cell["mean"]):
        return Cell("n/a", note=note)
    text = f"{cell['mean']:.{decimals}f}"
    if not np.isnan(cell["std"]):
        text += f" ± {cell['std']:.{decimals}f}"
    return Cell(text, best=bool(cell["best"]), note=note)


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
        notes = [v for v in dict.fromkeys(part["note"]) if v]
        if notes:
            extra += " Note: " + "; ".join(notes) + "."
        groups.setdefault((tuple(fields), extra), []).append(METRICS[metric][0])
    return [f"{', '.join(labels)}: {'; '.join(fields)}.{extra}"
            for (fields, extra), labels in groups.items()]


def _by_key(summary, keys: list[str]) -> dict:
    return {tuple(r[k] for k in keys) + (r["metric"],): r for r in summary.to_dict("records")}


def main_table(df, main: dict, metrics: list[str], name: str, title: str):
    """(Table, summary) with rows dataset × method and one column per metric."""
    summary = mark_best(main_summary(df, main, metrics), ["dataset"])
    cells = _by_key(summary, ["dataset", "method"])
    notes = _Footnotes()
    rows, starts = [], []
    for dataset in main["datasets"]:
        starts.append(len(rows))
        for method in main["methods"]:
            rows.append([Cell(dataset), Cell(method)]
                        + [_value_cell(cells[(dataset, method, m)], m, notes) for m in metrics])
    used = df[(df["variant"] == df["method"]) & df["dataset"].isin(main["datasets"])
              & df["method"].isin(main["methods"])]
    table = Table(name=name, title=title, header=["Dataset", "Method"] + [metric_header(m) for m in metrics],
                  rows=rows, n_keys=2, group_starts=starts,
                  legend=LEGEND.format(scope="per dataset and column"), footnotes=notes.texts,
                  protocol=protocol_notes(used, metrics, main["datasets"]))
    return table, summary


def ablation_table(df, name: str, ablation: dict, metrics: list[str] = ABLATION_METRICS):
    """(Table, summary) with one row per swept value and, per metric, one column per method."""
    from .config import format_value

    summary = mark_best(ablation_summary(df, name, ablation, metrics), ["method"])
    cells = _by_key(summary, ["value", "method"])
    notes = _Footnotes()
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


# ----------------------------------------------------------------------------- renderers
def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_cell(cell: Cell) -> str:
    text = _md_escape(cell.text)
    if cell.best:
        text = f"**{text}**"
    return f"{text} [{cell.note}]" if cell.note else text


def format_markdown(table: Table) -> str:
    """GitHub-flavoured Markdown: title, table, legend, footnotes and protocol as lists."""
    ncols = len(table.header)
    lines = [f"### {table.title}", "",
             "| " + " | ".join(_md_escape(h) for h in table.header) + " |",
             "|" + "|".join([":--"] * table.n_keys + ["--:"] * (ncols - table.n_keys)) + "|"]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    lines += ["", table.legend]
    if table.footnotes:
        lines += ["", "Footnotes:", ""] + [f"- [{i}] {_md_escape(t)}" for i, t in enumerate(table.footnotes, 1)]
    if table.protocol:
        lines += ["", "Protocol:", ""] + [f"- {_md_escape(p)}" for p in table.protocol]
    return "\n".join(lines) + "\n"


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                  "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                  "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"↓": r"$\downarrow$", "↑": r"$\uparrow$", "→": r"$\rightarrow$", "±": r"$\pm$",
                  "ε": r"$\varepsilon$", "σ": r"$\sigma$", "Σ": r"$\Sigma$", "≥": r"$\geq$",
                  "≤": r"$\leq$", "<": r"$<$", ">": r"$>$", "²": r"$^2$", "×": r"$\times$",
                  "μ": r"$\mu$", "∼": r"$\sim$"}


def latex_escape(text: str) -> str:
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)
    return "".join(_LATEX_UNICODE.get(ch, ch) for ch in out)


def _tex_cell(cell: Cell) -> str:
    text = latex_escape(cell.text)
    if cell.best:
        text = rf"\textbf{{{text}}}"
    return f"{text}$^{{{cell.note}}}$" if cell.note else text


def format_latex(table: Table) -> str:
    """A booktabs `table` float; key columns repeat only at the start of a block."""
    ncols = len(table.header)
    lines = [r"\begin{table}[htbp]", r"\centering", rf"\caption{{{latex_escape(table.title)}}}",
             rf"\label{{tab:{table.name}}}",
             r"\begin{tabular}{" + "l" * table.n_keys + "r" * (ncols - table.n_keys) + "}", r"\toprule"]
    header = table.header
    if table.header_groups:
        spans, rules, col = [], [], 1
        for label, span in table.header_groups:
            spans.append(rf"\multicolumn{{{span}}}{{c}}{{{latex_escape(label)}}}" if label else "")
            if label:
                rules.append(rf"\cmidrule(lr){{{col}-{col + span - 1}}}")
            col += span
        lines += [" & ".join(spans) + r" \\", " ".join(rules)]
        header = table.subheader
    lines += [" & ".join(latex_escape(h) for h in header) + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        if i in table.group_starts and i > 0:
            lines.append(r"\midrule")
        show_first = not table.group_starts or i in table.group_starts
        keys = ["" if k == 0 and not show_first else latex_escape(c.text)
                for k, c in enumerate(row[:table.n_keys])]
        lines.append(" & ".join(keys + [_tex_cell(c) for c in row[table.n_keys:]]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\par\smallskip\footnotesize", latex_escape(table.legend) + r"\par"]
    lines += [rf"$^{{{i}}}$~{latex_escape(t)}\par" for i, t in enumerate(table.footnotes, 1)]
    lines += [latex_escape(p) + r"\par" for p in table.protocol]
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def _html_cell(cell: Cell) -> str:
    text = html.escape(cell.text)
    if cell.best:
        text = f"<strong>{text}</strong>"
    if cell.note:
        text += f'<sup><a href="#fn{cell.note}">{cell.note}</a></sup>'
    return f"<td>{text}</td>"


def format_html(table: Table) -> str:
    """A self-contained HTML page (what the Snakemake report embeds)."""
    style = ("body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
             "th,td{padding:.25em .6em;text-align:right;white-space:nowrap}"
             "th{border-bottom:1px solid #000}tr.block td{border-top:1px solid #888}"
             "td.key{text-align:left}caption{font-weight:bold;margin-bottom:.5em}p,li{font-size:90%}")
    head, header = "", table.header
    if table.header_groups:
        head += "<tr>" + "".join(f'<th colspan="{span}">{html.escape(label)}</th>'
                                 for label, span in table.header_groups) + "</tr>"
        header = table.subheader
    head += "<tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"
    body = []
    for i, row in enumerate(table.rows):
        cls = ' class="block"' if i in table.group_starts and i > 0 else ""
        keys = "".join(f'<td class="key">{html.escape(c.text)}</td>' for c in row[:table.n_keys])
        body.append(f"<tr{cls}>{keys}" + "".join(_html_cell(c) for c in row[table.n_keys:]) + "</tr>")
    parts = [f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(table.title)}</title>",
             f"<style>{style}</style></head><body>",
             f"<table><caption>{html.escape(table.title)}</caption><thead>{head}</thead>",
             "<tbody>" + "\n".join(body) + "</tbody></table>", f"<p>{html.escape(table.legend)}</p>"]
    if table.footnotes:
        parts.append("<ol>" + "".join(f'<li id="fn{i}">{html.escape(t)}</li>'
                                      for i, t in enumerate(table.footnotes, 1)) + "</ol>")
    if table.protocol:
        parts.append("<p>Protocol:</p><ul>" + "".join(f"<li>{html.escape(p)}</li>" for p in table.protocol)
                     + "</ul>")
    return "\n".join(parts) + "\n</body></html>\n"


def format_csv(summary) -> str:
    """Long format at full precision; n/a where a mean or std does not exist."""
    return summary.to_csv(index=False, na_rep="n/a", float_format="%.10g")


# ----------------------------------------------------------------------------- writing
def atomic_write_text(path: Path, text: str) -> Path:
    from .atomic import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def table_names(ablations: dict) -> list[str]:
    """File stems the tables rule writes (each as .csv, .md, .tex, .html)."""
    return ["reconstruction", "generation"] + [f"ablation_{n}" for n in ablations]


def write_table(table: Table, summary, out_dir: Path) -> list[Path]:
    out_dir = Path(out_dir)
    return [atomic_write_text(out_dir / f"{table.name}.csv", format_csv(summary)),
            atomic_write_text(out_dir / f"{table.name}.md", format_markdown(table)),
            atomic_write_text(out_dir / f"{table.name}.tex", format_latex(table)),
            atomic_write_text(out_dir / f"{table.name}.html", format_html(table))]


def build_tables(metrics_csv: Path, ablations: dict, main: dict) -> list[tuple[Table, object]]:
    """All (Table, summary) pairs in `table_names` order."""
    df = load_metrics(metrics_csv)
    out = [main_table(df, main, RECON_METRICS, "reconstruction", "Reconstruction (test images, z = μ(x))"),
           main_table(df, main, GEN_METRICS, "generation", "Generation (decoder samples, z ∼ N(0, I))")]
    out += [ablation_table(df, name, abl) for name, abl in (ablations or {}).items()]
    return out


def write_tables(metrics_csv: Path, out_dir: Path, ablations: dict, main: dict) -> list[Path]:
    """Write every table as CSV, Markdown, LaTeX and HTML into `out_dir`; return the paths."""
    paths = []
    for table, summary in build_tables(metrics_csv, ablations, main):
        paths += write_table(table, summary, out_dir)
    return paths
