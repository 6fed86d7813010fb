"""Names and places: how a variant and a run are named, and every result file's name and place.

The grid, the workflow rules, the writers (train, evaluate, baselines) and the readers (comparison,
tables, figures) all take these from here, so a run has one name and one folder everywhere, and
renaming a file is one edit (`tests/test_layout.py` fails on a file name spelled anywhere else).
Paths are relative to the results folder's parent (the workflow's working directory) unless a
`results` root is given.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError

RESULTS = "results"
# The checkout the package runs from: plugins (methods/, datasets/), the config schema and git live
# there. A wheel installs the package alone; those then need a checkout (BLURBENCH_PLUGIN_ROOT).
REPO_ROOT = Path(__file__).resolve().parent.parent

# A run's folder (`run_dir`): what training writes ...
MODEL = "model.pt"
TRAIN_LOG = "train_log.csv"
PROBE = "probe.npz"
PROVENANCE = "provenance.json"
EVAL = "eval"
# ... and what evaluation writes into its EVAL folder (PROVENANCE too).
METRICS = "metrics.csv"      # also the name of a dataset's baselines file and of the aggregate
PER_IMAGE = "per_image.csv"
FEATURES = "features.npz"
EXAMPLES = "examples.npz"
SPECTRA = "spectra.npz"
TRANSFER = "transfer.npz"   # the cross-spectra S_xx, S_yy, S_yx of test images and reconstructions
RECON_GRID = "recon.png"
SAMPLES_GRID = "samples.png"
# a flows run's per-condition artifact fractions, OOD scores and example samples (`blurbench.flows.
# evaluate_run`); every other run writes it empty, as a run that did not train writes every file
FLOWS = "flows.npz"
EVAL_FILES = {"metrics": METRICS, "per_image": PER_IMAGE, "features": FEATURES, "examples": EXAMPLES,
              "spectra": SPECTRA, "transfer": TRANSFER, "recon": RECON_GRID, "samples": SAMPLES_GRID,
              "provenance": PROVENANCE, "flows": FLOWS}
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


# The budget ladder: the full run's training state at these fractions of its steps (a fraction 1 is
# model.pt and the main eval), each evaluated by the evaluation-only `budget` target.
BUDGET_FRACTIONS = (0.125, 0.25, 0.5, 1.0)
BUDGET_STATE = "budget{fraction}.pt"
BUDGET_EVAL = "eval_budget{fraction}"


def budget_step(fraction: float, steps: int) -> int:
    """The optimiser step of a budget state: the fraction of the full run's steps, at least step 1."""
    return max(1, round(fraction * steps))


def budget_key(fraction: float) -> str:
    """The TRAIN_FILES key (and wildcard value) of a budget state: 'budget0.125'."""
    return f"budget{format_value(fraction)}"


TRAIN_FILES = {"model": MODEL, "train_log": TRAIN_LOG, "probe": PROBE, "provenance": PROVENANCE,
               **{budget_key(f): BUDGET_STATE.format(fraction=format_value(f)) for f in BUDGET_FRACTIONS[:-1]}}
# A prepared dataset's folder (`data_dir`).
SPLIT_ARRAY = "{split}.npy"
META = "meta.json"
# The run's resumable state inside `checkpoint_dir`.
CHECKPOINT = "last.pt"


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


def run_file(dataset: str, variant: str, seed: int | str, key: str, results: str | Path = RESULTS) -> str:
    """A file training writes (`TRAIN_FILES` key) in the run's folder."""
    return f"{run_dir(dataset, variant, seed, results)}/{TRAIN_FILES[key]}"


def eval_file(dataset: str, variant: str, seed: int | str, key: str, results: str | Path = RESULTS) -> str:
    """A file evaluation writes (`EVAL_FILES` key) in the run's eval folder."""
    return f"{run_dir(dataset, variant, seed, results)}/{EVAL}/{EVAL_FILES[key]}"


def checkpoint_path(dataset: str, variant: str, seed: int | str, results: str | Path = RESULTS) -> str:
    """The resumable training state; not a workflow output, so a failed job keeps it."""
    return f"{results}/checkpoints/{run_id(dataset, variant, seed)}/{CHECKPOINT}"


def data_dir(dataset: str, results: str | Path = RESULTS) -> str:
    """Prepared arrays: train.npy, test.npy, meta.json."""
    return f"{results}/data/{dataset}"


