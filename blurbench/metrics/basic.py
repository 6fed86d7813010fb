"""Pixel metrics of the protocol: MSE, PSNR (data range 1) and SSIM (Gaussian window, σ = 1.5).

SSIM follows skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
use_sample_covariance=False, data_range=1), computed in torch for the whole batch; a test
cross-checks it against scikit-image.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def mse_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (x - y).pow(2).flatten(1).mean(1)


def psnr_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """10·log10(1 / MSE_i); a perfect reconstruction gives +inf, as scikit-image does."""
    return 10 * torch.log10(1.0 / mse_per_image(x, y))


def _gaussian_window(sigma: float, truncate: float = 3.5, dtype=torch.float64) -> torch.Tensor:
    # scikit-image: win_size = 2 * int(truncate * sigma + 0.5) + 1 -> 11 for sigma 1.5
    radius = int(truncate * sigma + 0.5)
    t = torch.arange(-radius, radius + 1, dtype=dtype)
    g = torch.exp(-0.5 * (t / sigma) ** 2)
    return g / g.sum()


def ssim_per_image(x: torch.Tensor, y: torch.Tensor, sigma: float = 1.5, k1: float = 0.01,
                   k2: float = 0.03, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM per image, averaged over channels; 'valid' region only, like scikit-image."""
    x, y = x.double(), y.double()
    n, c, h, w = x.shape
    g = _gaussian_window(sigma)
    size = g.numel()
    kh = g.view(1, 1, size, 1).repeat(c, 1, 1, 1)
    kw = g.view(1, 1, 1, size).repeat(c, 1, 1, 1)

    def blur(t):
        return F.conv2d(F.conv2d(t, kh, groups=c), kw, groups=c)

    ux, uy = blur(x), blur(y)
    vx = blur(x * x) - ux * ux
    vy = blur(y * y) - uy * uy
    vxy = blur(x * y) - ux * uy
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    # scikit-image crops (win_size - 1) // 2 pixels on each side of the full-size map; a valid
    # convolution already removes exactly that border.
    return s.flatten(2).mean(2).mean(1).float()
