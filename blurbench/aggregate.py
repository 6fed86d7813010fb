"""Concatenate the per-run metric files into the one tidy `results/metrics.csv`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .atomic import atomic_path
from .evaluate import ROW_FIELDS


def aggregate(run_metric_files: list[str | Path], out: str | Path) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype={"reason": str, "note": str}, keep_default_na=False)
              for p in run_metric_files]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=ROW_FIELDS)
    extra = sorted(c for c in df.columns if c not in ROW_FIELDS)
    df = df[ROW_FIELDS + extra].sort_values(["dataset", "method", "variant", "seed", "metric"],
                                            kind="stable")
    with atomic_path(out) as tmp:
        df.to_csv(tmp, index=False)
    return df
