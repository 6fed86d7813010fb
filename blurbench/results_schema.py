"""The one definition of the results files: the columns of `metrics.csv` and the metric registry.

Evaluation writes rows with these fields, aggregation concatenates them, tables, comparisons and
figures read them; all of them import the names from here. Nothing here imports torch, so the
light rules (aggregate, tables, figures) that run on a login node stay light.
"""

from __future__ import annotations

from dataclasses import dataclass

from .flows.conditions import IN_DISTRIBUTION, condition_names

# One row per (run, split, metric). Provenance columns say which code and machine made the number.
ROW_FIELDS = ["run_id", "dataset", "method", "variant", "seed", "split", "metric", "value", "status",
              "reason", "n", "resolution", "channels", "implementation", "version",
              "feature_extractor", "weights_source", "note", "commit", "device", "host"]
# Columns the readers need; swept parameters (e.g. `blur.eps`) follow ROW_FIELDS as extra columns.
REQUIRED_COLUMNS = [f for f in ROW_FIELDS if f not in ("resolution", "channels", "commit", "device", "host")]
STATUSES = ("ok", "unavailable")

# Trivial baselines and the blur ladder are rows of metrics.csv with this method; a run whose PSNR is
# not clearly above the better of the TRIVIAL ones has not learned (blurbench.baselines).
BASELINE_METHOD = "baseline"
TRIVIAL_BASELINES = ("mean_image", "mean_colour")
# The SR task's baselines (variants of BASELINE_METHOD): A⁺y and bicubic upsampling of the LR input.
SR_PINV, SR_BICUBIC = "sr_pinv", "sr_bicubic"


# Conditional flows (experiments.flows): a metric measured on one condition set of LR inputs
# (`blurbench.flows.conditions`) is named `<metric>@<condition>`; on the test split's own LR inputs
# (in distribution) it keeps its plain name. Every flows run writes a row for every condition (one
# without an `other` dataset: unavailable, with the reason).
FLOW_CONDITIONS = condition_names(with_other=True)
ARTIFACT_METRICS = ("artifact_rate", "artifact_rate_pixel")  # per sample, per pixel (flows.artifacts)


def condition_metric(metric: str, condition: str) -> str:
    """The metrics.csv name of `metric` on one condition set: `artifact_rate@noise_0.1`."""
    return metric if condition == IN_DISTRIBUTION else f"{metric}@{condition}"


def _condition_label(condition: str) -> str:
    return "in distribution" if condition == IN_DISTRIBUTION else condition.replace("_", " ")


# FID with fewer images than this is biased upward and its covariance is rank-deficient.
FID_MIN_N = 2048


@dataclass(frozen=True)
class Metric:
    """How a metric is shown and compared.

    direction: "min" lower is better, "max" higher is better, "one" closest to 1 is better,
    "info" no better or worse (e.g. the rate). kind: "per_image" (a mean of per-image values, which
    `eval/per_image.csv` keeps) or "set" (a statistic of the whole set).
    """

    label: str
    direction: str
    decimals: int
    kind: str


