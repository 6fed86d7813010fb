"""The 2-D toy of issue 26: a conditional flow trained on c ∈ [−1, 1], sampled at c up to ±5.

The toy density (a banana): x1 ~ N(0, 1), x2 = (x1² − 1)/2 + σ(c)·N(0, 1) with σ(c) = exp(0.7 (c + 1)),
so the spread of x2 grows from 1 to 4 over the training range. The affine coupling's forward scale
s = sigmoid(h + 2) + 1e-4 must shrink as σ(c) grows; its ReLU conditioner extrapolates h linearly in
c, so beyond c = 1 the inverse divides by a scale heading to 1e-4. The spline coupling (8 bins on
[−20, 20], which holds every training draw: the largest |x| of 1e5 draws is 15, and a shift bounded
by 1) obeys ‖x‖∞ ≤ max(20, ‖z‖∞) + K·1 = 24 for K = 4 and ‖z‖∞ ≤ 20, at every c (see coupling.py).

An artifact here is a sample with a coordinate beyond ARTIFACT_THRESHOLD = 50, or a non-finite one:
about 3× the largest training coordinate and above the spline's bound. It is relative to the training
range: the density itself, extrapolated, has σ(5) = 66, so far-OOD samples of either coupling are
judged against what the flow saw, not against that extrapolation.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from blurbench.flows.coupling import ConditionalFlow, build_flow, check_temperature
from blurbench.flows.ood import MahalanobisOOD, score_vs_artifacts

TRAIN_RANGE = (-1.0, 1.0)
ARTIFACT_THRESHOLD = 50.0
N_COUPLINGS = 4
COUPLING_KW = {
    "affine": {},
    "spline": {"bins": 8, "tail_bound": 20.0, "shift_bound": 1.0},
}
CONDITIONS = tuple(float(c) for c in np.linspace(-5, 5, 21))


def toy_scale(c: torch.Tensor) -> torch.Tensor:
    """s.d. of x2 given c: exp(0.7 (c + 1)), from 1 at c = −1 to 4.06 at c = 1 (and 66 at c = 5)."""
    return torch.exp(0.7 * (c + 1))


def sample_toy(c: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One x ~ p(x | c) per row of c (N, 1): x1 ~ N(0, 1), x2 = (x1² − 1)/2 + toy_scale(c)·N(0, 1) (a banana)."""
    x1 = torch.randn(c.shape[0], generator=generator)
    x2 = 0.5 * (x1 * x1 - 1) + toy_scale(c[:, 0]) * torch.randn(c.shape[0], generator=generator)
    return torch.stack([x1, x2], dim=1)


def train_toy(kind: str, steps: int = 600, batch: int = 256, lr: float = 3e-3, seed: int = 0) -> ConditionalFlow:
    """Fit a K = 4 coupling flow of `kind` by maximum likelihood on fresh draws with c ~ U[−1, 1]."""
    flow = build_flow(kind, 2, 1, N_COUPLINGS, hidden=64, seed=seed, **COUPLING_KW.get(kind, {}))
    opt = torch.optim.Adam(flow.parameters(), lr=lr)
    g = torch.Generator().manual_seed(seed)
    lo, hi = TRAIN_RANGE
    for _ in range(steps):
        c = lo + (hi - lo) * torch.rand(batch, 1, generator=g)
        loss = -flow.log_prob(sample_toy(c, g), c).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return flow


@torch.no_grad()
def evaluate_toy(flow: ConditionalFlow, conditions=CONDITIONS, n: int = 1000, temperature: float = 0.9,
                 seed: int = 1) -> tuple[list[dict], dict[float, np.ndarray]]:
    """Per condition: max |x| over n samples (non-finite counts as inf) and the artifact rate; the
    same z for every condition, so the rows differ only by c. Returns (rows, samples per c)."""
    check_temperature(temperature)
    g = torch.Generator().manual_seed(seed)
    z = temperature * torch.randn(n, 2, generator=g)
    rows, samples = [], {}
    for c in conditions:
        x = flow.inverse(z, torch.full((n, 1), c))[0]
        finite = torch.isfinite(x).all(1)
        max_abs = x.abs().amax(1).where(finite, torch.tensor(math.inf))
        rows.append({"c": c, "in_training_range": TRAIN_RANGE[0] <= c <= TRAIN_RANGE[1],
                     "max_abs": max_abs.max().item(),
                     "artifact_rate": (max_abs > ARTIFACT_THRESHOLD).float().mean().item(),
                     "n": n, "temperature": temperature})
        samples[c] = x.numpy()
    return rows, samples


