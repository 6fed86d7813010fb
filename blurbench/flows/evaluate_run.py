"""Evaluate one flows run (experiments.flows) on its test split: the heavy lifting behind `blurbench.evaluate`.

`sample_run` draws, for the test images' LR inputs y = AvgPool4(x) and for every condition set of
`conditions.build_conditions` (built from the first `n_ood_images` of them, to bound the cost), K samples
per input at the run's temperature (unclamped: the artifact criterion counts what the flow outputs).
Choices, stated in the rows' notes and the tables' legends:
- the run's output that the shared scoring sees (PSNR, SSIM, LPIPS, FID/KID, HFER, transfer split) is
  the **sample mean**: the mean of the K samples, each clamped to [0, 1] as an image is shown (one
  exploding sample would otherwise decide the mean); the single-sample rows are of the first sample,
  clamped; the diversity is the per-pixel standard deviation (ddof 1) across the K clamped samples,
  averaged over pixels and images;
- artifacts (`flows.artifacts`) are counted on the unclamped samples of every condition set: per sample
  and per pixel; per input, the fraction of its K samples with one;
- the latents are drawn from a generator seeded with the run's seed and the condition's index, so the
  couplings of a seed see the same draws on the same inputs (their comparison is paired);
- the OOD score: the Mahalanobis distance (Ledoit–Wolf shrinkage, `flows.ood`) of the conditioner's
  pooled features of an input from those of the first `OOD_FIT_IMAGES` training images' LR inputs;
  AUROC and Spearman ρ against "any of this input's K samples has an artifact", over every condition
  set's inputs pooled (in distribution: the same first `n_ood_images` as the other sets);
- the flow's samples satisfy A x̂ = y, so an LR input with a value outside the criterion's bounds (strong
  noise, contrast ×2) forces an artifact whatever the coupling: each set's rows say how many inputs do;
- LR consistency ‖A x̂ − y‖² of the unclamped float32 samples, computed in float64 (SRFlow's samples
  satisfy A x̂ = y by construction, up to round-off).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from ..data import to_float
from ..results_schema import (ARTIFACT_METRICS, FLOW_CONDITIONS, FLOWS_KINDS, LR_METRICS, OOD_METRICS,
                              condition_metric, flows_key, generative_metrics)
from ..scoring import RowWriter, lpips_scores, package_version
from .artifacts import HIGH, LOW, artifact_pixels, artifact_samples
from .conditions import IN_DISTRIBUTION, build_conditions
from .ood import MahalanobisOOD, score_vs_artifacts
from .sr_flow import DEQUANT, SRFlow

OOD_FIT_IMAGES = 1024  # training images whose LR features the OOD score is fitted on (the first ones)
N_EXAMPLES = 4  # LR inputs per condition set whose first sample flows.npz keeps (the figure)
NOT_SAMPLED = ("conditional flow: no latent rate, and its samples are conditioned on the test inputs "
               "(scored as their mean and as one sample), not prior draws")


@dataclass
class ConditionResult:
    """Per LR input of one condition set: fraction of its K samples and of their pixels with an
    artifact, OOD score; the first inputs and one unclamped sample of each."""

    artifacts: np.ndarray
    pixels: np.ndarray
    inputs_out: float = 0.0  # fraction of the LR inputs themselves outside the criterion's bounds
    score: np.ndarray = None
    lr: np.ndarray = None
    samples: np.ndarray = None


@dataclass
class FlowSamples:
    """What evaluation keeps of a flows run's samples (module doc)."""

    mean: torch.Tensor  # (N, C, H, W) mean of the K clamped samples of each test image
    first: torch.Tensor  # (N, C, H, W) the first sample, clamped
    lr: torch.Tensor  # (N, C, h, w) the LR inputs y
    nll_bpd: np.ndarray  # (N,)
    diversity: np.ndarray  # (N,)
    lr_err: dict  # LR_METRICS -> (N,), mean over the K samples
    conditions: dict = field(default_factory=dict)  # name -> ConditionResult
    other: str | None = None  # the dataset behind `other_dataset`, if any
    shrinkage: float = float("nan")
    n_fit: int = 0
    n_samples: int = 0
    temperature: float = 0.0
    factor: int = 4
    n_ood: int = 0  # inputs per OOD condition set (the first test images')


def _generator(seed: int, index: int, device) -> torch.Generator:
    """The latents of condition set `index` of a run of seed `seed` (the same for every coupling)."""
    return torch.Generator(device=device).manual_seed(int(np.random.SeedSequence([seed, index]).generate_state(1)[0]))


