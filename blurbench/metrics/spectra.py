"""Blur measured directly: radially averaged power spectra (RAPS) and the high-frequency energy ratio.

HFER = Σ_{|ω| > ω_c} P_recon(ω) / Σ_{|ω| > ω_c} P_data(ω), with ω_c a fraction of the Nyquist
radius (0.5 cycles/pixel). 1 means no blur, below 1 means blur, above 1 means added high
frequencies (noise or artefacts).
"""

from __future__ import annotations

import numpy as np
import torch


def mean_power_spectrum(images: torch.Tensor, batch_size: int = 256) -> np.ndarray:
    """|FFT|² averaged over images and channels (H×W, float64), computed in batches."""
    total, count = None, 0
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].double()
        p = torch.fft.fft2(x, norm="ortho").abs().pow(2).mean(1).sum(0)
        total = p if total is None else total + p
        count += x.shape[0]
    return (total / count).numpy()


def radial_frequency(h: int, w: int) -> np.ndarray:
    """|ω| in cycles per pixel for each FFT bin."""
    fy, fx = np.meshgrid(np.fft.fftfreq(h), np.fft.fftfreq(w), indexing="ij")
    return np.sqrt(fx ** 2 + fy ** 2)


def radial_average(power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, mean power) in rings of width 1/H from 0 up to the Nyquist radius 0.5."""
    h, w = power.shape
    r = radial_frequency(h, w)
    edges = np.arange(0, 0.5 + 1e-9, 1.0 / h) + 0.5 / h
    ring = np.digitize(r, edges)
    n_bins = len(edges)
    sums = np.bincount(ring.ravel(), power.ravel(), minlength=n_bins + 1)[:n_bins]
    counts = np.bincount(ring.ravel(), minlength=n_bins + 1)[:n_bins]
    freqs = np.arange(n_bins) / h
    return freqs, sums / np.maximum(counts, 1)


def hfer(power: np.ndarray, power_data: np.ndarray, cutoff: float = 0.5) -> float:
    """High-frequency energy ratio above `cutoff` × Nyquist."""
    high = radial_frequency(*power.shape) > cutoff * 0.5
    return float(power[high].sum() / power_data[high].sum())


def high_band_energy(images: torch.Tensor, cutoff: float = 0.5, batch_size: int = 256) -> np.ndarray:
    """Per image, Σ_{|ω| > cutoff·Nyquist} |FFT|² averaged over channels: (N,) float64.

    HFER = Σ_i h_model_i / Σ_i h_data_i over paired images (or the ratio of the two means for sets
    of different sizes) equals `hfer` of the mean spectra, and keeps the per-image values that a
    bootstrap over test images needs.
    """
    h, w = images.shape[-2:]
    high = torch.from_numpy(radial_frequency(h, w) > cutoff * 0.5)
    out = []
    for start in range(0, images.shape[0], batch_size):
        p = torch.fft.fft2(images[start:start + batch_size].double(), norm="ortho").abs().pow(2).mean(1)
        out.append(p[:, high].sum(1))
    return torch.cat(out).numpy() if out else np.zeros(0)


def hfer_from_energies(h_model: np.ndarray, h_data: np.ndarray) -> float:
    """HFER from per-image high-band energies: mean(h_model) / mean(h_data)."""
    return float(np.mean(h_model) / np.mean(h_data))


def equivalent_blur(hfer_value: float, ladder_sigma, ladder_hfer) -> tuple[float, str]:
    """The Gaussian σ (px) whose blurred inputs have this HFER, interpolated linearly in log σ.

    `ladder_*`: the blur ladder's σ and HFER (HFER falls as σ grows). Outside the ladder the value
    is clipped to its end and the second item says so (the tables turn it into a footnote);
    inside it the second item is ''.
    """
    sigma = np.asarray(ladder_sigma, dtype=float)
    value = np.asarray(ladder_hfer, dtype=float)
    order = np.argsort(value)  # np.interp needs increasing x: HFER increases as σ decreases
    log_sigma = float(np.interp(hfer_value, value[order], np.log(sigma[order])))
    note = ""
    if hfer_value > value.max():
        note = f"outside the blur ladder: sharper than the input blurred by σ = {sigma.min():g} px"
    elif hfer_value < value.min():
        note = f"outside the blur ladder: blurrier than the input blurred by σ = {sigma.max():g} px"
    return float(np.exp(log_sigma)), note
