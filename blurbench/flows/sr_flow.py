"""A conditional normalising flow for ×2^levels super-resolution under exact average pooling (SRFlow-style).

Why the null space: with y = A x the s×s average pooling (s = 2^levels), every HR image consistent with
y is x = A⁺y + r with r in the null space of A, so p(x | y) lives on an affine subspace of dimension
n − n/s². A density over all n pixels (SRFlow models x given the LR) is degenerate there: its
likelihood can grow without bound by collapsing onto the subspace. This flow models the null-space
coordinates only, so its densities are proper and every output satisfies A x̂ = y by construction (up to
float round-off, whatever the latent), with no projection step.

Coordinates: the orthonormal 2×2 Haar transform (`haar`, log|det| = 0) applied `levels` times. Level l
splits the coarse band ll_{l−1} (ll_0 = x) into ll_l and three detail bands d_l; the coarsest band is
ll_L = s·y exactly, and (d_L, …, d_1) is an orthonormal basis of the null space. The flow factorises
p(d_L | y) · ∏_{l<L} p(d_l | ll_l, y), where ll_l = ihaar(ll_{l+1}, d_{l+1}) is rebuilt from y and the
coarser details (the chain rule over the pyramid, exact). Each factor is a `ConditionalFlow` of K
couplings on the 3C detail channels, over a N(0, I) base; its context is the LR conditioner's feature
maps (nearest-resized to the level) concatenated with the level's coarse band. Everything is ordered
coarsest level first: `flows[0]` models d_L.

Dequantisation and bits per dim: training adds u ~ U(−δ/2, δ/2)^D to the null-space coordinates (not to
x, so y is unchanged), δ = 1/256, D = C·H·W·(1 − 1/s²). Treating each coordinate as discretised in bins
of width δ, −log₂ P(bin) ≈ −log₂ p(d | y) − D·log₂ δ, so

    bits/dim = (−log p(d | y) / ln 2) / D − log₂ δ     (= … + 8 for δ = 1/256),

and E_u[−log p(d + u | y)] − D·log δ is an upper bound on −log P(bin) (Jensen). This is a convention on
the null-space coordinates: 8-bit pixels put those coordinates on a rotated lattice whose cells are
s^(n/s²) times larger than δ^D, which would lower the figure by log₂(s)/(s² − 1) bits/dim (0.13 at ×4).

Scale: each level starts (data side) with an ActNorm, a learned per-channel affine map
d' = (d − b)·e^(−log σ) initialised from the first training batch (`initialise`: b the bands' mean,
σ their standard deviation), as in SRFlow/Glow. It is needed: the SRFlow affine scale
s = sigmoid(h + 2) + eps ≤ 1 + eps can only contract in the data-to-latent direction, so without a
scale in front the affine flow could not reach a density above N(0, I)'s peak (NLL ≥ ½ log 2π nats/dim)
nor sample detail bands tighter than N(0, T²); natural images' details are far smaller. ActNorm does
not see the condition, so it leaves the spline's bound condition-free: per channel
|d| ≤ σ·(max(B, ‖z‖∞) + K·shift_bound) + |b| (`spline_bound`).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from blurbench.errors import ConfigError
from blurbench.flows.coupling import ConditionalCoupling, ConditionalFlow, check_coupling, check_temperature

DEQUANT = 1 / 256


def haar(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthonormal 2×2 Haar of (N, C, H, W): (ll (N, C, H/2, W/2), d (N, 3C, H/2, W/2)), bands stacked band-major."""
    a, b, c, e = x[..., 0::2, 0::2], x[..., 0::2, 1::2], x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    d = torch.cat([(a - b + c - e) / 2, (a + b - c - e) / 2, (a - b - c + e) / 2], dim=1)
    return (a + b + c + e) / 2, d


