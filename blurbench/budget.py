"""The verdict across training budgets: each method against the reference at 1/8, 1/4, 1/2 and all of
the training steps.

A sharpness difference between blurry blobs early in training is not a finding. The same paired
comparison as `comparison.compare` (Holm within each dataset at each fraction) is run on the
evaluation of every kept training state, so the table and figures show whether the answer at the
full budget holds, and from which step it no longer changes (`stable_from`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import comparison, layout
from .errors import ConfigError

COLUMNS = [*comparison.CSV_COLUMNS[:4], "fraction", "step", *comparison.CSV_COLUMNS[4:]]
PANELS = ["psnr", "detail_hf", "fid_recon", "fid_gen"]  # PSNR, reproduced HF detail, FID of reconstructions, samples
VERDICTS = ("better", "worse", "no detectable difference")  # the adjusted verdicts (`stats.adjusted_verdict`)
DECIDED = ("better", "worse")


def _fraction(key: str) -> float:
    """The budget fraction a `files_by_fraction` key names; ConfigError unless it is one of BUDGET_FRACTIONS."""
    try:
        if float(key) in layout.BUDGET_FRACTIONS:
            return float(key)
    except (TypeError, ValueError):
        pass
    raise ConfigError(f"budget fraction {key!r}: expected one of "
                      f"{', '.join(map(layout.format_value, layout.BUDGET_FRACTIONS))}")


def _step(steps: dict, dataset: str, fraction: float) -> int:
    """The optimiser step of a fraction of `dataset`'s budget (as training keeps it); ConfigError if
    steps has no entry for the dataset."""
    if dataset not in steps:
        raise ConfigError(f"steps[{dataset!r}]: no training steps given for dataset {dataset!r}")
    return layout.budget_step(fraction, steps[dataset])


def budget_rows(files_by_fraction: dict, reference: str, steps: dict, n_boot: int, n_boot_set: int):
    """Rows of COLUMNS: `comparison.compare` at every fraction, sorted by dataset, method, metric, step.

    `files_by_fraction`: fraction ("0.125", ..., "1") -> the `files` of `comparison.compare`;
    `steps`: dataset -> the full run's optimiser steps.
    """
    import pandas as pd

    fractions = {key: _fraction(key) for key in files_by_fraction}
    at = {(key, d): _step(steps, d, fractions[key]) for key, files in files_by_fraction.items() for d in files}
    frames = []
    for key, files in files_by_fraction.items():
        df = comparison.compare(files, reference, n_boot, n_boot_set)
        df["fraction"] = fractions[key]
        df["step"] = [at[key, d] for d in df["dataset"]]
        frames.append(df[COLUMNS])
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    return pd.concat(frames).sort_values(["dataset", "method", "metric", "step"], kind="stable", ignore_index=True)


def stable_from(df, dataset: str, method: str, metric: str) -> int | None:
    """The smallest step from which the cell's adjusted verdict stays the one at its largest step (the
    full budget); None when the cell has no verdict there."""
    cell = df[(df["dataset"] == dataset) & (df["method"] == method) & (df["metric"] == metric)].sort_values("step")
    verdicts = list(cell["verdict"])
    if not verdicts or verdicts[-1] not in VERDICTS:
        return None
    first = len(verdicts) - 1
    while first > 0 and verdicts[first - 1] == verdicts[-1]:
        first -= 1
    return int(cell["step"].iloc[first])


def _panel(ax, cells, metric: str, colors: dict) -> None:
    """One metric: each method's difference (interval as error bar) against the step, log2 axis."""
    from .figures import _na
    from .results_schema import METRICS, metric_header

    ax.set_title(metric_header(metric), fontsize=9)
    drawn = cells[np.isfinite(cells["diff"].astype(float))]
    if drawn.empty:
        _na(ax, "; ".join(r for r in dict.fromkeys(cells["reason"]) if r) or "no comparison rows")
        return
    ax.axhline(0, color="0.5", lw=0.8)
    methods = [m for m in colors if m in set(drawn["method"])]
    for i, method in enumerate(methods):
        rows = drawn[drawn["method"] == method]
        x = rows["step"] * 2 ** (0.05 * (i - (len(methods) - 1) / 2))  # side by side, not on top of each other
        y, c = rows["diff"].astype(float), colors[method]
        ax.errorbar(x, y, yerr=[y - rows["lo"].astype(float), rows["hi"].astype(float) - y], color=c, lw=0.8,
                    capsize=2, label=method)
        decided = rows["verdict"].isin(DECIDED).to_numpy()
        ax.scatter(x[decided], y[decided], color=c, zorder=3, s=18)
        ax.scatter(x[~decided], y[~decided], facecolors="white", edgecolors=c, zorder=3, s=18)
    ax.set_xscale("log", base=2)
    ticks = sorted(set(drawn["step"]))
    ax.set_xticks(ticks, [str(t) for t in ticks], fontsize=7)
    ax.minorticks_off()
    ax.set_xlabel("training step (log2)", fontsize=8)
    ax.set_ylabel("difference of −|value − 1|" if METRICS[metric].direction == "one" else "difference", fontsize=8)
    ax.legend(fontsize=6)


def budget_figure(df, dataset: str, out_base: Path, methods: list[str] | None = None) -> list[Path]:
    """Figure `budget_<dataset>`: one panel per metric of PANELS, method − reference against the step.

    Filled markers: a Holm-adjusted verdict (better/worse); hollow: none. `methods` fixes the colours
    (the other figures' method order); by default the reference, then the methods of `df`.
    """
    from .figures import _pyplot, method_colors, save_figure

    plt = _pyplot()
    cells = df[df["dataset"] == dataset]
    reference = cells["reference"].iloc[0] if len(cells) else "the reference"
    colors = method_colors(methods or [reference, *dict.fromkeys(cells["method"])])
    fig, axes = plt.subplots(1, len(PANELS), figsize=(3.4 * len(PANELS), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], PANELS):
        _panel(ax, cells[cells["metric"] == metric], metric, colors)
    fig.suptitle(f"{dataset}: paired difference method − {reference} across training budgets "
                 "(filled: Holm-adjusted verdict)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, out_base)


def figure_names(datasets) -> list[str]:
    """File stems `write_budget` writes (each as .png and .pdf), for the rule's outputs."""
    return [f"budget_{d}" for d in datasets]


def write_budget(files_by_fraction: dict, reference: str, steps: dict, out_csv: Path, figures_dir: Path,
                 n_boot: int, n_boot_set: int) -> list[Path]:
    """budget.csv (`budget_rows`) and one `budget_<dataset>` figure per dataset; every path written."""
    from .atomic import write_text
    from .tables.render import format_csv

    df = budget_rows(files_by_fraction, reference, steps, n_boot, n_boot_set)
    write_text(out_csv, format_csv(df))
    datasets = list(dict.fromkeys(d for files in files_by_fraction.values() for d in files))
    paths = [Path(out_csv)]
    for dataset, name in zip(datasets, figure_names(datasets)):
        runs = [files[dataset]["runs"] for files in files_by_fraction.values() if dataset in files]
        paths += budget_figure(df, dataset, Path(figures_dir) / name, list(dict.fromkeys(m for r in runs for m in r)))
    return paths
