"""GAN losses of Sønderby et al. (AffGAN, SoftGAN), on discriminator logits l = log(D/(1 − D)).

- Generator, AffGAN: −log(D/(1 − D)) = −l. With the optimal discriminator l* = log p − log q its
  gradient is that of KL[q‖p] (the score term E_q[∇_θ log q_θ] vanishes), which is the paper's point.
- Generator, non-saturating: −log D = softplus(−l) (Goodfellow's, kept for comparison).
- Discriminator: the logistic loss softplus(−l_real) + softplus(l_fake), minimised at l* above.
- SoftGAN's generator: the AffGAN term plus `weight` × the LR consistency MSE ‖A x̂ − y‖²/n, the soft
  version of the projection.
- Instance noise (Sønderby et al., 2017): N(0, σ_t²) added to D's real and fake inputs, with
  σ_t = σ₀·max(0, 1 − t/T) at step t = 0, 1, … (T = `anneal_steps`, by default the whole run): linear
  from σ₀ to 0. The paper anneals 0.1 → 0 on ImageNet (images in [0, 1]); σ₀ = 0.1 is the default.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

INSTANCE_NOISE_START = 0.1


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction {reduction!r} is unknown; expected 'mean' or 'none'")


def affgan_generator_loss(fake_logits: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """−log(D/(1 − D)) = −logit: its gradient is ∇KL[q‖p] at the optimal discriminator."""
    return _reduce(-fake_logits, reduction)


def nonsaturating_generator_loss(fake_logits: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """−log D = softplus(−logit), the usual non-saturating generator loss."""
    return _reduce(F.softplus(-fake_logits), reduction)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Logistic loss −log D(real) − log(1 − D(fake)); its minimiser is logit = log p − log q."""
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def lr_consistency(a_x_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """‖A x̂ − y‖²/n, the mean over LR pixels (the caller applies A, so any operator fits)."""
    return (a_x_hat - y).pow(2).mean()


def soft_gan_generator_loss(fake_logits: torch.Tensor, a_x_hat: torch.Tensor, y: torch.Tensor,
                            weight: float) -> torch.Tensor:
    """SoftGAN: the AffGAN generator term plus `weight` × the LR consistency MSE, no projection."""
    return affgan_generator_loss(fake_logits) + weight * lr_consistency(a_x_hat, y)


def instance_noise_std(step: int, anneal_steps: int, start: float = INSTANCE_NOISE_START) -> float:
    """σ_t = start · max(0, 1 − step/anneal_steps): linear from `start` at step 0 to 0."""
    if anneal_steps < 1:
        raise ValueError(f"anneal_steps {anneal_steps!r} must be ≥ 1")
    return start * max(0.0, 1.0 - step / anneal_steps)


def add_instance_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """x + N(0, std²) noise, drawn for real and fake inputs of D alike (x unchanged when std is 0)."""
    if std == 0:
        return x
    return x + std * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
