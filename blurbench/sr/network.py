"""The SR network shared by every SR method, its discriminator, and `train_sr`.

`SRNet`: a conv body at LR resolution (a 3×3 conv to `width` channels, then `depth` 3×3 conv + ReLU
layers), a 3×3 conv to C·s² channels and a PixelShuffle head to ×s, added to A⁺y so that an untrained
network starts at the pseudo-inverse (Sønderby et al. found initialising with A⁺ important). With
`project=True` the output goes through the affine projection g = f + A⁺(y − A f), so A x̂ = y to
round-off. `features(y)` exposes the body's LR features (for `aff_blur`'s kernel generator).

Methods of `train_sr` (images in [0, 1]):
- `mse`: no projection, loss mean (x̂ − x)².
- `aff_mse`: the projection, the same loss.
- `aff_gan`: the projection, generator loss −log(D/(1 − D)) (`losses.affgan_generator_loss`) against
  `Discriminator`, instance noise σ_t = σ₀·max(0, 1 − t/T) on D's real and fake inputs (σ₀ = 0.1,
  T = steps: linear to 0 over the run, as the paper's 0.1 → 0).
- `soft_gan`: no projection, the same GAN term + `consistency_weight` × ‖A x̂ − y‖²/n (LR MSE).
  The weight (default 1000, so that an LR MSE of 1e-3 costs about one unit of the GAN term) is
  this harness's choice; the paper does not give one.
Both networks use Adam (betas 0.5/0.999 for GAN methods, the defaults otherwise).
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from ..errors import ConfigError, TrainingDiverged
from . import losses
from .operators import Operator

SR_METHODS = ("mse", "aff_mse", "aff_gan", "soft_gan")
PROJECTED = {"mse": False, "aff_mse": True, "aff_gan": True, "soft_gan": False}


class SRTrainingDiverged(TrainingDiverged):
    """A loss became NaN or infinite at `step`; `model` holds the parameters after step − 1."""

    def __init__(self, message: str, step: int, model: nn.Module, log: list[dict]):
        super().__init__(message)
        self.step, self.model, self.log = step, model, log


class SRNet(nn.Module):
    """LR conv body → PixelShuffle ×s, plus A⁺y, optionally projected onto {x : A x = y}."""

    def __init__(self, operator: Operator, channels: int, width: int = 64, depth: int = 4,
                 project: bool = False):
        super().__init__()
        self.operator, self.project = operator, project
        s = operator.factor
        layers = [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Conv2d(width, channels * s * s, 3, padding=1), nn.PixelShuffle(s))

    def features(self, y: torch.Tensor) -> torch.Tensor:
        """The body's LR features (N, width, h, w)."""
        return self.body(y)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        f = self.head(self.features(y))
        if self.project:  # (f + A⁺y) projected = f + A⁺(y − A f), as A A⁺ = I
            return f + self.operator.pinv(y - self.operator.A(f))
        return f + self.operator.pinv(y)


class Discriminator(nn.Module):
    """Three stride-2 conv layers (LeakyReLU 0.2), global average pooling, a linear logit."""

    def __init__(self, channels: int, width: int = 32):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * width, 2 * width, 3, 2, 1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def _check_inputs(method, hr_train, operator, steps, batch, lr):
    if method not in SR_METHODS:
        raise ConfigError(f"sr method {method!r} is unknown; expected one of {', '.join(SR_METHODS)}")
    if not (isinstance(hr_train, torch.Tensor) and hr_train.dim() == 4 and hr_train.is_floating_point()):
        raise ConfigError("sr hr_train must be a float tensor (N, C, H, W), got "
                          f"{type(hr_train).__name__} {tuple(getattr(hr_train, 'shape', ()))}")
    if tuple(hr_train.shape[-2:]) != operator.size:
        raise ConfigError(f"sr hr_train is {hr_train.shape[-2]}×{hr_train.shape[-1]} but the operator was "
                          f"built for {operator.size[0]}×{operator.size[1]}")
    if not torch.isfinite(hr_train).all():
        raise ConfigError("sr hr_train holds NaN or infinite values")
    for key, value in (("steps", steps), ("batch", batch)):
        if not isinstance(value, int) or value < 1:
            raise ConfigError(f"sr {key} {value!r} must be a positive integer")
    if batch > hr_train.shape[0]:
        raise ConfigError(f"sr batch {batch} exceeds the {hr_train.shape[0]} training images")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"sr lr {lr!r} must be a positive number")