METRICS = {
    "mse": Metric("MSE", "min", 4, "per_image"),
    "psnr": Metric("PSNR", "max", 2, "per_image"),
    "ssim": Metric("SSIM", "max", 3, "per_image"),
    "lpips": Metric("LPIPS", "min", 3, "per_image"),
    "fid_recon": Metric("FID-recon", "min", 1, "set"),
    "kid_recon": Metric("KID-recon", "min", 4, "set"),
    "prdc_recon_precision": Metric("precision-recon", "max", 3, "set"),
    "prdc_recon_recall": Metric("recall-recon", "max", 3, "set"),
    "prdc_recon_density": Metric("density-recon", "info", 3, "set"),
    "prdc_recon_coverage": Metric("coverage-recon", "max", 3, "set"),
    # the transfer split of HFER (blurbench.metrics.transfer): reproduced detail (best at 1: above 1
    # is over-sharpening) and added energy; per_image.csv keeps their pseudo-values (mean = value)
    "detail_hf": Metric("detail HF", "one", 4, "per_image"),
    "added_hf": Metric("added HF", "min", 4, "per_image"),
    "hfer_recon": Metric("HFER", "one", 3, "set"),
    # σ of the sampled Gaussian whose MTF best fits |H| (negative: sharper than the input)
    "equiv_blur": Metric("equiv. blur σ", "info", 2, "set"),
    "rate": Metric("rate (nats)", "info", 1, "per_image"),
    # precision over L2's at model.sigma2 at the end of training: ⟨|W|²⟩ of the blur term, the
    # σ² divisor of an L2 control; what a change of effective β would look like
    "gain": Metric("precision gain", "info", 2, "set"),
    # training's own convergence check: PSNR of the monitor split (held out, not test) at the last
    # log row, and what the same run trained for experiments.convergence.factor × the steps gains on it
    "monitor_psnr": Metric("monitor PSNR", "info", 2, "set"),
    "convergence_gain": Metric("longer-budget gain (dB)", "info", 2, "set"),
    # super-resolution: consistency of the output with its LR input, before clamping
    "lr_mse": Metric("LR MSE", "min", 2, "set"),
    "lr_rel": Metric("LR rel. error", "min", 2, "set"),
    # conditional flows: NLL of the test images' null-space coordinates, single samples at the
    # run's temperature (clamped), the spread of K samples, artifact rates per condition set (on
    # unclamped samples) and how well the Mahalanobis OOD score predicts an artifact
    "nll_bpd": Metric("NLL (bits/dim)", "min", 3, "per_image"),
    "psnr_sample": Metric("PSNR (1 sample)", "max", 2, "per_image"),
    "ssim_sample": Metric("SSIM (1 sample)", "max", 3, "per_image"),
    "lpips_sample": Metric("LPIPS (1 sample)", "min", 3, "per_image"),
    "diversity_std": Metric("diversity (pixel std)", "info", 4, "per_image"),
    **{condition_metric(m, c): Metric(f"{label} ({_condition_label(c)})", "min", 3, "per_image")
       for c in FLOW_CONDITIONS for m, label in zip(ARTIFACT_METRICS, ("artifacts", "artifact pixels"))},
    "ood_auroc": Metric("OOD AUROC", "info", 3, "set"),
    "ood_spearman": Metric("OOD Spearman ρ", "info", 3, "set"),
    "ood_artifacts": Metric("inputs with an artifact", "info", 0, "set"),
    "fid_gen": Metric("FID-gen", "min", 1, "set"),
    "kid_gen": Metric("KID-gen", "min", 4, "set"),
    "prdc_gen_precision": Metric("precision-gen", "max", 3, "set"),
    "prdc_gen_recall": Metric("recall-gen", "max", 3, "set"),
    "prdc_gen_density": Metric("density-gen", "info", 3, "set"),
    "prdc_gen_coverage": Metric("coverage-gen", "max", 3, "set"),
    "hfer_gen": Metric("HFER-gen", "one", 3, "set"),
}
ARROWS = {"min": "↓", "max": "↑", "one": "→1", "info": ""}

PRDC = ("precision", "recall", "density", "coverage")


def generative_metrics(feature_set: str) -> list[str]:
    """The Inception-feature metrics of a feature set ("recon" or "gen"), as `scoring` writes them."""
    return [f"fid_{feature_set}", f"kid_{feature_set}"] + [f"prdc_{feature_set}_{m}" for m in PRDC]


FEATURE_SETS = ("recon", "gen")  # the keys of a run's features.npz
# What evaluation computes for every run, in this order.
RUN_METRICS = (["mse", "psnr", "ssim", "lpips", *generative_metrics("recon"), "hfer_recon", "detail_hf",
                "added_hf", "equiv_blur", "rate", "gain", "monitor_psnr", *generative_metrics("gen"), "hfer_gen"])
# What a trivial baseline or a blur-ladder row can have (no model: no rate, no samples).
BASELINE_METRICS = ["mse", "psnr", "ssim", "lpips", *generative_metrics("recon"), "hfer_recon", "detail_hf",
                    "added_hf", "equiv_blur"]
# Columns of the tables.
RECON_METRICS = ["mse", "psnr", "ssim", "lpips", "fid_recon", "kid_recon", "detail_hf", "added_hf", "hfer_recon",
                 "equiv_blur", "rate"]
