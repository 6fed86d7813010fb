"""Conditional coupling layers (affine, soft-clamped affine, rational-quadratic spline) and a flow of them.

Own implementation rather than nflows 0.14, decided by measurement on torch 2.14.1: nflows'
affine and RQ-spline couplings with context do construct and invert there (round trip ~1e-7 in
float32; only NaiveLinear/random_orthogonal fail), and its spline agrees with ours to 1e-10, but its
affine eps is fixed at 1e-3 in code (the reference uses 1e-4), its spline coupling has no
condition-driven shift, and its spline step is slower: benchmarks/bench_flow_step.py --nflows, same
conditioner, CPU ms/step, affine 9.5 (nflows 10.1), spline 19.3 (nflows 32.4).

Convention: `forward` maps data x to latent z and returns log|det ∂z/∂x| per sample; `inverse`
maps z to x (sampling) and returns log|det ∂x/∂z|. Inputs are (N, D) vectors or (N, C, H, W)
images; dimension 1 is split in two halves, the first (x_a) passes unchanged and, with the context,
parameterises the transform of the second (x_b).

- affine (SRFlow form): z_b = s·x_b + t, s = sigmoid(h + 2) + eps (eps = 1e-4 as the reference);
  the inverse x_b = (z_b − t)/s amplifies by up to 1/eps = 1e4 per layer, and t is unbounded.
- affine_clamped (FrEIA's soft clamp): log s = (2·clamp/π)·atan(h/clamp), so s ∈ (e^−clamp, e^clamp);
  t is still unbounded.
- spline: z_b = RQS(x_b) + t, with RQS a monotone rational-quadratic spline (Durkan et al. 2019) of
  `bins` bins on [−B, B] (identity outside, derivative 1 at ±B, interior derivatives ≥ 1e-3), and
  t = shift_bound·tanh(g). What bounds the output: RQS⁻¹ maps [−B, B] into itself and is the
  identity outside, so one inverse layer gives |x_b| ≤ max(B, |z_b| + shift_bound), and a flow of K
  spline couplings with permutations gives ‖x‖∞ ≤ max(B, ‖z‖∞) + K·shift_bound whatever the
  condition. The derivative floor alone would not bound it: an unbounded shift passes straight
  through the identity tails.

Near-singular transforms: the float32 inverse loses accuracy as 1/s for the affine (with s near
1e-4 and |t| ~ 1, ~1e-3 absolute) and as 1/RQS' for the spline (the 1e-3 floor holds at the knots;
inside a bin of minimal height the slope can fall to ~1e-6, and a float32 round trip then errs by
~1e-2). The round-trip tests use in-distribution weights, where neither happens.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from blurbench.errors import ConfigError

COUPLINGS = ("affine", "affine_clamped", "spline")
AFFINE_EPS = 1e-4  # the reference's scale floor (nflows uses 1e-3)
MIN_DERIVATIVE = 1e-3
MIN_BIN = 1e-3  # smallest bin width/height, as a fraction of the interval
_DERIV_OFFSET = math.log(math.expm1(1 - MIN_DERIVATIVE))  # zero logits -> derivative 1 (identity)


def check_coupling(kind: str, bins: int = 2, tail_bound: float = 0.5) -> None:
    """Raise one clear ConfigError line for an unknown coupling, bins < 2 or a tail bound ≤ 0."""
    if kind not in COUPLINGS:
        raise ConfigError(f"coupling: unknown coupling {kind!r}; expected one of {', '.join(COUPLINGS)}")
    if kind == "spline":
        if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
            raise ConfigError(f"bins: {bins!r} is not an integer ≥ 2 (the spline needs at least 2 bins)")
        if not (isinstance(tail_bound, (int, float)) and math.isfinite(tail_bound) and tail_bound > 0):
            raise ConfigError(f"tail_bound: {tail_bound!r} is not a finite number > 0")


def check_temperature(temperature: float) -> None:
    """Raise one clear ConfigError line for a sampling temperature that is not a finite number > 0."""
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise ConfigError(f"temperature: {temperature!r} is not a finite number > 0")


def _sum_per_sample(t: torch.Tensor) -> torch.Tensor:
    return t.flatten(1).sum(1)


def _knots(logits: torch.Tensor, bound: float) -> list[torch.Tensor]:
    """Knot positions −B = k_0 < … < k_bins = B (each bin ≥ MIN_BIN·2B wide) from logits (bins, ...)."""
    bins = logits.shape[0]
    size = (MIN_BIN + (1 - MIN_BIN * bins) * torch.softmax(logits, dim=0)) * (2 * bound)
    knots = [torch.full_like(size[0], -bound)]
    for j in range(bins - 1):
        knots.append(knots[-1] + size[j])
    return knots + [torch.full_like(size[0], bound)]


def rq_spline(x: torch.Tensor, uw: torch.Tensor, uh: torch.Tensor, ud: torch.Tensor,
              bound: float, inverse: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Monotone RQ spline on [−bound, bound], identity outside; returns (y, log|dy/dx| elementwise).

    uw, uh: (bins, *x.shape) width and height logits; ud: (bins − 1, *x.shape) interior derivative
    logits (the end derivatives are 1, so the spline joins the identity tails smoothly). The bins
    lead, so every step is an elementwise op over contiguous tensors: with 2 bins, forward and
    backward took 2.2× less CPU than a searchsorted/gather along a trailing bins dimension.
    """
    inside = (x >= -bound) & (x <= bound)
    xc = x.clamp(-bound, bound)
    xk, yk = _knots(uw, bound), _knots(uh, bound)
    one = torch.ones_like(xc)
    d = [one] + list(MIN_DERIVATIVE + F.softplus(ud + _DERIV_OFFSET)) + [one]

    # the bin of each element: the last knot at or below it (of x forward, of y inverse)
    search = yk if inverse else xk
    x0, x1, y0, y1, d0, d1 = xk[0], xk[1], yk[0], yk[1], d[0], d[1]
    for j in range(1, len(xk) - 1):
        m = xc >= search[j]
        x0, x1 = torch.where(m, xk[j], x0), torch.where(m, xk[j + 1], x1)
        y0, y1 = torch.where(m, yk[j], y0), torch.where(m, yk[j + 1], y1)
        d0, d1 = torch.where(m, d[j], d0), torch.where(m, d[j + 1], d1)
    w, h = x1 - x0, y1 - y0
    s = h / w
    if inverse:
        dy = xc - y0
        a = h * (s - d0) + dy * (d1 + d0 - 2 * s)
        b = h * d0 - dy * (d1 + d0 - 2 * s)
        c = -s * dy
        disc = (b * b - 4 * a * c).clamp(min=0)
        xi = ((2 * c) / (-b - disc.sqrt())).clamp(0, 1)
        out = x0 + xi * w
    else:
        xi = ((xc - x0) / w).clamp(0, 1)
    omx = xi * (1 - xi)
    denom = s + (d1 + d0 - 2 * s) * omx
    if not inverse:
        out = y0 + h * (s * xi * xi + d0 * omx) / denom
    logderiv = 2 * torch.log(s) + torch.log(d1 * xi * xi + 2 * s * omx + d0 * (1 - xi) ** 2) - 2 * torch.log(denom)
    if inverse:
        logderiv = -logderiv
    return torch.where(inside, out, x), torch.where(inside, logderiv, torch.zeros_like(logderiv))


