"""SR degradation operators y = A x on images (N, C, H, W), with Aᵀ, A⁺ and the affine projection.

Two operators, both acting on each channel alike:

- ``avgpool``: the mean of each s×s block. A Aᵀ = I/s², so A⁺ = s²Aᵀ (nearest-neighbour replication)
  and A A⁺ = I exactly.
- ``gaussian``: a circular convolution with a sampled, normalised Gaussian of standard deviation σ
  (taps on [−⌈4σ⌉, ⌈4σ⌉], wrapped onto the HR grid), then keeping every s-th pixel starting at 0.
  The default σ = (s − 1)/2 is scikit-image's anti-aliasing σ for a ×s reduction
  (``skimage.transform.resize(anti_aliasing=True)``): 1.5 px at s = 4. The blur is separable, so
  A x = G_H x G_Wᵀ with G the (n/s × n) matrix of the 1-D blur-and-stride along an axis. Each
  G Gᵀ is a circular convolution at LR resolution (its kernel is the 1-D autocorrelation of the
  blur taken every s pixels), so its eigenvalues are that kernel's DFT and its inverse is taken in
  the Fourier domain (as the explorable-SR CEM code does), once; then A⁺ = Aᵀ(A Aᵀ)⁻¹ =
  P_H y P_Wᵀ with P = Gᵀ(G Gᵀ)⁻¹. The eigenvalues of A Aᵀ are the products of the two axes'.
  Applying A, Aᵀ or A⁺ is two small matrix products per image (cheaper than 2-D FFTs at 64²).

The projection of Sønderby et al., g(f, y) = f − A⁺(A f) + A⁺y, maps any f onto {x : A x = y}.
An operator whose A Aᵀ is numerically singular (condition number ≥ 1/(n·eps), numpy's matrix_rank
tolerance, n the LR pixel count) or has a condition number above ``MAX_CONDITION`` is refused,
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
        return {"operator": self.name, "factor": self.factor, "sigma": getattr(self, "sigma", None),
                "condition": self.condition}

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


def _blur_stride_matrix(n: int, factor: int, g: torch.Tensor) -> torch.Tensor:
    """(n/factor × n) float64: row i is the circular convolution with taps g (centred) at pixel i·s."""
    radius = (len(g) - 1) // 2
    rows = torch.arange(0, n, factor)
    cols = (rows[:, None] - torch.arange(-radius, radius + 1)[None, :]) % n  # x[i·s − u]
    return torch.zeros(len(rows), n, dtype=torch.float64).scatter_add_(1, cols, g.expand(len(rows), -1))


def _circulant_inverse(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The eigenvalues of a symmetric circulant matrix (the DFT of its first column) and its inverse."""
    eig = torch.fft.fft(m[:, 0]).real
    col = torch.fft.ifft(1.0 / eig).real
    idx = torch.arange(len(col))
    return eig, col[(idx[:, None] - idx[None, :]) % len(col)]


class GaussianDownsample(Operator):
    name = "gaussian"

    def __init__(self, factor: int, size: tuple[int, int], sigma: float, max_condition: float):
        super().__init__(factor, size)
        self.sigma = float(sigma)
        radius = math.ceil(4 * self.sigma)
        taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
        g = torch.exp(-0.5 * (taps / self.sigma) ** 2) if self.sigma > 0 else (taps == 0).double()
        g = g / g.sum()
        self.G, self.P, self.condition = [], [], 1.0
        for n in self.size:
            G = _blur_stride_matrix(n, factor, g)
            eig, inv = _circulant_inverse(G @ G.T)
            lo, hi = eig.min().item(), eig.max().item()
            # A Aᵀ = (G_H G_Hᵀ) ⊗ (G_W G_Wᵀ): the eigenvalue ratios multiply
            self.condition *= hi / lo if lo > 0 else math.inf
            self.G.append(G)
            self.P.append(G.T @ inv)
        rank_limit = 1 / (math.prod(self.lr_size) * torch.finfo(torch.float64).eps)  # numpy's matrix_rank tol
        if self.condition >= rank_limit:
            raise ConfigError(f"operator 'gaussian' (factor {factor}, sigma {sigma:g}): A Aᵀ is numerically "
                              f"singular (condition number {self.condition:.3g} ≥ {rank_limit:.3g}); lower sigma")
        if self.condition > max_condition:
            raise ConfigError(f"operator 'gaussian' (factor {factor}, sigma {sigma:g}): A Aᵀ has condition "
                              f"number {self.condition:.3g} > limit {max_condition:.3g}, so the projection "
                              f"would amplify round-off; lower sigma")
        self._cache: dict = {}

    def _matrices(self, t: torch.Tensor):
        """G_H, G_W, P_H, P_W in the tensor's dtype and device, built once per pair."""
        key = (t.dtype, t.device)
        if key not in self._cache:
            self._cache[key] = [m.to(t.device, t.dtype) for m in (*self.G, *self.P)]
        return self._cache[key]

    def A(self, x):
        self._check(x, self.size, "x")
        gh, gw, _, _ = self._matrices(x)
        return gh @ x @ gw.T

    def At(self, y):
        self._check(y, self.lr_size, "y")
        gh, gw, _, _ = self._matrices(y)
        return gh.T @ y @ gw

    def pinv(self, y):
        """Aᵀ(A Aᵀ)⁻¹ y = P_H y P_Wᵀ."""
        self._check(y, self.lr_size, "y")
        _, _, ph, pw = self._matrices(y)
        return ph @ y @ pw.T


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
