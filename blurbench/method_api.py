"""The interface every reconstruction term in `methods/` implements.

A method file `methods/<name>.py` defines:
  - `PARAMS`: a dict of default parameters (nested dicts allowed); the config may override any
    key, and an unknown key is a config error.
  - `validate(params) -> None`: raise `ConfigError` naming the key (e.g. "blur.eps") for bad values.
  - `Term`: a subclass of `ReconstructionTerm`.
  - optionally `validate_for_dataset(params, resolution, channels) -> None`: raise `ConfigError`
    when the (validated) params cannot run on a dataset's images, so that the grid is refused
    before any job starts rather than when its training begins.
  - optionally `resolve_params(params, *, resolution, channels, methods) -> params`: the params a
    run on that dataset uses, with values that depend on it filled in (e.g. `l2`'s `match_gain_of`
    turns into a σ² divisor); `methods` maps every configured method to its plugin and params.
  - optionally `weights(params) -> list[str]`: the pretrained weights (`blurbench.weights.SPECS`
    names) the term needs, so `snakemake fetch_weights` fetches them.

The training budget is `train.steps` optimiser steps, numbered 0 … steps − 1 across epochs. The
loop calls, per step t: `loss = term.loss(x, x_hat, z, t) + beta * KL`, the VAE optimiser step,
then `term.after_vae_step(x, x_hat, z, t)` (an extra optimiser step of the term's own parts, e.g.
the blur-Wiener kernel predictor). At each log point it calls `term.probe(z_probe, steps_done)`
and logs the arrays it returns for fixed probe test images.

Logged values are detached 0-d tensors on the training device, not Python floats: the loop sums
them there and converts once per log interval, so a step never waits for the device.
"""

from __future__ import annotations

import torch


def gaussian_nll(x: torch.Tensor, x_hat: torch.Tensor, sigma2: float) -> torch.Tensor:
    """Negative log-likelihood of x under N(x_hat, sigma2·I), summed over pixels, mean over the batch.

    The constant 0.5·D·log(2πσ²) is left out: σ² is fixed, so it moves no gradient.
    """
    return 0.5 / sigma2 * (x - x_hat).pow(2).flatten(1).sum(1).mean()


class ReconstructionTerm:
    """Base class: the reconstruction part of the negative ELBO and any parts it trains itself."""

    def __init__(self, params: dict, *, sigma2: float, steps: int, latent_dim: int,
                 image_shape: tuple[int, int, int], device: torch.device):
        """`steps`: the run's total number of optimiser steps; `image_shape`: (C, H, W)."""
        self.params = params
        self.sigma2 = sigma2
        self.steps = steps
        self.latent_dim = latent_dim
        self.image_shape = image_shape
        self.device = device

    @classmethod
    def unavailable_reason(cls, params: dict) -> str | None:
        """Why this term cannot run here (e.g. missing pretrained weights), or None. Checked before training."""
        return None

    def loss(self, x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor,
             step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Batch-mean reconstruction loss (a scalar tensor with gradients) at the 0-based optimiser
        step `step`, and values to log as detached 0-d tensors (no host sync per step)."""
        raise NotImplementedError

    def after_vae_step(self, x: torch.Tensor, x_hat: torch.Tensor, z: torch.Tensor,
                       step: int) -> dict[str, torch.Tensor]:
        """An extra optimisation step of the term's own parts, with the VAE frozen, at step `step`.
        Inputs are detached; values to log as in `loss`."""
        return {}

    def probe(self, z_probe: torch.Tensor, step: int) -> dict:
        """Arrays (numpy) describing the term on fixed probe images, at a log point after `step` steps."""
        return {}

    def probe_metadata(self) -> dict:
        """Scalars saved next to the probe arrays (e.g. the step a term switches on)."""
        return {}

    def state_dict(self) -> dict:
        """Everything needed to resume (own modules and optimisers); tensors and plain types only."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
