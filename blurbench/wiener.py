"""The blur-Wiener Gaussian likelihood (Bredell et al., ICLR 2023), as plain tensor functions.

Model: a reconstruction is the input blurred by a kernel, x̂ ≈ k ⊛ x (circular convolution). The
error e = x − x̂ is scored under N(0, Σ_k) with the block-circulant precision

    Σ_k⁻¹ = σ⁻² · Fᴴ diag(|W|²) F,   W = (1 + C)·conj(K_ε) / (|K_ε|² + C),   K_ε = ε·K + (1 − ε),

F the unitary 2-D DFT and K = psf2otf(k). Both the quadratic form and the log-determinant are
sums over the DFT eigenvalues |W(ω)|², so the likelihood is exact and costs a few FFTs.

Real-input FFTs. Images and kernels are real, so their spectra are Hermitian and `rfft2` keeps only
the columns 0 … W//2. Every sum over the full spectrum is taken as a weighted sum over these
columns: weight 1 for column 0 and (W even) column W/2, which are their own mirror, 2 for the
others (`rfft_column_weights`). The tests check this against dense H·W×H·W matrices.

Gain. Besides its spectral shape, |W|² has a mean over the spectrum (`mean_gain`) well above 1
(≈ 8 for a 7×7 Gaussian of width 1 at ε = 1, C = 0.01): at equal σ² the term weighs a white
error like L2 at σ²/gain. `normalize_gain` removes that factor and keeps the shape.

Shapes: images (B, C, H, W); kernels either one per image (B, s, s) or shared (s, s); one kernel
serves all channels of an image.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

# |W|² is floored here before its log: W = 0 where K_ε vanishes, which would make the log-det −∞
# (an improper Σ). The floor caps each bin's log at log(1e-12) ≈ −27.6 instead; with C = 0.01 it
# binds only where |K_ε| < ~1e-8, i.e. for kernels with (near-)exact spectral zeros.
LOG_FLOOR = 1e-12


def gaussian_kernel(size: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised isotropic Gaussian, (size, size), centred on the middle pixel (size odd)."""
    r = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma ** 2))
    return (g / g.sum()).to(dtype)


