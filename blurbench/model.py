"""A convolutional VAE whose depth follows the image size: one stride-2 stage per halving down to 4×4.

The decoder is Gaussian with a fixed variance σ² (config `model.sigma2`); its mean is squashed
into [0, 1] by a sigmoid, the range of the data.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def stage_widths(resolution: int, base_width: int, max_width: int) -> list[int]:
    """Channel width of each down-sampling stage, doubling from `base_width`, capped at `max_width`."""
    if resolution < 8 or resolution & (resolution - 1):
        raise ValueError(f"resolution must be a power of two ≥ 8, got {resolution}")
    n = int(math.log2(resolution // 4))
    return [min(base_width * 2 ** i, max_width) for i in range(n)]


class ConvVAE(nn.Module):
    def __init__(self, channels: int, resolution: int, latent_dim: int = 32,
                 base_width: int = 32, max_width: int = 256):
        super().__init__()
        widths = stage_widths(resolution, base_width, max_width)
        self.image_shape = (channels, resolution, resolution)
        self.latent_dim = latent_dim

        enc, c_in = [], channels
        for w in widths:
            enc += [nn.Conv2d(c_in, w, 4, stride=2, padding=1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2)]
            c_in = w
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.to_stats = nn.Linear(widths[-1] * 16, 2 * latent_dim)

        self.from_latent = nn.Linear(latent_dim, widths[-1] * 16)
        dec = []
        rev = widths[::-1]
        for w_in, w_out in zip(rev, rev[1:] + [base_width]):
            dec += [nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1), nn.BatchNorm2d(w_out),
                    nn.LeakyReLU(0.2)]
        self.decoder = nn.Sequential(*dec, nn.Conv2d(base_width, channels, 3, padding=1))
        self._top = widths[-1]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-20, 10)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.from_latent(z).view(-1, self._top, 4, 4)
        return torch.sigmoid(self.decoder(h))

    def forward(self, x: torch.Tensor):
        """Returns (x_hat, mu, logvar, z) with z drawn by the reparameterisation trick."""
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.decode(z), mu, logvar, z

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.latent_dim, generator=generator).to(next(self.parameters()).device)
        return self.decode(z)


def kl_per_image(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) ‖ N(0, I)) of each image, summed over latent dimensions (nats): the rate."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) ‖ N(0, I)), summed over latent dimensions, mean over the batch."""
    return kl_per_image(mu, logvar).mean()


def build_model(spec) -> ConvVAE:
    """The VAE of a run (`config.RunSpec`: its `model` keys, channels and resolution)."""
    m = spec.model
    return ConvVAE(spec.channels, spec.resolution, latent_dim=m["latent_dim"],
                   base_width=m["base_width"], max_width=m["max_width"])


def pick_device(name: str) -> torch.device:
    """The torch device of config key `device`: auto (CUDA when there is one), cpu or cuda."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("config key 'device': cuda was asked for but no CUDA device is available")
    return torch.device(name)
