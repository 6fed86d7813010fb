"""Names and places: how a variant and a run are named, and where each result file lives.

The grid, the workflow rules, the tables and the figures all take these from here, so a run has
one name and one folder everywhere. Paths are relative to the results folder's parent (the
workflow's working directory) unless a `results` root is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError

RESULTS = "results"


def format_value(value) -> str:
    """The one spelling of a value in a name: 0.5 -> '0.5', 1.0 -> '1', 7 -> '7', 1e-4 -> '0.0001',
    True -> 'true' (a switch ablated on and off)."""
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, (int, float)):
        raise ConfigError(f"ablation value {value!r} is not a number or true/false")
    if float(value).is_integer():
        return str(int(value))
    return np.format_float_positional(float(value), trim="-")


def variant_name(method: str, tag: str | None = None, value=None) -> str:
    """`<method>` for a main run, `<method>__<tag><value>` for an ablation point."""
    return method if tag is None else f"{method}__{tag}{format_value(value)}"


LADDER_PREFIX = "blur_sigma"


def ladder_variant(sigma: float) -> str:
    """The name of a blur-ladder baseline row: the test images blurred by a Gaussian of σ px."""
    return f"{LADDER_PREFIX}{format_value(sigma)}"


def run_id(dataset: str, variant: str, seed: int | str) -> str:
    return f"{dataset}/{variant}/seed{seed}"


def run_dir(dataset: str, variant: str, seed: int | str, results: str | Path = RESULTS) -> str:
    """A run's folder: model.pt, train_log.csv, probe.npz, provenance.json and eval/."""
    return f"{results}/runs/{run_id(dataset, variant, seed)}"


def checkpoint_path(dataset: str, variant: str, seed: int | str, results: str | Path = RESULTS) -> str:
    """The resumable training state; not a workflow output, so a failed job keeps it."""
    return f"{results}/checkpoints/{run_id(dataset, variant, seed)}/last.pt"


def data_dir(dataset: str, results: str | Path = RESULTS) -> str:
    """Prepared arrays: train.npy, test.npy, meta.json."""
    return f"{results}/data/{dataset}"


def fid_stats_path(dataset: str, results: str | Path = RESULTS) -> str:
    return f"{results}/fid_stats/{dataset}_test.npz"


def baselines_dir(dataset: str, results: str | Path = RESULTS) -> str:
    """Trivial baselines and the blur ladder of a dataset's test split: metrics.csv, per_image.csv."""
    return f"{results}/baselines/{dataset}"
