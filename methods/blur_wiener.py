"""Blur-Wiener reconstruction term (Bredell et al., ICLR 2023): the paper's method and its fixed-Σ ablation.

The reconstruction error is scored under N(x̂, Σ_k), whose precision weights the error spectrum by
the Wiener-deconvolution filter of a blur kernel k (math in `blurbench/wiener.py`). Training
alternates a VAE step (kernel frozen) with a kernel step (VAE frozen) that fits x̂ ≈ k ⊛ x.

Kernel modes (`kernel.mode`): `per_image` — k = G_γ(z), an MLP from the latent (the paper's
method); `global` — one learned kernel for all images; `fixed` — a Gaussian of width
`kernel.sigma`, never trained (the fixed-Σ ablation; its log-det is constant but still reported).

Unspecified by the paper (decisions of this project, each a config key or stated here):
- `blur.eps`, ε-regularised kernel K_ε = ε·K + (1 − ε) (the OTF of ε·k + (1 − ε)·δ); default 1.
- `blur.normalize_dc`: W = (1 + C)·conj(K_ε)/(|K_ε|² + C) keeps the mean error at weight 1 as in
  L2; default true. `blur.C` = 0.01.
- `blur.normalize_gain` = false: if true, |W|² is divided by its mean over the full spectrum, per
  kernel, so the term keeps its spectral shape at mean gain 1 (the log-det is that of the rescaled
  precision). Without it the term also acts like L2 at a smaller σ² (the gain confound); `gain`
  logs the batch mean of ⟨|W|²⟩ each step (1 during the L2 warm-up), and `initial_gain` gives
  the gain of the first kernel for an L2 control at σ²/gain.
- `blur.start_step`: L2 (Σ⁻¹ = I/σ²) for the optimiser steps before it (0-based); default (None)
  is 10% of `train.steps` rounded down, at least 1 (the paper switches at epoch 10). If it is ≥
  the number of steps the run stays L2 throughout (the kernel is still trained and logged).
- `blur.ramp_steps` = R: ε grows linearly over the first R + 1 blur steps, ε·(t − start + 1)/(R + 1),
  so the first blur step is never a wasted ε = 0 step; R = 0 switches ε on at once.
- Probe arrays: `eps` is the ε of the last step done before the probe (0 before any step).
- `kernel.size` = 7 (for 64×64), odd; softmax over s² logits makes k ≥ 0 with sum 1.
- `kernel.hidden` = 128: G_γ is Linear(latent → hidden) → ReLU → Linear(hidden → s²) → softmax.
- `kernel.init` = "gaussian": the last layer starts with zero weights and bias = log k₀, so the first
  kernel is k₀ for every image and z-dependence is learned; k₀ is a Gaussian of width
  `kernel.sigma`, or with "delta" a near-delta (mass 0.99 at the centre, the rest spread evenly —
  an exact delta has −∞ logits). Logits of k₀ are floored at log(1e-12).
- `kernel.lr` = 1e-4 with Adam (default betas) for γ, its own optimiser; the kernel step minimises
  Σ_pixels (x̂ − k ⊛ x)² per image, batch mean, circular convolution through the FFT. It runs
  from step 0, also during the L2 warm-up.
- `kernel.detach_in_vae_step` = true: the kernel is a constant in the VAE step. If false, gradients
  flow from k through z into the encoder (γ itself stays frozen either way).
- The likelihood's constant (C·H·W/2)·log(2πσ²) is left out exactly as in the L2 method, so
  `recon_nll` of both methods is comparable. `logdet` logs ½·log|Σ_k| − ½·log|σ²I|.
- In `fixed` mode `kernel_loss` is still computed (how well the fixed kernel explains the blur),
  without an optimiser step.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from blurbench import wiener
from blurbench.errors import ConfigError
from blurbench.method_api import ReconstructionTerm, gaussian_nll

PARAMS: dict = {
    "kernel": {"mode": "per_image", "size": 7, "sigma": 1.0, "lr": 1e-4, "hidden": 128,
               "init": "gaussian", "detach_in_vae_step": True},
    "blur": {"eps": 1.0, "C": 0.01, "start_step": None, "ramp_steps": 0, "normalize_dc": True,
             "normalize_gain": False},
}
MODES = ("per_image", "global", "fixed")
INITS = ("gaussian", "delta")
DELTA_INIT_MASS = 0.99


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(params: dict) -> None:
    """Raise ConfigError naming the dotted key of the first bad value."""
    k, b = params["kernel"], params["blur"]

    def bad(key, expected, value):
        raise ConfigError(f"'{key}': expected {expected}, got {value!r}")

    if k["mode"] not in MODES:
        bad("kernel.mode", f"one of {', '.join(MODES)}", k["mode"])
    if not _is_int(k["size"]) or k["size"] < 1 or k["size"] % 2 == 0:
        bad("kernel.size", "an odd integer ≥ 1", k["size"])
    if not _is_number(k["sigma"]) or k["sigma"] <= 0:
        bad("kernel.sigma", "a number > 0", k["sigma"])
    if not _is_number(k["lr"]) or k["lr"] <= 0:
        bad("kernel.lr", "a number > 0", k["lr"])
    if not _is_int(k["hidden"]) or k["hidden"] < 1:
        bad("kernel.hidden", "an integer ≥ 1", k["hidden"])
    if k["init"] not in INITS:
        bad("kernel.init", f"one of {', '.join(INITS)}", k["init"])
    if not isinstance(k["detach_in_vae_step"], bool):
        bad("kernel.detach_in_vae_step", "true or false", k["detach_in_vae_step"])
    if not _is_number(b["eps"]) or not 0.0 <= b["eps"] <= 1.0:
        bad("blur.eps", "a number in [0, 1]", b["eps"])
    if not _is_number(b["C"]) or b["C"] <= 0:
        bad("blur.C", "a number > 0", b["C"])
    if b["start_step"] is not None and (not _is_int(b["start_step"]) or b["start_step"] < 0):
        bad("blur.start_step", "null (10% of train.steps) or an integer ≥ 0", b["start_step"])
    if not _is_int(b["ramp_steps"]) or b["ramp_steps"] < 0:
        bad("blur.ramp_steps", "an integer ≥ 0", b["ramp_steps"])
    for key in ("normalize_dc", "normalize_gain"):
        if not isinstance(b[key], bool):
            bad(f"blur.{key}", "true or false", b[key])


def _check_fits(size: int, height: int, width: int) -> None:
    if size > min(height, width):
        raise ConfigError(f"'kernel.size': {size} is larger than the {height}×{width} images")


def validate_for_dataset(params: dict, resolution: int, channels: int) -> None:
    """Refuse a kernel larger than the dataset's resolution×resolution images, before any job starts.

    `params` are validated already; any channel count works (one kernel serves all channels).
    """
    _check_fits(params["kernel"]["size"], resolution, resolution)


def initial_kernel(size: int, sigma: float, init: str, dtype=torch.float32) -> torch.Tensor:
    """k₀: a Gaussian of width sigma, or a near-delta (DELTA_INIT_MASS at the centre)."""
    if init == "gaussian":
        return wiener.gaussian_kernel(size, sigma, dtype=dtype)
    k = torch.full((size, size), (1 - DELTA_INIT_MASS) / max(size * size - 1, 1), dtype=dtype)
    k[size // 2, size // 2] = DELTA_INIT_MASS if size > 1 else 1.0
    return k


def first_kernel(params: dict, dtype=torch.float32) -> torch.Tensor:
    """The kernel the term starts with: the fixed Gaussian in `fixed` mode, else k₀ (`kernel.init`)."""
    kp = params["kernel"]
    if kp["mode"] == "fixed":
        return wiener.gaussian_kernel(kp["size"], kp["sigma"], dtype=dtype)
    return initial_kernel(kp["size"], kp["sigma"], kp["init"], dtype=dtype)


def initial_gain(params: dict, resolution: int) -> float:
    """⟨|W|²⟩ of the first kernel at the configured ε and C on a resolution×resolution grid.

    For the `l2_matched` control (L2 at σ²/gain): the weight this term puts on a white error when
    it switches on. Exactly 1.0 with `blur.normalize_gain`, which removes the gain by construction.
    """
    validate(params)
    _check_fits(params["kernel"]["size"], resolution, resolution)
    bp = params["blur"]
    if bp["normalize_gain"]:
        return 1.0
    gain = wiener.mean_gain(first_kernel(params, torch.float64), (resolution, resolution),
                            eps=float(bp["eps"]), C=float(bp["C"]), normalize_dc=bp["normalize_dc"])
    return float(gain)


class KernelPredictor(nn.Module):
    """G_γ(z): latent -> hidden -> s² logits -> softmax kernel (B, s, s); starts at k₀ for every z."""

    def __init__(self, latent_dim: int, hidden: int, size: int, init_logits: torch.Tensor):
        super().__init__()
        self.size = size
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, size * size))
        with torch.no_grad():
            self.net[2].weight.zero_()
            self.net[2].bias.copy_(init_logits.flatten())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(z), dim=1).view(-1, self.size, self.size)


class Term(ReconstructionTerm):
    def __init__(self, params, *, sigma2, steps, latent_dim, image_shape, device):
        super().__init__(params, sigma2=sigma2, steps=steps, latent_dim=latent_dim,
                         image_shape=image_shape, device=device)
        validate(params)
        kp, bp = params["kernel"], params["blur"]
        self.mode, self.size = kp["mode"], kp["size"]
        _check_fits(self.size, image_shape[1], image_shape[2])
        self.detach = kp["detach_in_vae_step"]
        self.eps, self.C, self.normalize_dc = float(bp["eps"]), float(bp["C"]), bp["normalize_dc"]
        self.normalize_gain = bp["normalize_gain"]
        self.start_step = max(1, steps // 10) if bp["start_step"] is None else bp["start_step"]
        self.ramp_steps = bp["ramp_steps"]

        k0 = first_kernel(params)
        logits = k0.clamp_min(1e-12).log()
        self.opt = None
        if self.mode == "fixed":
            self.fixed_kernel = k0.to(device)
        elif self.mode == "global":
            self.logits = nn.Parameter(logits.flatten().to(device))
            self.opt = torch.optim.Adam([self.logits], lr=kp["lr"])
        else:
            self.predictor = KernelPredictor(latent_dim, kp["hidden"], self.size, logits).to(device)
            self.opt = torch.optim.Adam(self.predictor.parameters(), lr=kp["lr"])

    def eps_at(self, step: int) -> float:
        """Effective ε of optimiser step `step`: 0 (plain L2) before start_step, then the linear ramp."""
        if step < self.start_step:
            return 0.0
        return self.eps * min(1.0, (step - self.start_step + 1) / (self.ramp_steps + 1))

    def kernel(self, z: torch.Tensor) -> torch.Tensor:
        """Current kernel(s) with gradients to γ: (B, s, s) in per_image mode, else (s, s)."""
        if self.mode == "fixed":
            return self.fixed_kernel
        if self.mode == "global":
            return torch.softmax(self.logits, 0).view(self.size, self.size)
        return self.predictor(z)

    def _vae_kernel(self, z: torch.Tensor) -> torch.Tensor:
        """The kernel for the VAE step: γ frozen; gradient to z only if not `detach_in_vae_step`."""
        if self.mode == "per_image" and not self.detach:
            frozen = {n: p.detach() for n, p in self.predictor.named_parameters()}
            return torch.func.functional_call(self.predictor, frozen, (z,))
        with torch.no_grad():
            return self.kernel(z)

    def loss(self, x, x_hat, z, step):
        if step < self.start_step:
            nll = gaussian_nll(x, x_hat, self.sigma2)
            return nll, {"recon_nll": nll.detach(), "logdet": x.new_zeros(()), "eps": x.new_zeros(()),
                         "gain": x.new_ones(())}
        eps = self.eps_at(step)
        nll, logdet, gain = wiener.wiener_nll(x, x_hat, self._vae_kernel(z), eps=eps, C=self.C,
                                              sigma2=self.sigma2, normalize_dc=self.normalize_dc,
                                              normalize_gain=self.normalize_gain)
        return nll, {"recon_nll": nll.detach(), "logdet": logdet.detach(), "eps": x.new_full((), eps),
                     "gain": gain}

    def _fit_loss(self, x, x_hat, k):
        """‖x̂ − k ⊛ x‖² per image, batch mean (circular convolution, as in the likelihood)."""
        return wiener.fit_error(x, x_hat, k).mean()

    def after_vae_step(self, x, x_hat, z, step):
        if self.opt is None:
            with torch.no_grad():
                return {"kernel_loss": self._fit_loss(x, x_hat, self.fixed_kernel)}
        fit = self._fit_loss(x, x_hat, self.kernel(z))
        self.opt.zero_grad(set_to_none=True)
        fit.backward()
        self.opt.step()
        return {"kernel_loss": fit.detach()}

    def probe(self, z_probe, step):
        with torch.no_grad():
            k = self.kernel(z_probe).expand(len(z_probe), self.size, self.size)
        return {"kernels": k.float().cpu().numpy().copy(),
                "eps": np.asarray(self.eps_at(step - 1), dtype=np.float32)}  # ε of the last step done

    def probe_metadata(self):
        return {"start_step": self.start_step, "ramp_steps": self.ramp_steps}

    def state_dict(self):
        state = {"mode": self.mode}
        if self.mode == "global":
            state["logits"] = self.logits.detach().clone()
        elif self.mode == "per_image":
            state["predictor"] = self.predictor.state_dict()
        if self.opt is not None:
            state["optimizer"] = self.opt.state_dict()
        return state

    def load_state_dict(self, state):
        if state.get("mode") != self.mode:
            raise ValueError(f"checkpoint holds a '{state.get('mode')}' kernel, this run is "
                             f"'{self.mode}' (kernel.mode)")
        if self.mode == "global":
            with torch.no_grad():
                self.logits.copy_(state["logits"])
        elif self.mode == "per_image":
            self.predictor.load_state_dict(state["predictor"])
        if self.opt is not None:
            self.opt.load_state_dict(state["optimizer"])