GEN_METRICS = generative_metrics("gen") + ["hfer_gen"]
ABLATION_METRICS = ["mse", "psnr", "ssim", "lpips", "fid_recon", "kid_recon", "detail_hf", "added_hf", "rate",
                    "gain", "fid_gen", "kid_gen"]
# An SR run's consistency with its LR input (`evaluate.add_lr_consistency`; baselines have none).
LR_METRICS = ("lr_mse", "lr_rel")
# The SR table: fidelity, consistency with the LR input, then sharpness.
SR_METRICS = ["ssim", "psnr", *LR_METRICS, "lpips", "fid_recon", "kid_recon", "detail_hf", "added_hf",
              "equiv_blur"]
# What evaluation adds for a flows run (`blurbench.flows.evaluate_run`), in this order; its RUN_METRICS
# are of the sample mean over K samples (rate and the samples' generation metrics: unavailable).
OOD_METRICS = ["ood_auroc", "ood_spearman", "ood_artifacts"]
FLOW_METRICS = (["nll_bpd", "psnr_sample", "ssim_sample", "lpips_sample", "diversity_std"]
                + [condition_metric(m, c) for c in FLOW_CONDITIONS for m in ARTIFACT_METRICS] + OOD_METRICS)
# The flows table: likelihood, quality of the sample mean and of one sample, diversity, then the
# artifact rate per condition set; the flows_ood table; the paired comparison's cells.
FLOWS_ARTIFACT_COLUMNS = [condition_metric("artifact_rate", c) for c in FLOW_CONDITIONS]
FLOWS_TABLE_METRICS = ["nll_bpd", "psnr", "ssim", "lpips", "psnr_sample", "diversity_std", *FLOWS_ARTIFACT_COLUMNS]
# The controls table and the rate figure: sharpness against rate (is it more than a change of β?).
CONTROL_METRICS = ["rate", "gain", "psnr", "detail_hf", "added_hf", "lpips", "fid_recon", "kid_recon", "fid_gen"]
COMPARISON_METRICS = ["mse", "psnr", "ssim", "lpips", *generative_metrics("recon"), "detail_hf", "added_hf",
                      "hfer_recon", "equiv_blur", *generative_metrics("gen")]

# The ablation parameter of the L2 σ² sweep (methods/l2.py): an ablation over it is the control
# curve of the controls table and the rate figure.
SIGMA2_SWEEP_PARAM = "sigma2_divisor"

# Columns of a run's `eval/per_image.csv`: one row per test image, the values behind the means.
PER_IMAGE_FIELDS = ["image", "mse", "psnr", "ssim", "lpips", "rate", "hf_recon", "hf_data", "detail_hf", "added_hf"]
# Arrays of a flows run's `eval/flows.npz`, per condition set c (`flows_key(kind, c)`): per LR input,
# the fraction of its K samples with an artifact ("artifacts") and of their pixels ("pixels") and its
# OOD score ("score"); the first few LR inputs ("lr") and one unclamped sample of each ("samples").
# Beside them: "conditions" (the sets, in order), "n_samples" (K), "temperature" and "shrinkage" (the
# Ledoit-Wolf δ of the OOD score's covariance).
FLOWS_KINDS = ("artifacts", "pixels", "score", "lr", "samples")


def flows_key(kind: str, condition: str) -> str:
    """The flows.npz array of `kind` (FLOWS_KINDS) on one condition set: `artifacts__noise_0.1`."""
    if kind not in FLOWS_KINDS:
        raise ValueError(f"kind {kind!r} of a flows run's arrays: expected one of {', '.join(FLOWS_KINDS)}")
    return f"{kind}__{condition}"


def metric_header(metric: str) -> str:
    m = METRICS[metric]
    return f"{m.label} {ARROWS[m.direction]}".strip()


def fid_bias_note(n: int) -> str:
    """The note a FID row carries when N is below FID_MIN_N, else ''."""
    return f"N={n} < {FID_MIN_N}: biased, rank-deficient covariance" if n < FID_MIN_N else ""
# The SR comparison (against `mse`): the reconstruction cells; SR has no samples.
SR_COMPARISON_METRICS = [m for m in COMPARISON_METRICS if not m.endswith("_gen") and "_gen_" not in m]
