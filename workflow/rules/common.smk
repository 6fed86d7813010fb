# Validation, the run grid and input functions: everything else reads GRID, built once here.
import json
import os
import sys

sys.path.insert(0, workflow.basedir)  # the harness, whether or not it is pip-installed
from blurbench import layout
from blurbench.config import build_grid
from blurbench.data import SPLITS
from blurbench.errors import ConfigError, DataError

RESULTS = layout.RESULTS
# With --sdm conda every rule runs in this environment; `python -m blurbench` finds the package in
# the workflow folder, installed or not.
CONDA_ENV = "../envs/blurbench.yaml"
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [workflow.basedir, os.environ.get("PYTHONPATH")])))


def _dry_run():
    """Snakemake parses this file before it picks its executor, so -n (or --lint, which runs no job)
    is read from the command line."""
    return any(
        a in ("--dry-run", "--dryrun", "--lint")
        or (a[:1] == "-" and a[1:2] != "-" and a[1:].isalpha() and "n" in a[1:])
        for a in sys.argv[1:]
    )


# A dry run lists the DAG without the data on disk; a real run checks every dataset root before any
# job starts, so a missing dataset fails at once with the loader's message.
try:
    GRID = build_grid(config, check_data=not _dry_run())
except (ConfigError, DataError) as _err:
    sys.exit(f"config error: {_err}")

# Where jobs run is a resource, not part of what they compute: the shell commands name this global
# (not a param), so a changed device never reruns a job. Threads come from `threads:` likewise.
DEVICE = GRID.config["device"]
THREADS = GRID.config["threads"]
GPU = GRID.config["gpu"]


wildcard_constraints:
    dataset="[A-Za-z][A-Za-z0-9_]*",
    variant="[A-Za-z][A-Za-z0-9_.\-]*",
    seed="[0-9]+",


def _run_id(wildcards):
    return layout.run_id(wildcards.dataset, wildcards.variant, wildcards.seed)


def run_spec(wildcards):
    """The run's training identity (JSON): as a param, exactly the runs whose model changes retrain."""
    return GRID.runs[_run_id(wildcards)].to_json()


def eval_spec(wildcards):
    """The training identity plus the evaluate keys the metrics depend on, and the row labels."""
    return GRID.evals[_run_id(wildcards)].to_json()


def dataset_spec(wildcards):
    d = GRID.datasets[wildcards.dataset]
    return json.dumps({k: d[k] for k in ("plugin", "params", "resolution")}, sort_keys=True)


def baseline_spec(wildcards):
    return json.dumps(GRID.baseline_spec(wildcards.dataset), sort_keys=True)


# Wildcard patterns of the per-run, per-dataset and per-job files (names from blurbench.layout).
RUN_JOB = layout.run_id("{dataset}", "{variant}", "{seed}")
RUN_FILE = {k: layout.run_file("{dataset}", "{variant}", "{seed}", k) for k in layout.TRAIN_FILES}
EVAL_FILE = {k: layout.eval_file("{dataset}", "{variant}", "{seed}", k) for k in layout.EVAL_FILES}
SPLIT = {s: layout.data_file("{dataset}", s) for s in SPLITS}
RUN_DATASETS = sorted({spec.dataset for spec in GRID.runs.values()})


# Runs trained only to check convergence (factor × the steps): the convergence rule reads their
# train logs; they are never evaluated.
CONVERGENCE_RUNS = {longer for _, longer in GRID.convergence.values()}
CONVERGENCE_PAIRS = [
    {
        "spec": GRID.runs[short].to_json(),
        "log": layout.run_file(GRID.runs[short].dataset, GRID.runs[short].variant, GRID.runs[short].seed, "train_log"),
        "longer_log": layout.run_file(
            GRID.runs[longer].dataset, GRID.runs[longer].variant, GRID.runs[longer].seed, "train_log"
        ),
    }
    for short, longer in GRID.convergence.values()
]


def all_metric_files():
    """Every evaluated run's metrics, every dataset's baselines and the convergence check: what
    aggregate concatenates."""
    runs = [s for rid, s in sorted(GRID.runs.items()) if rid not in CONVERGENCE_RUNS]
    return (
        [layout.eval_file(s.dataset, s.variant, s.seed, "metrics") for s in runs]
        + [layout.baselines_metrics(d) for d in RUN_DATASETS]
        + ([layout.convergence_metrics()] if GRID.convergence else [])
    )


def fid_stats_input(wildcards):
    """FID reference statistics, only when the config computes FID."""
    if not GRID.config["evaluate"]["fid"]:
        return []
    return layout.fid_stats_path(wildcards.dataset)


def weights_needed():
    """Names of the pretrained weights this config uses: the metrics' and what each plugin declares."""
    from blurbench import plugins
    from blurbench.weights import required_for

    declared = []
    for m in GRID.methods.values():
        plugin = plugins.load_method(m["plugin"])
        if hasattr(plugin, "weights"):
            declared += plugin.weights(m["params"])
    return required_for(GRID.config["evaluate"], declared)


# ---- tables and figures: which files, which runs, which captions
from blurbench.budget import figure_names as budget_figure_names
from blurbench.figures import figure_names, sr_figure_names
from blurbench.flows.figure import figure_names as flows_figure_names
from blurbench.tables import table_names

