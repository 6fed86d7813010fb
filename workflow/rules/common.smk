# Validation, the run grid and input functions: everything else reads GRID, built once here.
import json
import os
import sys

sys.path.insert(0, workflow.basedir)  # the harness, whether or not it is pip-installed
from blurbench.config import build_grid
from blurbench.errors import ConfigError, DataError


RESULTS = "results"
# With --sdm conda every rule runs in this environment; `python -m blurbench` finds the package in
# the workflow folder, installed or not.
CONDA_ENV = "../envs/blurbench.yaml"
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")])))



def _dry_run():
    """Snakemake parses this file before it picks its executor, so -n is read from the command line."""
    return any(a in ("--dry-run", "--dryrun") or (a[:1] == "-" and a[1:2] != "-" and a[1:].isalpha()
                                                   and "n" in a[1:]) for a in sys.argv[1:])


# A dry run lists the DAG without the data on disk; a real run checks every dataset root before any
# job starts, so a missing dataset fails at once with the loader's message.
try:
    GRID = build_grid(config, check_data=not _dry_run())
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


def weights_needed():
    """Names of the pretrained weights this config uses (FID, LPIPS, perceptual backbones)."""
    from blurbench.weights import required_for

    methods = [(m["plugin"], m["params"]) for m in GRID.methods.values()]
    return required_for(methods, GRID.config["evaluate"])


# ---- tables and figures: which files, which runs, which captions
from blurbench.figures import figure_names
from blurbench.tables import table_names

EXPERIMENTS = GRID.config["experiments"]
MAIN = EXPERIMENTS["main"]
ABLATIONS = EXPERIMENTS.get("ablations", {})
# Methods whose probe.npz holds per-image kernels (the kernel-evolution figure, the paper's Fig. 2).
KERNEL_METHODS = [m for m in MAIN["methods"]
                  if GRID.methods[m]["params"].get("kernel", {}).get("mode") == "per_image"]
FIGURE_SEED = min(GRID.config["seeds"])  # qualitative grids, spectra, kernels, curves: one seed
TABLES = table_names(ABLATIONS)
FIGURES = figure_names(MAIN, ABLATIONS, KERNEL_METHODS)


def _table_caption(name):
    kind = "ablation" if name.startswith("ablation_") else name
    return f"../report/table_{kind}.rst"


def _figure_caption(name):
    return f"../report/figure_{name.split('_')[0]}.rst"


FIGURE_SUBCATEGORY = {"qualitative": "Qualitative", "kernels": "Kernel evolution",
                      "ablation": "Ablations", "spectra": "Power spectra", "training": "Training"}


# Per-run files the figures read; every run writes them, an untrained one empty (shown as n/a).
FIGURE_RUNS = [f"{RESULTS}/runs/{d}/{m}/seed{FIGURE_SEED}" for d in MAIN["datasets"] for m in MAIN["methods"]]
KERNEL_RUNS = [f"{RESULTS}/runs/{d}/{m}/seed{FIGURE_SEED}" for d in MAIN["datasets"] for m in KERNEL_METHODS]