def ihaar(ll: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """The inverse of `haar` (its transpose, the transform being orthonormal)."""
    h, v, g = d.chunk(3, dim=1)
    a, b = (ll + h + v + g) / 2, (ll - h + v - g) / 2
    c, e = (ll + h - v - g) / 2, (ll - h - v + g) / 2
    top, bottom = torch.stack([a, b], -1).flatten(-2), torch.stack([c, e], -1).flatten(-2)
    return torch.stack([top, bottom], -2).flatten(-3, -2)


class ActNorm(nn.Module):
    """d' = (d − b)·e^(−log σ) per channel, log|det| = −Σ log σ per pixel; `initialise` sets b, σ from data."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialised", torch.tensor(False))

    @torch.no_grad()
    def initialise(self, d: torch.Tensor) -> None:
        """b = the channels' mean, σ = their standard deviation (floored at 1e-6) over a batch of bands."""
        self.bias.copy_(d.mean(dim=(0, 2, 3)))
        self.log_scale.copy_(d.std(dim=(0, 2, 3)).clamp_min(1e-6).log())
        self.initialised.fill_(True)

    def _shape(self, t: torch.Tensor) -> torch.Tensor:
        return t.view(1, -1, 1, 1)

    def forward(self, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = -self.log_scale.sum() * d.shape[2] * d.shape[3]
        return (d - self._shape(self.bias)) * self._shape(torch.exp(-self.log_scale)), logdet.expand(d.shape[0])

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        return u * self._shape(torch.exp(self.log_scale)) + self._shape(self.bias)


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name}: {value!r} is not an integer ≥ 1")


class SRFlow(nn.Module):
    """p(null-space coordinates of x | y) for y = AvgPool_s(x), s = 2^levels; see the module doc."""

    def __init__(self, kind: str, channels: int, *, levels: int = 2, n_couplings: int = 4, hidden: int = 32,
                 features: int = 16, seed: int = 0, **coupling_kw):
        super().__init__()
        for name, value in (("channels", channels), ("levels", levels), ("n_couplings", n_couplings),
                            ("hidden", hidden), ("features", features)):
            _check_positive_int(name, value)
        check_coupling(kind, coupling_kw.get("bins", 2), coupling_kw.get("tail_bound", 0.5))
        self.kind, self.channels, self.levels, self.factor = kind, channels, levels, 2 ** levels
        with torch.random.fork_rng(devices=[]):  # seeded weights without moving the caller's generator
            torch.manual_seed(seed)
            self.conditioner = nn.Sequential(nn.Conv2d(channels, hidden, 3, padding=1), nn.ReLU(),
                                             nn.Conv2d(hidden, features, 3, padding=1), nn.ReLU())
            self.norms = nn.ModuleList(ActNorm(3 * channels) for _ in range(levels))
            self.flows = nn.ModuleList(
                ConditionalFlow([ConditionalCoupling(kind, 3 * channels, features + channels, image=True,
                                                     hidden=hidden, **coupling_kw) for _ in range(n_couplings)])
                for _ in range(levels))

    def _check(self, t: torch.Tensor, what: str, divisible: bool) -> None:
        if t.dim() != 4 or t.shape[1] != self.channels:
            raise ConfigError(f"{what}: shape {tuple(t.shape)} is not (N, {self.channels}, H, W)")
        if divisible and (t.shape[2] % self.factor or t.shape[3] % self.factor):
            raise ConfigError(f"{what}: image size {t.shape[2]}×{t.shape[3]} is not divisible by the factor "
                              f"{self.factor} (= 2**levels)")

    def lr(self, x: torch.Tensor) -> torch.Tensor:
        """y = AvgPool_s(x), the condition."""
        self._check(x, "x", divisible=True)
        return F.avg_pool2d(x, self.factor)

    def _condition(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """y, or AvgPool_s(x) when None; a given y must have x's LR shape."""
        lr = self.lr(x)
        if y is None:
            return lr
        if y.shape != lr.shape:
            raise ConfigError(f"y: shape {tuple(y.shape)} does not match x's LR shape {tuple(lr.shape)}")
        return y

    def pooled_features(self, y: torch.Tensor) -> torch.Tensor:
        """(N, features): the conditioner's feature maps averaged over space, for the Mahalanobis OOD score."""
        return self.conditioner(y).mean(dim=(2, 3))

    def null_space(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(d_L, …, d_1), coarsest first: the Haar detail bands of x, its null-space coordinates."""
        self._check(x, "x", divisible=True)
        ds = []
        for _ in range(self.levels):
            x, d = haar(x)
            ds.append(d)
        return tuple(reversed(ds))

    def assemble(self, y: torch.Tensor, *ds: torch.Tensor) -> torch.Tensor:
        """The HR image with AvgPool_s = y and null-space coordinates ds (coarsest first)."""
        self._check(y, "y", divisible=False)
        self._check_levels(ds, "null-space coordinates")
        x = self.factor * y
        for d in ds:
            x = ihaar(x, d)
        return x

    def latent_shapes(self, y: torch.Tensor) -> list[tuple[int, ...]]:
        """The shape of each level's latent (= of its detail bands), coarsest first."""
        n, c, h, w = y.shape
        return [(n, 3 * c, h * 2 ** k, w * 2 ** k) for k in range(self.levels)]

    @staticmethod
    def _context(feats: torch.Tensor, ll: torch.Tensor) -> torch.Tensor:
        """A level's context: the LR features resized (nearest) to the level, and its coarse band."""
        return torch.cat([F.interpolate(feats, size=ll.shape[-2:], mode="nearest"), ll], dim=1)

    def _check_levels(self, ts, what: str) -> None:
        if len(ts) != self.levels:
            raise ConfigError(f"{what}: {len(ts)} levels given, expected {self.levels} (coarsest first)")

    def _encode(self, y: torch.Tensor, ds) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Null-space coordinates -> (latents, log|det ∂z/∂d|), coarsest level first."""
        self._check(y, "y", divisible=False)
        self._check_levels(ds, "null-space coordinates")
        feats, ll = self.conditioner(y), self.factor * y
        zs, logdet = [], torch.zeros(y.shape[0], dtype=y.dtype, device=y.device)
        for norm, flow, d in zip(self.norms, self.flows, ds):
            u, ld_norm = norm(d)
            z, ld = flow(u, self._context(feats, ll))
            zs.append(z)
            logdet = logdet + ld_norm + ld
            ll = ihaar(ll, d)
        return zs, logdet

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The latents of x given y (default AvgPool_s(x)), coarsest level first."""
        return self._encode(self._condition(x, y), self.null_space(x))[0]

    def decode(self, y: torch.Tensor, zs) -> list[torch.Tensor]:
        """Latents (coarsest first) -> null-space coordinates (d_L, …, d_1) given y."""
        self._check(y, "y", divisible=False)
        self._check_levels(zs, "latents")
        feats, ll = self.conditioner(y), self.factor * y
        ds = []
        for norm, flow, z in zip(self.norms, self.flows, zs):
            d = norm.inverse(flow.inverse(z, self._context(feats, ll))[0])
            ds.append(d)
            ll = ihaar(ll, d)
        return ds

    def _null_dims(self, x: torch.Tensor) -> int:
        """D = C·H·W − C·H·W/s², the null-space dimension per sample."""
        n = x[0].numel()
        return n - n // self.factor ** 2

    def _log_prob(self, y: torch.Tensor, ds) -> torch.Tensor:
        zs, logdet = self._encode(y, ds)
        dims = sum(z[0].numel() for z in zs)
        return -0.5 * sum(z.flatten(1).pow(2).sum(1) for z in zs) - 0.5 * dims * math.log(2 * math.pi) + logdet

    def log_prob(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """(N,) log p(null-space coordinates of x | y) in nats; y defaults to AvgPool_s(x). With another y,
        the coarse bands the finer levels see are rebuilt from that y and x's coarser details."""
        return self._log_prob(self._condition(x, y), self.null_space(x))

    def bits_per_dim(self, x: torch.Tensor, y: torch.Tensor | None = None, dequant: float = DEQUANT) -> torch.Tensor:
        """(N,) (−log p(d | y)/ln 2)/D − log₂ δ, d the null-space coordinates of x taken as bin centres
        of width δ = `dequant`, D their number (see the module doc)."""
        return -self.log_prob(x, y) / (self._null_dims(x) * math.log(2)) - math.log2(dequant)

    def training_nll(self, x: torch.Tensor, generator: torch.Generator | None = None,
                     dequant: float = DEQUANT) -> torch.Tensor:
        """The loss: mean −log p(d + u | y)/D in nats per dim, u ~ U(−δ/2, δ/2) added to the null-space
        coordinates (so y = AvgPool_s(x) is unchanged). Plus −log δ, its expectation bounds the discrete
        code length per dim from above (see the module doc)."""
        ds = [d + dequant * (torch.rand(d.shape, generator=generator, dtype=d.dtype, device=d.device) - 0.5)
              for d in self.null_space(x)]
        return -(self._log_prob(self.lr(x), ds) / self._null_dims(x)).mean()

    @torch.no_grad()
    def initialise(self, x: torch.Tensor) -> None:
        """Set every level's ActNorm from a training batch's detail bands (before the first step)."""
        for norm, d in zip(self.norms, self.null_space(x)):
            norm.initialise(d)

    @torch.no_grad()
    def spline_bound(self, z_max: float) -> float:
        """The largest |d| a spline flow can output for latents with ‖z‖∞ ≤ z_max, whatever the
        condition (module doc): max over levels and channels of σ·(max(B, z_max) + K·shift_bound) + |b|."""
        if self.kind != "spline":
            raise ValueError(f"spline_bound: the {self.kind} coupling has no condition-free bound")
        worst = 0.0
        for norm, flow in zip(self.norms, self.flows):
            layer = flow.couplings[0]
            inner = max(layer.tail_bound, z_max) + len(flow.couplings) * layer.shift_bound
            worst = max(worst, float((norm.log_scale.exp() * inner + norm.bias.abs()).max()))
        return worst

    def sample_at(self, y: torch.Tensor, zs) -> torch.Tensor:
        """x̂ (N, C, sH, sW) at the given latents (coarsest first, shapes from `latent_shapes`), unclamped."""
        return self.assemble(y, *self.decode(y, zs))

    def sample(self, y: torch.Tensor, temperature: float = 0.9,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """One x̂ per row of y, z ~ N(0, temperature² I) at every level; unclamped (artifacts are counted on
        raw output), and AvgPool_s(x̂) = y up to round-off whatever z."""
        check_temperature(temperature)
        self._check(y, "y", divisible=False)
        zs = [temperature * torch.randn(shape, generator=generator, dtype=y.dtype, device=y.device)
              for shape in self.latent_shapes(y)]
        return self.sample_at(y, zs)
