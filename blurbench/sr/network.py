"""The SR network shared by every SR method, its discriminator, and `train_sr`.

`SRNet`: a conv body at LR resolution (a 3×3 conv to `width` channels, then `depth` 3×3 conv + ReLU
layers), a 3×3 conv to C·s² channels and a PixelShuffle head to ×s, added to A⁺y so that an untrained
network starts at the pseudo-inverse (Sønderby et al. found initialising with A⁺ important). With
`project=True` the output goes through the affine projection g = f + A⁺(y − A f), so A x̂ = y to
round-off. `features(y)` exposes the body's LR features (for `aff_blur`'s kernel generator).

The methods are plugins (`methods/<name>.py` with TASK = "sr", `blurbench.sr.method_api`): `mse`,
`aff_mse`, `aff_gan`, `soft_gan`, `aff_blur`. `SRStep` is one optimiser step of any of them (the
discriminator's first, for adversarial ones), the one step `train_sr` (in memory) and the workflow's
resumable SR training share. Both networks use Adam (betas 0.5/0.999 for adversarial methods, the
defaults otherwise).
"""

from __future__ import annotations

import math
import time

import torch
from torch import nn

from .. import plugins
from ..errors import ConfigError, TrainingDiverged
from . import losses
from .operators import Operator

SR_METHODS = ("mse", "aff_mse", "aff_gan", "soft_gan", "aff_blur")


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
        return self.from_features(self.features(y), y)

    def from_features(self, features: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The HR output from the body's features of `y`."""
        f = self.head(features)
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


def _sr_plugin(name: str):
    module = plugins.load_method(name)
    if plugins.task_of(module) != "sr":
        raise ConfigError(f"sr method {name!r} is a {plugins.task_of(module)} method; expected one of "
                          f"{', '.join(SR_METHODS)}")
    return module


def method_class(name: str) -> type:
    """The `Method` class of the SR method plugin `name` (its `project` and `adversarial` flags)."""
    return _sr_plugin(name).Method


def load_method(name: str, params: dict | None = None, **kwargs):
    """The SR method plugin `name` built with its PARAMS updated by `params` (validated)."""
    module = _sr_plugin(name)
    merged = {**module.PARAMS, **(params or {})}
    module.validate(merged)
    return module.Method(merged, **kwargs)


class SRStep:
    """One training step of an SR method: the network, its method, the discriminator if adversarial,
    and their optimisers. `state_dict` holds everything a resumed run needs but the random state."""

    def __init__(self, method_name: str, params: dict, operator: Operator, channels: int, steps: int,
                 lr: float, width: int = 64, depth: int = 4, device=torch.device("cpu")):
        self.method = load_method(method_name, params, operator=operator, channels=channels, steps=steps,
                                  width=width, device=device)
        self.name, self.operator, self.steps = method_name, operator, steps
        self.model = SRNet(operator, channels, width, depth, project=self.method.project).to(device)
        betas = (0.5, 0.999) if self.method.adversarial else (0.9, 0.999)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, betas=betas)
        self.disc = Discriminator(channels).to(device) if self.method.adversarial else None
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=lr, betas=betas) if self.disc else None

    def _diverged(self, step, what, value, log):
        return SRTrainingDiverged(
            f"[sr {self.name}] {what} became {value} at step {step + 1}; stopped. The model holds the last good "
            f"parameters (after step {step}). Lower lr.", step + 1, self.model, log)

    def _check_gradients(self, step, whose, net, log):
        norm = torch.nn.utils.clip_grad_norm_(net.parameters(), math.inf)  # the norm; clips nothing
        if not torch.isfinite(norm):
            raise self._diverged(step, f"{whose} gradient norm", norm.item(), log)

    def __call__(self, x: torch.Tensor, step: int, gen: torch.Generator, log: list) -> dict:
        """Train on HR batch `x` at 0-based `step`; the values to log (floats). A non-finite loss or
        gradient raises SRTrainingDiverged before the optimiser step that would use it."""
        y = self.operator.A(x)
        features = self.model.features(y)
        x_hat = self.model.from_features(features, y)
        row, fake_logits = {}, None
        if self.disc is not None:
            noise = losses.instance_noise_std(step, self.steps, self.method.noise_start)
            d_loss = losses.discriminator_loss(self.disc(losses.add_instance_noise(x, noise, gen)),
                                               self.disc(losses.add_instance_noise(x_hat.detach(), noise, gen)))
            if not torch.isfinite(d_loss):
                raise self._diverged(step, "the discriminator loss", d_loss.item(), log)
            self.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            self._check_gradients(step, "the discriminator's", self.disc, log)
            self.opt_d.step()
            fake_logits = self.disc(losses.add_instance_noise(x_hat, noise, gen))
            row = {"d_loss": d_loss.item(), "noise": noise}
        loss, logs = self.method.loss(x, x_hat, y, features, step, fake_logits)
        if not torch.isfinite(loss):
            raise self._diverged(step, "the generator loss" if self.disc else "the loss", loss.item(), log)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self._check_gradients(step, "the SR network's", self.model, log)
        self.opt.step()
        logs.update(self.method.after_step(x, x_hat.detach(), features.detach(), step))
        with torch.no_grad():
            lr_rel = ((self.operator.A(x_hat) - y).pow(2).sum() / y.pow(2).sum()).item()
        return {"loss": loss.item(), **{k: float(v) for k, v in logs.items()}, "lr_rel": lr_rel, **row}

    def state_dict(self) -> dict:
        state = {"model": self.model.state_dict(), "opt": self.opt.state_dict(), "method": self.method.state_dict()}
        if self.disc is not None:
            state.update(disc=self.disc.state_dict(), opt_d=self.opt_d.state_dict())
        return state

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.method.load_state_dict(state["method"])
        if self.disc is not None:
            self.disc.load_state_dict(state["disc"])
            self.opt_d.load_state_dict(state["opt_d"])


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
             seed: int, width: int = 64, depth: int = 4, params: dict | None = None,
             log_every: int = 50) -> tuple[SRNet, list[dict]]:
    """Train the SR network for `method` (its plugin's PARAMS updated by `params`) on HR images in
    [0, 1], in memory; returns (model, log rows).

    Each row (every `log_every` steps and the last): step, loss (the generator's), mse (to HR),
    lr_rel (‖A x̂ − y‖²/‖y‖² of the batch, before clamping), the method's own values, and for
    adversarial methods d_loss and noise. A non-finite loss or gradient norm raises
    `SRTrainingDiverged` before the optimiser step, naming the step; its `model` then holds the last
    good parameters."""
    _check_inputs(method, hr_train, operator, steps, batch, lr)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    n, channels = hr_train.shape[:2]
    sr = SRStep(method, params or {}, operator, channels, steps, lr, width, depth)
    log: list[dict] = []
    t0 = time.time()
    order, pos = torch.randperm(n, generator=gen), 0
    for step in range(steps):
        if pos + batch > n:
            order, pos = torch.randperm(n, generator=gen), 0
        x = hr_train[order[pos:pos + batch]]
        pos += batch
        row = sr(x, step, gen, log)
        if (step + 1) % log_every == 0 or step + 1 == steps:
            log.append({"step": step + 1, **row, "seconds": round(time.time() - t0, 3)})
    return sr.model, log