@torch.no_grad()
def _draw(flow: SRFlow, y: torch.Tensor, k: int, temperature: float, gen: torch.Generator, batch_size: int,
          device, x: torch.Tensor | None = None) -> tuple[ConditionResult, dict]:
    """K samples per LR input in batches: the condition's ConditionResult and, with the HR images `x`
    (in distribution), the quality arrays (mean, first, diversity, LR errors)."""
    art, pix, mean, first, div = [], [], [], [], []
    err = {m: [] for m in LR_METRICS}
    examples = None
    for start in range(0, y.shape[0], batch_size):
        yb = y[start:start + batch_size].to(device)
        s = torch.stack([flow.sample(yb, temperature, gen) for _ in range(k)]).cpu()  # (K, B, C, H, W)
        flagged = artifact_pixels(s.flatten(0, 1).numpy()).reshape(k, yb.shape[0], *s.shape[-2:])
        art.append(flagged.any(axis=(2, 3)).mean(axis=0))
        pix.append(flagged.mean(axis=(0, 2, 3)))
        if examples is None:
            examples = (yb[:N_EXAMPLES].cpu().numpy(), s[0, :N_EXAMPLES].numpy())
        if x is None:
            continue
        clamped = s.clamp(0, 1)
        mean.append(clamped.mean(0))
        first.append(clamped[0])
        div.append(clamped.std(0).flatten(1).mean(1).double())
        y64 = yb.cpu().double()
        r = (F.avg_pool2d(s.flatten(0, 1).double(), flow.factor).unflatten(0, (k, yb.shape[0])) - y64).pow(2)
        err[LR_METRICS[0]].append(r.flatten(2).mean(2).mean(0))
        err[LR_METRICS[1]].append((r.flatten(2).sum(2) / y64.pow(2).flatten(1).sum(1)).mean(0))
    result = ConditionResult(np.concatenate(art), np.concatenate(pix), lr=examples[0], samples=examples[1])
    if x is None:
        return result, {}
    return result, {"mean": torch.cat(mean), "first": torch.cat(first), "diversity": torch.cat(div).numpy(),
                    "lr_err": {m: torch.cat(v).numpy() for m, v in err.items()}}


@torch.no_grad()
def _features(flow: SRFlow, y: torch.Tensor, batch_size: int, device) -> np.ndarray:
    """The conditioner's pooled features of LR inputs (the OOD score's features), float64."""
    return torch.cat([flow.pooled_features(y[s:s + batch_size].to(device)).cpu()
                      for s in range(0, y.shape[0], batch_size)]).double().numpy()


@torch.no_grad()
def _bits_per_dim(flow: SRFlow, images: np.ndarray, batch_size: int, device) -> np.ndarray:
    return torch.cat([flow.bits_per_dim(to_float(images[s:s + batch_size], device)).double().cpu()
                      for s in range(0, images.shape[0], batch_size)]).numpy()


def sample_run(flow: SRFlow, test: np.ndarray, train: np.ndarray, other: np.ndarray | None, *, n_samples: int,
               temperature: float, seed: int, batch_size: int, device, other_name: str | None = None,
               n_ood_images: int | None = None) -> FlowSamples:
    """Everything the rows and flows.npz need from a trained flow (module doc). `test`, `train`:
    uint8 (N, C, H, W) splits of the run's dataset; `other`: the other dataset's test images, float in
    [0, 1] (any channels and size: `conditions.build_conditions` converts them), or None;
    `n_ood_images`: test images per OOD condition set (None: all)."""
    flow.to(device).eval()
    x = to_float(test[:])
    y = F.avg_pool2d(x, flow.factor)
    n_ood = min(n_ood_images or len(y), len(y))
    inputs = {**build_conditions(y[:n_ood].double().numpy(), seed, other), IN_DISTRIBUTION: y.double().numpy()}
    fit = _features(flow, F.avg_pool2d(to_float(train[:OOD_FIT_IMAGES]), flow.factor), batch_size, device)
    ood = MahalanobisOOD("ledoit_wolf").fit(fit)
    out, conditions = None, {}
    for index, (name, lr) in enumerate(inputs.items()):
        lr = torch.from_numpy(lr).float()
        gen = _generator(seed, index, device)
        result, quality = _draw(flow, lr, n_samples, temperature, gen, batch_size, device,
                                x if name == IN_DISTRIBUTION else None)
        result.score = ood.score(_features(flow, lr, batch_size, device))
        result.inputs_out = float(artifact_samples(lr.numpy()).mean())
        conditions[name] = result
        if quality:
            out = quality
    nll = _bits_per_dim(flow, test, batch_size, device)
    return FlowSamples(mean=out["mean"], first=out["first"], lr=y, nll_bpd=nll, diversity=out["diversity"],
                       lr_err=out["lr_err"], conditions=conditions, other=other_name, shrinkage=ood.shrinkage_,
                       n_fit=fit.shape[0], n_samples=n_samples, temperature=temperature, factor=flow.factor,
                       n_ood=n_ood)


def sample_mean_note(fs: FlowSamples) -> str:
    """What the shared scoring's rows of a flows run are of (appended to their notes)."""
    return (f"of the sample mean: K = {fs.n_samples} samples per test image at temperature {fs.temperature:g}, "
            "each clamped to [0, 1]")


