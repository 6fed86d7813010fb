"""The interface every super-resolution method in `methods/` implements.

A method file `methods/<name>.py` of the SR task defines:
  - `TASK = "sr"` (a file without it is a VAE reconstruction term, `blurbench.method_api`);
  - `PARAMS`, a dict of default parameters, and `validate(params)`, raising `ConfigError` naming the key;
  - `Method`, a subclass of `SRMethod`.

Every SR method trains the same network (`blurbench.sr.network.SRNet`: a body at LR resolution, a
PixelShuffle head, added to A⁺y); the method decides whether its output goes through the affine
projection onto {x : A x = y} (`project`), whether a discriminator trains beside it (`adversarial`),
and the generator's loss. The loop calls, per 0-based step t: the discriminator step (adversarial
methods, on instance-noised real and fake images), `loss(...)`, the network's optimiser step, then
`after_step(...)` for the method's own parts (e.g. `aff_blur`'s kernel generator).
"""

from __future__ import annotations

import torch

from .losses import INSTANCE_NOISE_START


class SRMethod:
    """Base class: plain MSE to the HR image, no projection, no discriminator."""

    project = False
    adversarial = False

    def __init__(self, params: dict, *, operator, channels: int, steps: int, width: int, device: torch.device):
        """`operator`: the degradation (`blurbench.sr.operators`); `width`: channels of the LR features."""
        self.params, self.operator, self.channels = params, operator, channels
        self.steps, self.width, self.device = steps, width, device

    @property
    def noise_start(self) -> float:
        """σ₀ of the discriminator's instance noise (annealed linearly to 0 over the run)."""
        return self.params.get("noise_start", INSTANCE_NOISE_START)

    def loss(self, x: torch.Tensor, x_hat: torch.Tensor, y: torch.Tensor, features: torch.Tensor, step: int,
             fake_logits: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator's batch loss (with gradients) and detached values to log."""
        mse = (x_hat - x).pow(2).mean()
        return mse, {"mse": mse.detach()}

    def after_step(self, x: torch.Tensor, x_hat: torch.Tensor, features: torch.Tensor,
                   step: int) -> dict[str, torch.Tensor]:
        """Train the method's own parts after the network's step; values to log."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