EXPERIMENTS = GRID.config["experiments"]
# The VAE study; an SR-only config (config/sr.yaml) has none, and its VAE tables and figures are not made.
HAS_MAIN = "main" in EXPERIMENTS
MAIN = EXPERIMENTS.get("main", {"datasets": [], "methods": [], "reference": None})
ABLATIONS = EXPERIMENTS.get("ablations", {})
# Methods whose probe.npz holds per-image kernels (the kernel-evolution figure, the paper's Fig. 2).
KERNEL_METHODS = [m for m in MAIN["methods"] if GRID.methods[m]["params"].get("kernel", {}).get("mode") == "per_image"]
FIGURE_SEED = min(GRID.config["seeds"])  # qualitative grids, spectra, kernels, curves: one seed
TABLES = table_names(ABLATIONS, EXPERIMENTS.get("sr"), EXPERIMENTS.get("main"), EXPERIMENTS.get("flows"))
FIGURES = figure_names(MAIN, ABLATIONS, KERNEL_METHODS)


def _table_caption(name):
    kind = "ablation" if name.startswith("ablation_") else name
    return f"../report/table_{kind}.rst"


def _figure_caption(name):
    return f"../report/figure_{name.split('_')[0]}.rst"


FIGURE_SUBCATEGORY = {
    "qualitative": "Qualitative",
    "kernels": "Kernel evolution",
    "ablation": "Ablations",
    "spectra": "Power spectra",
    "training": "Training",
    "rate": "Controls: rate and sharpness",
    "transfer": "Transfer functions and added energy",
}


# Per-run files the figures read, by dataset and method; every run writes them, an untrained one
# empty (shown as n/a). The figures rule passes exactly these paths (JSON) to the code.
FIGURE_FILES = {
    d: {
        m: {
            "examples": layout.eval_file(d, m, FIGURE_SEED, "examples"),
            "spectra": layout.eval_file(d, m, FIGURE_SEED, "spectra"),
            "transfer": layout.eval_file(d, m, FIGURE_SEED, "transfer"),
            "train_log": layout.run_file(d, m, FIGURE_SEED, "train_log"),
            **({"probe": layout.run_file(d, m, FIGURE_SEED, "probe")} if m in KERNEL_METHODS else {}),
        }
        for m in MAIN["methods"]
    }
    for d in MAIN["datasets"]
}


# The comparison's inputs: per dataset, method and seed the per-image values, features and
# cross-spectra; per dataset the FID reference statistics with the test features (when FID is on).
def comparison_files(experiment):
    """COMPARISON_FILES of an experiment (experiments.main, or experiments.sr)."""
    return {
        d: {
            "runs": {
                m: {
                    str(s): {k: layout.eval_file(d, m, s, k) for k in ("per_image", "features", "transfer")}
                    for s in GRID.config["seeds"]
                }
                for m in experiment["methods"]
            },
            "fid_stats": layout.fid_stats_path(d) if GRID.config["evaluate"]["fid"] else None,
        }
        for d in experiment["datasets"]
    }


COMPARISON_FILES = comparison_files(MAIN)
SR = EXPERIMENTS.get("sr")  # the super-resolution task, when configured
SR_COMPARISON_FILES = comparison_files(SR) if SR else {}
# The SR qualitative figure's inputs: per SR dataset and method, the examples of FIGURE_SEED.
SR_FIGURE_FILES = (
    {d: {m: layout.eval_file(d, m, FIGURE_SEED, "examples") for m in SR["methods"]} for d in SR["datasets"]}
    if SR
    else {}
)
SR_FIGURES = sr_figure_names(SR)
FLOWS = EXPERIMENTS.get("flows")  # conditional flows for SR, when configured
# The flows comparison's inputs: per flows dataset, method and seed, the run's flows.npz; the flows
# figure's: those of FIGURE_SEED.
FLOWS_COMPARISON_FILES = (
    {
        d: {
            "runs": {
                m: {str(s): {"flows": layout.eval_file(d, m, s, "flows")} for s in GRID.config["seeds"]}
                for m in FLOWS["methods"]
            }
        }
        for d in FLOWS["datasets"]
    }
    if FLOWS
    else {}
)
FLOWS_FIGURE_FILES = (
    {d: {m: layout.eval_file(d, m, FIGURE_SEED, "flows") for m in FLOWS["methods"]} for d in FLOWS["datasets"]}
    if FLOWS
    else {}
)
FLOWS_FIGURES = flows_figure_names(FLOWS)


def flow_eval_input(wildcards):
    """A flows run's evaluation also reads its dataset's train split (the OOD score's fit) and the other
    dataset's test split (the other_dataset condition); other runs read neither."""
    rid = _run_id(wildcards)
    if rid not in GRID.flows:
        return {}
    other = GRID.evals[rid].evaluate["flows"]["other"]
    return {
        "train": layout.data_file(wildcards.dataset, "train"),
        **({"other": layout.data_file(other, "test")} if other else {}),
    }


def files_of(tree):
    """Every path in a nested dict of paths (the input list of the rule the dict describes)."""
    if isinstance(tree, dict):
        return [p for v in tree.values() for p in files_of(v)]
    return [] if tree is None else [tree]


def _comparison_files(fraction):
    """The comparison's inputs (COMPARISON_FILES' shape) for the main runs' states at `fraction`."""
    return {
        d: {
            "runs": {
                m: {
                    str(s): {
                        k: layout.budget_eval_file(d, m, s, fraction, k) for k in ("per_image", "features", "transfer")
                    }
                    for s in GRID.config["seeds"]
                }
                for m in MAIN["methods"]
            },
            "fid_stats": COMPARISON_FILES[d]["fid_stats"],
        }
        for d in MAIN["datasets"]
    }


# The budget ladder: fraction -> the comparison's files at that fraction (1: the main evaluation),
# and each main dataset's full-run steps (the x axis of budget_<dataset>).
BUDGET_FILES = {layout.format_value(f): _comparison_files(f) for f in layout.BUDGET_FRACTIONS}
BUDGET_FIGURES = budget_figure_names(MAIN["datasets"])
BUDGET_STEPS = {d: GRID.runs[layout.run_id(d, MAIN["reference"], FIGURE_SEED)].train["steps"] for d in MAIN["datasets"]}