def run_toy(steps: int = 600, seed: int = 0, conditions=CONDITIONS,
            kinds=("affine", "spline")) -> dict[str, tuple[list[dict], dict]]:
    """Train and evaluate each coupling kind; {kind: (rows, samples)}, every row tagged with its coupling."""
    out = {}
    for kind in kinds:
        rows, samples = evaluate_toy(train_toy(kind, steps=steps, seed=seed), conditions)
        out[kind] = ([{"coupling": kind, **r} for r in rows], samples)
    return out


def toy_ood(result: dict[str, tuple[list[dict], dict]], n_train: int = 2000, seed: int = 2) -> list[dict]:
    """Claim 2 on the toy: each sample's condition scored by its Mahalanobis distance from training
    conditions (c ~ U[−1, 1]; the feature is c itself), against "this sample is an artifact"."""
    lo, hi = TRAIN_RANGE
    train = lo + (hi - lo) * np.random.default_rng(seed).random((n_train, 1))
    scorer = MahalanobisOOD().fit(train)
    rows = []
    for kind, (_, samples) in result.items():
        cs = np.concatenate([np.full(len(x), c) for c, x in samples.items()])
        flags = np.concatenate([~np.isfinite(x).all(1) | (np.abs(x).max(1) > ARTIFACT_THRESHOLD)
                                for x in samples.values()])
        rows.append({"coupling": kind, **score_vs_artifacts(scorer.score(cs[:, None]), flags)})
    return rows


def toy_figure(result: dict[str, tuple[list[dict], dict]], path: Path,
               shown=(-1.0, 1.0, 3.0, 5.0)) -> None:
    """Samples at a few conditions per coupling (artifacts in red, clipped to the frame) and max |x| against c."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(result)
    fig, axes = plt.subplots(len(kinds), len(shown) + 1, figsize=(3 * (len(shown) + 1), 3 * len(kinds)),
                             squeeze=False)
    lim = 1.5 * ARTIFACT_THRESHOLD
    peaks = [min(r["max_abs"], 1e30) for rows, _ in result.values() for r in rows]
    norm_lim = (0.8 * min(peaks), 1.25 * max(max(peaks), ARTIFACT_THRESHOLD))  # one scale for every coupling
    for i, kind in enumerate(kinds):
        rows, samples = result[kind]
        for j, c in enumerate(shown):
            ax = axes[i, j]
            x = samples[c]
            bad = ~np.isfinite(x).all(1) | (np.abs(x).max(1) > ARTIFACT_THRESHOLD)
            good = x[~bad]
            ax.scatter(good[:, 0], good[:, 1], s=2, c="tab:blue")
            ax.scatter(*np.clip(np.nan_to_num(x[bad], posinf=lim, neginf=-lim), -lim, lim).T, s=6, c="tab:red")
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal",
                   title=f"{kind}, c = {c:g}" + ("" if TRAIN_RANGE[0] <= c <= TRAIN_RANGE[1] else " (OOD)"))
        ax = axes[i, -1]
        ax.semilogy([r["c"] for r in rows], [min(r["max_abs"], 1e30) for r in rows], "o-")
        ax.axhline(ARTIFACT_THRESHOLD, color="tab:red", ls="--", lw=1)
        ax.axvspan(*TRAIN_RANGE, color="0.9")
        ax.set(xlabel="condition c", ylabel="max |x| over samples", ylim=norm_lim, title=f"{kind}: max |x| vs c")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