def psf2otf(k: torch.Tensor, shape: tuple[int, int], onesided: bool = True) -> torch.Tensor:
    """OTF of centred kernels k (..., s, s) on an H×W grid: zero-pad, roll the centre to (0, 0), FFT.

    Without the roll the OTF carries a phase ramp (a shift by s//2 pixels). `onesided` returns the
    `rfft2` half spectrum (..., H, W//2 + 1), else the full `fft2` (..., H, W).
    """
    H, W = shape
    s0, s1 = k.shape[-2:]
    if s0 > H or s1 > W:
        raise ValueError(f"kernel of {s0}×{s1} does not fit an image of {H}×{W}")
    padded = k.new_zeros(k.shape[:-2] + (H, W))
    padded[..., :s0, :s1] = k
    padded = torch.roll(padded, shifts=(-(s0 // 2), -(s1 // 2)), dims=(-2, -1))
    return torch.fft.rfft2(padded) if onesided else torch.fft.fft2(padded)


def regularize(K: torch.Tensor, eps: float) -> torch.Tensor:
    """K_ε = ε·K + (1 − ε): the OTF of ε·k + (1 − ε)·δ. ε = 0 gives 1 exactly (plain L2)."""
    if eps == 1.0:
        return K
    return eps * K + (1.0 - eps)


def wiener_weight(K_eps: torch.Tensor, C: float, normalize_dc: bool = True) -> torch.Tensor:
    """W = (1 + C)·conj(K_ε) / (|K_ε|² + C); without `normalize_dc` the factor (1 + C) is dropped.

    With it, a kernel that sums to 1 (K(0) = 1) keeps the mean error at weight 1, as in L2, and
    |W| ≤ (1 + C) / (2√C).
    """
    num = torch.conj(K_eps) * (1.0 + C) if normalize_dc else torch.conj(K_eps)
    return num / (K_eps.real ** 2 + K_eps.imag ** 2 + C)


def rfft_column_weights(width: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """How often each `rfft2` column occurs in the full spectrum of a real image of this width."""
    w = torch.full((width // 2 + 1,), 2.0, dtype=dtype, device=device)
    w[0] = 1.0
    if width % 2 == 0:
        w[-1] = 1.0
    return w


def blur(x: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Circular convolution k ⊛ x of images (B, C, H, W) with kernels (B, s, s) or (s, s)."""
    H, W = x.shape[-2:]
    K = psf2otf(k, (H, W))
    return torch.fft.irfft2(torch.fft.rfft2(x) * (K[:, None] if K.dim() == 3 else K), s=(H, W))


def spectrum_mean(w2: torch.Tensor, width: int) -> torch.Tensor:
    """Mean of a Hermitian-symmetric spectrum over the FULL H×W grid, from its rfft2 half (..., H, W//2+1).

    A plain mean of the half spectrum would over-weight columns 0 and W/2, which have no mirror.
    Where w2 is 1 everywhere the result is exactly 1.0 (integer sums, exact in floating point).
    """
    cols = rfft_column_weights(width, w2.dtype, w2.device)
    return (w2 * cols).sum((-2, -1)) / (w2.shape[-2] * width)


def weight_power(k: torch.Tensor, shape: tuple[int, int], *, eps: float, C: float,
                 normalize_dc: bool = True, normalize_gain: bool = False) -> torch.Tensor:
    """|W(ω)|², the eigenvalues of σ²·Σ_k⁻¹, on the rfft2 half spectrum: (B, H, W//2+1) or (H, W//2+1).

    `normalize_gain` divides each kernel's |W|² by its mean over the full spectrum: the same spectral
    shape at mean gain 1, so the term no longer also acts as a smaller σ². Where |W|² = 1 (ε = 0, a
    delta kernel) that mean is exactly 1.0 and the division changes no bit.
    """
    Wt = wiener_weight(regularize(psf2otf(k, shape), eps), C, normalize_dc)
    w2 = Wt.real ** 2 + Wt.imag ** 2
    if normalize_gain:
        w2 = w2 / spectrum_mean(w2, shape[1])[..., None, None]
    return w2


def mean_gain(k: torch.Tensor, shape: tuple[int, int], *, eps: float, C: float,
              normalize_dc: bool = True) -> torch.Tensor:
    """⟨|W|²⟩ over the full H×W spectrum per kernel, (B,) or scalar: the factor by which the term
    out-weighs L2 at equal σ² on white error (the gain confound). 1 for ε = 0 or a delta kernel."""
    return spectrum_mean(weight_power(k, shape, eps=eps, C=C, normalize_dc=normalize_dc), shape[1])


def half_logdet(w2: torch.Tensor, width: int, channels: int) -> torch.Tensor:
    """½·log|Σ_k| − ½·log|σ²I| summed over channels = −(C/2)·Σ_ω log|W(ω)|², per kernel.

    The log is guarded by `LOG_FLOOR`. Returns (B,) for per-image kernels, a scalar for a shared one.
    """
    cols = rfft_column_weights(width, w2.dtype, w2.device)
    return -0.5 * channels * (torch.log(w2.clamp_min(LOG_FLOOR)) * cols).sum((-2, -1))


class _SpectralExcess(torch.autograd.Function):
    """Σ_c Σ_ω a(ω)·|E_c(ω)|² per image, E = rfft2(e, ortho), for a real, symmetric a = |W|² − 1.

    Written out because autograd's rfft2 backward pads to a full complex FFT, several times the
    cost of the analytic gradient: ∂/∂e = 2·irfft2(a·E, ortho) (a·E is Hermitian, so its half
    spectrum determines it) and ∂/∂a = Σ_c |E_c|² times the column multiplicity.
    """

    @staticmethod
    def forward(ctx, e, a):
        E = torch.fft.rfft2(e, norm="ortho")
        power = torch.view_as_real(E).pow(2).sum(-1) * rfft_column_weights(e.shape[-1], e.dtype, e.device)
        a_b = a[:, None] if a.dim() == 3 else a
        ctx.save_for_backward(E, a_b, power)
        ctx.shape = e.shape[-2:]
        return (power * a_b).sum((-3, -2, -1))

    @staticmethod
    def backward(ctx, g):
        E, a_b, power = ctx.saved_tensors
        g = g.view(-1, 1, 1, 1)
        grad_e = grad_a = None
        if ctx.needs_input_grad[0]:
            grad_e = torch.fft.irfft2(E * (2 * g * a_b), s=ctx.shape, norm="ortho")
        if ctx.needs_input_grad[1]:
            grad_a = (power * g).sum(1)
            if a_b.dim() == 2:
                grad_a = grad_a.sum(0)
        return grad_e, grad_a


def quadratic_form(e: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """Σ_c Σ_ω |W(ω)|²·|E_c(ω)|² per image (B,), E_c the orthonormal DFT of channel c of e.

    Written as ‖e‖² + Σ (|W|² − 1)·|E|²: where |W|² = 1 exactly (ε = 0, a delta kernel) the second
    sum and its gradient are exactly zero, so value and gradient equal the L2 method's bit for bit.
    """
    return e.pow(2).flatten(1).sum(1) + _SpectralExcess.apply(e, w2 - 1.0)


def fit_error(x: torch.Tensor, x_hat: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """‖x̂ − k ⊛ x‖² per image (B,), summed over channels, by Parseval on the rfft2 half spectra.

    Equals the pixel-domain error of `blur` without its inverse FFT. Meant for the kernel step:
    x and x̂ are constants, only k gets a gradient.
    """
    H, W = x.shape[-2:]
    with torch.no_grad():
        X, Xh = torch.fft.rfft2(x, norm="ortho"), torch.fft.rfft2(x_hat, norm="ortho")
    K = psf2otf(k, (H, W))
    R = Xh - X * (K[:, None] if K.dim() == 3 else K)
    cols = rfft_column_weights(W, x.dtype, x.device)
    return (torch.view_as_real(R).pow(2).sum(-1) * cols).sum((-3, -2, -1))


class WienerNLL(NamedTuple):
    """Batch means: the NLL, its ½·log-det part, and the mean gain ⟨|W|²⟩ (detached, for the log)."""

    nll: torch.Tensor
    logdet: torch.Tensor
    gain: torch.Tensor


def wiener_nll(x: torch.Tensor, x_hat: torch.Tensor, k: torch.Tensor, *, eps: float, C: float,
               sigma2: float, normalize_dc: bool = True, normalize_gain: bool = False) -> WienerNLL:
    """Batch-mean NLL of x under N(x̂, Σ_k), with its ½·log-det part and the mean gain.

    NLL = (1/(2σ²))·Σ_c Σ_ω |W|²|E_c|² − (C/2)·Σ_ω log|W|², leaving out the constant
    (C·H·W/2)·log(2πσ²) exactly as `method_api.gaussian_nll` does, so the two are comparable;
    the arithmetic follows `gaussian_nll` term by term so that |W| = 1 reproduces it exactly.
    The log-det is that of the precision actually used, also with `normalize_gain`.
    """
    channels, H, W = x.shape[-3:]
    w2 = weight_power(k, (H, W), eps=eps, C=C, normalize_dc=normalize_dc, normalize_gain=normalize_gain)
    logdet = half_logdet(w2, W, channels).mean()
    nll = 0.5 / sigma2 * quadratic_form(x - x_hat, w2).mean() + logdet
    return WienerNLL(nll, logdet, spectrum_mean(w2.detach(), W).mean())
