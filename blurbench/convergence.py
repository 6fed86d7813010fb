"""Is a run converged? Its own check, on the monitor split, against the same run trained longer.

A learning-rate schedule flattens the end of any run by construction, so a flat training curve
proves nothing. Converged here means: the same run (dataset, method, lowest seed) trained for
`experiments.convergence.factor` × the steps gains less than `threshold_db` of PSNR on the monitor
split (held out from training, not the test split). The gain goes into metrics.csv as one
`convergence_gain` row per dataset and method, labelled with the shorter run, and the tables
footnote the methods whose gain reaches the threshold.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import layout, provenance
from .atomic import write_text
from .config import RunSpec
from .scoring import RowWriter, rows_csv

METRIC = "convergence_gain"


def final_monitor_psnr(train_log: str | Path) -> float:
    """The monitor split's PSNR at a run's last log row."""
    log = pd.read_csv(train_log)
    if "monitor_psnr" not in log.columns or log.empty:
        raise ValueError(f"{train_log}: no monitor_psnr column (a run trained before the monitor split)")
    return float(log["monitor_psnr"].iloc[-1])


def is_converged(psnr: float, psnr_longer: float, threshold_db: float) -> bool:
    """True when the longer budget gains less than `threshold_db` (a loss of PSNR counts as converged:
    the run has stopped improving on held-out images)."""
    return psnr_longer - psnr < threshold_db


def convergence_rows(pairs: list[dict], factor: int, threshold_db: float) -> list[dict]:
    """metrics.csv rows, one per pair {"spec": RunSpec JSON, "log": train_log, "longer_log": train_log}."""
    out = []
    prov = provenance.row_columns(provenance.collect("none", provenance.now()))
    for pair in pairs:
        spec = RunSpec.from_json(pair["spec"])
        labels = {"run_id": spec.run_id, "dataset": spec.dataset, "method": spec.method, "variant": spec.variant,
                  "seed": spec.seed, "resolution": spec.resolution, "channels": spec.channels, **prov}
        rows = RowWriter(labels)
        psnr, longer = final_monitor_psnr(pair["log"]), final_monitor_psnr(pair["longer_log"])
        verdict = "converged" if is_converged(psnr, longer, threshold_db) else "not converged"
        rows.add(METRIC, longer - psnr, n=1, implementation=layout.TRAIN_LOG, version="",
                 note=f"monitor PSNR after {factor}x the steps ({longer:.2f} dB) minus this run's ({psnr:.2f} dB); "
                      f"{verdict} (threshold {threshold_db:g} dB)")
        for row in rows.rows:
            row["split"] = "monitor"
        out += rows.rows
    return out


def write_convergence(pairs_json: str, factor: int, threshold_db: float, out: str | Path) -> list[dict]:
    rows = convergence_rows(json.loads(pairs_json), factor, threshold_db)
    write_text(out, rows_csv(rows))
    return rows
