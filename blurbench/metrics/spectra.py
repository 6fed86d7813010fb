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