def split_array(split: str) -> str:
    """The file name of a prepared split (`data.SPLITS`: train, test, monitor) inside `data_dir`."""
    return SPLIT_ARRAY.format(split=split)


def data_file(dataset: str, split: str, results: str | Path = RESULTS) -> str:
    return f"{data_dir(dataset, results)}/{split_array(split)}"


def fid_stats_path(dataset: str, results: str | Path = RESULTS) -> str:
    return f"{results}/fid_stats/{dataset}_test.npz"


def baselines_dir(dataset: str, results: str | Path = RESULTS) -> str:
    """Trivial baselines and the blur ladder of a dataset's test split: metrics.csv, per_image.csv."""
    return f"{results}/baselines/{dataset}"


def baselines_metrics(dataset: str, results: str | Path = RESULTS) -> str:
    return f"{baselines_dir(dataset, results)}/{METRICS}"


# Results-wide files.
def metrics_csv(results: str | Path = RESULTS) -> str:
    """Every row of every run and baseline (`aggregate`)."""
    return f"{results}/{METRICS}"


def runs_tsv(results: str | Path = RESULTS) -> str:
    return f"{results}/runs.tsv"


def config_used(results: str | Path = RESULTS) -> str:
    return f"{results}/config_used.yaml"


def timing_csv(results: str | Path = RESULTS) -> str:
    return f"{results}/timing.csv"


def tables_dir(results: str | Path = RESULTS) -> str:
    return f"{results}/tables"


def table_file(name: str, ext: str, results: str | Path = RESULTS) -> str:
    """A table (`name` from tables.table_names, or "comparison") as csv, md, tex or html."""
    return f"{tables_dir(results)}/{name}.{ext}"


ADEQUACY = "adequacy.csv"


def adequacy_csv(results: str | Path = RESULTS) -> str:
    """Each run's PSNR margin over the trivial baselines, written beside the tables."""
    return f"{tables_dir(results)}/{ADEQUACY}"


def figures_dir(results: str | Path = RESULTS) -> str:
    return f"{results}/figures"


def figure_file(name: str, ext: str, results: str | Path = RESULTS) -> str:
    return f"{figures_dir(results)}/{name}.{ext}"


def budget_eval_file(dataset: str, variant: str, seed: int | str, fraction: float, key: str,
                     results: str | Path = RESULTS) -> str:
    """A file (`EVAL_FILES` key) of the evaluation at a budget fraction; at 1 the run's main eval."""
    if fraction == "{fraction}":  # the workflow's wildcard
        folder = BUDGET_EVAL.format(fraction=fraction)
    elif float(fraction) == 1.0:
        return eval_file(dataset, variant, seed, key, results)
    else:
        folder = BUDGET_EVAL.format(fraction=format_value(float(fraction)))
    return f"{run_dir(dataset, variant, seed, results)}/{folder}/{EVAL_FILES[key]}"


def convergence_metrics(results: str | Path = RESULTS) -> str:
    """The convergence check's metrics.csv rows (`convergence`), one per main dataset and method."""
    return f"{results}/convergence/{METRICS}"


def budget_job(run: str, fraction: str) -> str:
    """The log and benchmark name of a budget evaluation: `<run id>/budget<fraction>`."""
    return f"{run}/budget{fraction}"


def budget_csv(results: str | Path = RESULTS) -> str:
    """Each method's paired difference from the reference at every budget fraction (`budget`)."""
    return f"{tables_dir(results)}/budget.csv"


def log_file(rule: str, job: str = "", results: str | Path = RESULTS) -> str:
    return f"{results}/logs/{rule}/{job}.log" if job else f"{results}/logs/{rule}.log"


BENCHMARKS = "benchmarks"


def benchmark_file(rule: str, job: str = "", results: str | Path = RESULTS) -> str:
    """Snakemake's timing of one job (`timing` reads them all): per run, per dataset or per rule."""
    return f"{results}/{BENCHMARKS}/{rule}/{job}.tsv" if job else f"{results}/{BENCHMARKS}/{rule}.tsv"


# The super-resolution papers' 2-D toys (`blurbench.toys`).
TOY_FILES = {"sr_figure": "sr_toy.png", "sr_table": "sr_toy.csv", "flow_figure": "flow_toy.png",
             "flow_table": "flow_toy.csv", "flow_ood": "flow_toy_ood.csv"}


def toy_file(key: str, results: str | Path = RESULTS) -> str:
    return f"{results}/toys/{TOY_FILES[key]}"