def mlp_conditioner(in_features: int, out_features: int, hidden: int = 64) -> nn.Module:
    """Two hidden ReLU layers; the last layer starts at zero so every coupling starts near the identity."""
    net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                        nn.Linear(hidden, out_features))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


def conv_conditioner(in_channels: int, out_channels: int, hidden: int = 32) -> nn.Module:
    """3×3 – 1×1 – 3×3 convolutions (Glow's coupling net); the last starts at zero."""
    net = nn.Sequential(nn.Conv2d(in_channels, hidden, 3, padding=1), nn.ReLU(),
                        nn.Conv2d(hidden, hidden, 1), nn.ReLU(),
                        nn.Conv2d(hidden, out_channels, 3, padding=1))
    nn.init.zeros_(net[-1].weight)
    nn.init.zeros_(net[-1].bias)
    return net


class ConditionalCoupling(nn.Module):
    """One conditional coupling of kind `affine`, `affine_clamped` or `spline` (see the module doc)."""

    def __init__(self, kind: str, channels: int, context_channels: int, *, image: bool = False,
                 hidden: int = 64, bins: int = 2, tail_bound: float = 0.5, shift_bound: float = 1.0,
                 clamp: float = 2.0, eps: float = AFFINE_EPS):
        super().__init__()
        check_coupling(kind, bins, tail_bound)
        if channels < 2:
            raise ConfigError(f"channels: {channels} cannot be split in two halves; expected ≥ 2")
        self.kind, self.bins, self.tail_bound = kind, bins, float(tail_bound)
        self.shift_bound, self.clamp, self.eps = float(shift_bound), float(clamp), float(eps)
        self.split = channels // 2
        self.n_b = channels - self.split
        self.n_params = 3 * bins if kind == "spline" else 2
        make = conv_conditioner if image else mlp_conditioner
        self.net = make(self.split + context_channels, self.n_params * self.n_b, hidden)

    def _params(self, x_a: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Conditioner output as (n_params, N, n_b, ...): the parameters of each transformed element, leading."""
        p = self.net(torch.cat([x_a, context], dim=1))
        return p.unflatten(1, (self.n_params, self.n_b)).movedim(1, 0)

    def _log_scale(self, h: torch.Tensor) -> torch.Tensor:
        if self.kind == "affine":
            return torch.log(torch.sigmoid(h + 2) + self.eps)
        return (2 * self.clamp / math.pi) * torch.atan(h / self.clamp)

    def _transform(self, x: torch.Tensor, context: torch.Tensor, inverse: bool):
        x_a, x_b = x[:, :self.split], x[:, self.split:]
        p = self._params(x_a, context)
        if self.kind == "spline":
            nb = self.bins
            shift = self.shift_bound * torch.tanh(p[-1])
            uw, uh, ud = p[:nb], p[nb:2 * nb], p[2 * nb:-1]
            if inverse:
                y, logd = rq_spline(x_b - shift, uw, uh, ud, self.tail_bound, inverse=True)
            else:
                y, logd = rq_spline(x_b, uw, uh, ud, self.tail_bound)
                y = y + shift
        else:
            log_s, shift = self._log_scale(p[0]), p[1]
            if inverse:
                y, logd = (x_b - shift) * torch.exp(-log_s), -log_s
            else:
                y, logd = x_b * torch.exp(log_s) + shift, log_s
        return torch.cat([x_a, y], dim=1), _sum_per_sample(logd)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> (z, log|det ∂z/∂x|) per sample."""
        return self._transform(x, context, inverse=False)

    def inverse(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z -> (x, log|det ∂x/∂z|) per sample."""
        return self._transform(z, context, inverse=True)


class ConditionalFlow(nn.Module):
    """Couplings, each after a fixed reversal of dimension 1 (so the halves alternate), over a N(0, I) base."""

    def __init__(self, couplings: list[ConditionalCoupling]):
        super().__init__()
        self.couplings = nn.ModuleList(couplings)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x -> (z, log|det ∂z/∂x|); a reversal's log-det is 0."""
        logdet = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        for layer in self.couplings:
            x, ld = layer(x.flip(1), context)
            logdet = logdet + ld
        return x, logdet

    def inverse(self, z: torch.Tensor, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z -> (x, log|det ∂x/∂z|), the layers in reverse."""
        logdet = torch.zeros(z.shape[0], dtype=z.dtype, device=z.device)
        for layer in reversed(self.couplings):
            z, ld = layer.inverse(z, context)
            z = z.flip(1)
            logdet = logdet + ld
        return z, logdet

    def log_prob(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """log p(x | context) in nats per sample, base N(0, I)."""
        z, logdet = self(x, context)
        d = z[0].numel()
        return -0.5 * _sum_per_sample(z * z) - 0.5 * d * math.log(2 * math.pi) + logdet

    def sample(self, context: torch.Tensor, shape: tuple[int, ...], temperature: float = 0.9,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """One sample per context row, z ~ N(0, temperature² I) of per-sample `shape`, unclamped."""
        check_temperature(temperature)
        z = temperature * torch.randn((context.shape[0], *shape), generator=generator,
                                      dtype=context.dtype, device=context.device)
        return self.inverse(z, context)[0]


def build_flow(kind: str, channels: int, context_channels: int, n_couplings: int, *, image: bool = False,
               seed: int = 0, **coupling_kw) -> ConditionalFlow:
    """A ConditionalFlow of `n_couplings` couplings of one kind, weights seeded; keywords go to each coupling."""
    with torch.random.fork_rng(devices=[]):  # seeded weights without moving the caller's generator
        torch.manual_seed(seed)
        layers = [ConditionalCoupling(kind, channels, context_channels, image=image, **coupling_kw)
                  for _ in range(n_couplings)]
    return ConditionalFlow(layers)