def train_sr(method: str, hr_train: torch.Tensor, operator: Operator, steps: int, batch: int, lr: float,
             seed: int, width: int = 64, depth: int = 4, noise_start: float = losses.INSTANCE_NOISE_START,
             consistency_weight: float = 1000.0, log_every: int = 50) -> tuple[SRNet, list[dict]]:
    """Train the SR network for `method` on HR images in [0, 1]; returns (model, log rows).

    Each row (every `log_every` steps and the last): step, loss (the generator's), mse (to HR),
    lr_rel (‖A x̂ − y‖²/‖y‖² of the batch, before clamping), and for GAN methods d_loss and noise.
    A non-finite loss or gradient norm raises `SRTrainingDiverged` before the optimiser step, naming
    the step; its `model` then holds the last good parameters."""
    _check_inputs(method, hr_train, operator, steps, batch, lr)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n, channels = hr_train.shape[:2]
    model = SRNet(operator, channels, width, depth, project=PROJECTED[method])
    gan = method in ("aff_gan", "soft_gan")
    betas = (0.5, 0.999) if gan else (0.9, 0.999)
    opt = torch.optim.Adam(model.parameters(), lr=lr, betas=betas)
    if gan:
        disc = Discriminator(channels)
        opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=betas)
    log: list[dict] = []
    t0 = time.time()
    order, pos = torch.randperm(n, generator=gen), 0

    def diverged(step, what, value):
        return SRTrainingDiverged(
            f"[sr {method}] {what} became {value} at step {step}; stopped. The model holds the last good "
            f"parameters (after step {step - 1}). Lower lr.", step, model, log)

    def check_gradients(step, whose, net):
        norm = torch.nn.utils.clip_grad_norm_(net.parameters(), math.inf)  # the norm; clips nothing
        if not torch.isfinite(norm):
            raise diverged(step, f"{whose} gradient norm", norm.item())

    for step in range(1, steps + 1):
        if pos + batch > n:
            order, pos = torch.randperm(n, generator=gen), 0
        x = hr_train[order[pos:pos + batch]]
        pos += batch
        y = operator.A(x)
        x_hat = model(y)
        row = {}
        if gan:
            noise = losses.instance_noise_std(step - 1, steps, noise_start)
            d_loss = losses.discriminator_loss(disc(losses.add_instance_noise(x, noise, gen)),
                                               disc(losses.add_instance_noise(x_hat.detach(), noise, gen)))
            if not torch.isfinite(d_loss):
                raise diverged(step, "the discriminator loss", d_loss.item())
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            check_gradients(step, "the discriminator's", disc)
            opt_d.step()
            logits = disc(losses.add_instance_noise(x_hat, noise, gen))
            if method == "aff_gan":
                loss = losses.affgan_generator_loss(logits)
            else:
                loss = losses.soft_gan_generator_loss(logits, operator.A(x_hat), y, consistency_weight)
            row = {"d_loss": d_loss.item(), "noise": noise}
        else:
            loss = (x_hat - x).pow(2).mean()
        if not torch.isfinite(loss):
            raise diverged(step, "the generator loss" if gan else "the loss", loss.item())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        check_gradients(step, "the SR network's", model)
        opt.step()
        if step % log_every == 0 or step == steps:
            with torch.no_grad():
                lr_rel = ((operator.A(x_hat) - y).pow(2).sum() / y.pow(2).sum()).item()
                log.append({"step": step, "loss": loss.item(), "mse": (x_hat - x).pow(2).mean().item(),
                            "lr_rel": lr_rel, **row, "seconds": round(time.time() - t0, 3)})
    return model, log