def add_rows(rows: RowWriter, fs: FlowSamples, x: torch.Tensor, ev: dict, channels: int, resolution: int,
             device) -> None:
    """The flows rows of `results_schema.FLOW_METRICS`, and the rate and samples' rows as unavailable."""
    from ..metrics import basic

    n, k, t = x.shape[0], fs.n_samples, fs.temperature
    proto = {"implementation": "blurbench.flows (SRFlow)", "version": package_version("blurbench")}
    rows.add("nll_bpd", float(fs.nll_bpd.mean()), n=n, note=(
        f"-log2 p(null-space coordinates | y) / D + log2({1 / DEQUANT:g}) (bins of width 1/{1 / DEQUANT:g}, "
        f"their centres; D = n - n/{fs.factor ** 2} per image)"), **proto)
    one = f"the first of K = {k} samples at temperature {t:g}, clamped to [0, 1]"
    torch_proto = {"implementation": "blurbench (torch)", "version": package_version("torch")}
    rows.add("psnr_sample", float(basic.psnr_per_image(fs.first, x).double().mean()), n=n, note=one, **torch_proto)
    rows.add("ssim_sample", float(basic.ssim_per_image(fs.first, x).double().mean()), n=n, note=one, **torch_proto)
    lpips_scores(rows, x, fs.first, ev, channels, resolution, device, metric="lpips_sample")
    rows.add("diversity_std", float(fs.diversity.mean()), n=n, note=(
        f"per-pixel standard deviation (ddof 1) across K = {k} samples at temperature {t:g}, clamped to [0, 1], "
        "averaged over pixels, channels and images"), **proto)
    criterion = (f"a sample with any pixel > {HIGH:g}, < {LOW:g} or non-finite, unclamped; K = {k} samples per "
                 f"input at temperature {t:g}")
    what = {"artifact_rate": "flagged samples / samples", "artifact_rate_pixel": "flagged pixels / pixels"}
    for name in FLOW_CONDITIONS:
        result = fs.conditions.get(name)
        for metric, per_input in zip(ARTIFACT_METRICS, ("artifacts", "pixels")):
            name_m = condition_metric(metric, name)
            if result is None:
                rows.add(name_m, reason="no other dataset configured for this dataset (experiments.flows.other)")
                continue
            source = f"; LR inputs: test images of {fs.other}" if name == "other_dataset" else ""
            forced = (f"; {100 * result.inputs_out:.3g}% of these LR inputs are themselves outside the bounds "
                      "(A x_hat = y then forces an artifact)")
            rows.add(name_m, float(getattr(result, per_input).mean()), n=len(result.artifacts),
                     note=f"{what[metric]}; {criterion}; condition {name}{source}{forced}", **proto)
    scores = np.concatenate([r.score[:fs.n_ood] for r in fs.conditions.values()])
    flagged = np.concatenate([r.artifacts[:fs.n_ood] > 0 for r in fs.conditions.values()])
    res = score_vs_artifacts(scores, flagged)
    ood = (f"Mahalanobis distance of the conditioner's pooled LR features, Ledoit-Wolf shrunk covariance of "
           f"{fs.n_fit} training LR inputs (the run's shrinkage in its flows arrays); against 'any of the input's "
           f"K = {k} samples has an artifact', over {len(fs.conditions)} condition sets x {fs.n_ood} inputs pooled")
    ood_proto = {"implementation": "blurbench.flows.ood", "version": package_version("blurbench")}
    undefined = (f"undefined: {res['n_artifacts']} of {res['n']} inputs produced an artifact "
                 "(AUROC and Spearman need both outcomes)")
    for metric, key in zip(OOD_METRICS[:2], ("auroc", "spearman_rho")):
        value = res[key]
        if np.isfinite(value):
            rows.add(metric, value, n=res["n"], note=ood, **ood_proto)
        else:
            rows.add(metric, reason=undefined)
    rows.add(OOD_METRICS[2], float(res["n_artifacts"]), n=res["n"], note=(
        f"inputs (of n, {len(fs.conditions)} condition sets pooled) with at least one flagged sample: {criterion}"),
             **ood_proto)
    rows.unavailable(["rate", *generative_metrics("gen"), "hfer_gen"], NOT_SAMPLED)


def npz_arrays(fs: FlowSamples) -> dict:
    """The arrays of flows.npz (`results_schema.FLOWS_KINDS`)."""
    arrays = {"conditions": np.array(list(fs.conditions)), "n_samples": np.array(fs.n_samples),
              "temperature": np.array(fs.temperature), "shrinkage": np.array(fs.shrinkage)}
    for name, r in fs.conditions.items():
        arrays.update({flows_key(kind, name): np.asarray(getattr(r, kind)) for kind in FLOWS_KINDS})
    return arrays
