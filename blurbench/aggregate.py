"""Concatenate the per-run (and per-dataset baseline) metric files into the one tidy `results/metrics.csv`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .atomic import atomic_path
from .results_schema import ROW_FIELDS


def aggregate(metric_files: list[str | Path], out: str | Path) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype=str, keep_default_na=False) for p in metric_files]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_FIELDS)
    df = df.reindex(columns=ROW_FIELDS + sorted(c for c in df.columns if c not in ROW_FIELDS)).fillna("")
    df = df.sort_values(["dataset", "method", "variant", "seed", "metric"], kind="stable")
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    return df
