# Validation, the run grid and input functions: everything else reads GRID, built once here.
import json
import sys

from blurbench.config import build_grid
from blurbench.errors import ConfigError, DataError


RESULTS = "results"

# A dry run lists the DAG without the data on disk; a real run checks every dataset root before any
# job starts, so a missing dataset fails at once with the loader's message.
try:
    GRID = build_grid(config, check_data=not workflow.dryrun)
except (ConfigError, DataError) as _err:
    sys.exit(f"config error: {_err}")


wildcard_constraints:
    dataset="[A-Za-z][A-Za-z0-9_]*",
    variant="[A-Za-z][A-Za-z0-9_.\-]*",
    seed="[0-9]+",


def run_spec(wildcards):
    """The run's JSON spec; as a param, a changed config reruns exactly the affected runs."""
    return GRID.runs[f"{wildcards.dataset}/{wildcards.variant}/seed{wildcards.seed}"].to_json()


def dataset_spec(wildcards):
    d = GRID.datasets[wildcards.dataset]
    return json.dumps({k: d[k] for k in ("plugin", "params", "resolution")}, sort_keys=True)


def run_dir(run_id):
    return f"{RESULTS}/runs/{run_id}"


def all_run_metrics():
    return [f"{run_dir(r)}/eval/metrics.csv" for r in sorted(GRID.runs)]


def fid_stats_input(wildcards):
    """FID reference statistics, only when the config computes FID."""
    if not GRID.config["evaluate"]["fid"]:
        return []
    return f"{RESULTS}/fid_stats/{wildcards.dataset}_test.npz"
