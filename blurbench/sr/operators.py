"""SR degradation operators y = A x on images (N, C, H, W), with Aᵀ, A⁺ and the affine projection.

Two operators, both acting on each channel alike:

- ``avgpool``: the mean of each s×s block. A Aᵀ = I/s², so A⁺ = s²Aᵀ (nearest-neighbour replication)
  and A A⁺ = I exactly.
- ``gaussian``: a circular convolution with a sampled, normalised Gaussian of standard deviation σ
  (taps on [−⌈4σ⌉, ⌈4σ⌉], wrapped onto the HR grid), then keeping every s-th pixel starting at 0.
  The default σ = (s − 1)/2 is scikit-image's anti-aliasing σ for a ×s reduction
  (``skimage.transform.resize(anti_aliasing=True)``): 1.5 px at s = 4. A Aᵀ is a circular
  convolution at LR resolution whose kernel is the HR autocorrelation of the blur taken every s
  pixels, so its eigenvalues are that kernel's DFT, and A⁺ = Aᵀ(A Aᵀ)⁻¹ is applied in the Fourier
  domain (as the explorable-SR CEM code does).

The projection of Sønderby et al., g(f, y) = f − A⁺(A f) + A⁺y, maps any f onto {x : A x = y}.
An operator whose A Aᵀ is singular or has a condition number above ``MAX_CONDITION`` is refused,
because the projection would then amplify round-off by that factor.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError

OPERATORS = ("avgpool", "gaussian")
MAX_CONDITION = 1e6


def default_sigma(factor: int) -> float:
    """scikit-image's anti-aliasing σ for a ×factor reduction, (factor − 1)/2."""
    return (factor - 1) / 2


class Operator:
    """A linear SR degradation for HR images of one size; see the module docstring."""

    name: str
    condition: float  # of A Aᵀ (eigenvalue ratio)

    def __init__(self, factor: int, size: tuple[int, int]):
        self.factor = factor
        self.size = tuple(size)
        self.lr_size = (size[0] // factor, size[1] // factor)

    def describe(self) -> dict:
        """The fields that identify the operator in a results row."""
        return {"operator": self.name, "factor": self.factor, "sigma": getattr(self, "sigma", None)}

    def _check(self, t: torch.Tensor, size: tuple[int, int], what: str) -> None:
        if t.dim() != 4 or tuple(t.shape[-2:]) != size:
            raise ValueError(f"{self.name} operator: {what} must have shape (N, C, {size[0]}, {size[1]}), "
                             f"got {tuple(t.shape)}")

    def A(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def At(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pinv(self, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def project(self, f: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """g(f, y) = f − A⁺(A f) + A⁺y = f + A⁺(y − A f): the HR image nearest f with A g = y."""
        return f + self.pinv(y - self.A(f))


class AvgPool(Operator):
    name = "avgpool"
    condition = 1.0

    def A(self, x):
        self._check(x, self.size, "x")
        return F.avg_pool2d(x, self.factor)

    def At(self, y):
        return self.pinv(y) / self.factor ** 2

    def pinv(self, y):
        """s²Aᵀ: each LR pixel replicated over its s×s block."""
        self._check(y, self.lr_size, "y")
        s = self.factor
        n, c, h, w = y.shape
        return y[:, :, :, None, :, None].expand(n, c, h, s, w, s).reshape(n, c, h * s, w * s)


class GaussianDownsample(Operator):
    name = "gaussian"

    def __init__(self, factor: int, size: tuple[int, int], sigma: float, max_condition: float):
        super().__init__(factor, size)
        self.sigma = float(sigma)
        H, W = self.size
        radius = math.ceil(4 * self.sigma)
        taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
        g = torch.exp(-0.5 * (taps / self.sigma) ** 2) if self.sigma > 0 else (taps == 0).double()
        g = g / g.sum()
        grid = torch.zeros(H, W, dtype=torch.float64)  # the blur wrapped onto the circular HR grid
        idx_h, idx_w = taps.long() % H, taps.long() % W
        grid.index_put_((idx_h[:, None].expand(-1, len(taps)), idx_w[None, :].expand(len(taps), -1)),
                        g[:, None] * g[None, :], accumulate=True)
        self.kernel_ft = torch.fft.rfft2(grid)  # K̂ on the HR grid
        autocorr = torch.fft.irfft2(self.kernel_ft.abs() ** 2, s=(H, W))
        eig = torch.fft.rfft2(autocorr[::factor, ::factor]).real  # eigenvalues of A Aᵀ
        lo, hi = eig.min().item(), eig.max().item()
        if lo <= hi * 1e-15:
            raise ConfigError(f"operator 'gaussian' (factor {factor}, sigma {sigma:g}): A Aᵀ is singular "
                              f"(smallest eigenvalue {lo:.3g}); lower sigma")
        self.condition = hi / lo
        if self.condition > max_condition:
            raise ConfigError(f"operator 'gaussian' (factor {factor}, sigma {sigma:g}): A Aᵀ has condition "
                              f"number {self.condition:.3g} > limit {max_condition:.3g}, so the projection "
                              f"would amplify round-off; lower sigma")
        self.inv_eig = 1.0 / eig
        self._cache: dict = {}

    def _spectra(self, t: torch.Tensor):
        """K̂ and 1/eig(A Aᵀ) in the tensor's precision and device, built once per pair."""
        key = (t.dtype, t.device)
        if key not in self._cache:
            cdtype = torch.complex128 if t.dtype == torch.float64 else torch.complex64
            self._cache[key] = (self.kernel_ft.to(t.device, cdtype), self.inv_eig.to(t.device, t.dtype))
        return self._cache[key]

    def A(self, x):
        self._check(x, self.size, "x")
        k, _ = self._spectra(x)
        s = self.factor
        return torch.fft.irfft2(torch.fft.rfft2(x) * k, s=self.size)[..., ::s, ::s]

    def At(self, y):
        self._check(y, self.lr_size, "y")
        k, _ = self._spectra(y)
        s = self.factor
        up = y.new_zeros(*y.shape[:-2], *self.size)
        up[..., ::s, ::s] = y
        return torch.fft.irfft2(torch.fft.rfft2(up) * k.conj(), s=self.size)

    def pinv(self, y):
        """Aᵀ(A Aᵀ)⁻¹ y, the inverse taken in the LR Fourier domain."""
        self._check(y, self.lr_size, "y")
        _, inv = self._spectra(y)
        return self.At(torch.fft.irfft2(torch.fft.rfft2(y) * inv, s=self.lr_size))


def make_operator(name: str, size: tuple[int, int], factor: int = 4, sigma: float | None = None,
                  max_condition: float = MAX_CONDITION) -> Operator:
    """The operator `name` for HR images of `size` (H, W); one-line ConfigError on bad input."""
    if name not in OPERATORS:
        raise ConfigError(f"sr operator {name!r} is unknown; expected one of {', '.join(OPERATORS)}")
    if not isinstance(factor, int) or isinstance(factor, bool) or factor < 1:
        raise ConfigError(f"sr factor {factor!r} must be a positive integer")
    if any(n % factor for n in size):
        raise ConfigError(f"sr factor {factor} does not divide the resolution {size[0]}×{size[1]}")
    if name == "avgpool":
        if sigma is not None:
            raise ConfigError(f"sr sigma {sigma!r} applies to the 'gaussian' operator only, not 'avgpool'")
        return AvgPool(factor, size)
    sigma = default_sigma(factor) if sigma is None else sigma
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma >= 0):
        raise ConfigError(f"sr sigma {sigma!r} must be a finite number ≥ 0")
    return GaussianDownsample(factor, size, sigma, max_condition)
