"""The artifact criterion of Hong, Park and Chun (robustNF), counted on unclamped samples.

A pixel is an artifact when any of its channels is > 1.5, < −0.5 or non-finite on the [0, 1] scale
(the bounds themselves are not artifacts); a sample is flagged when any pixel is. The reference gives
no rate formula, so both are reported: the per-sample rate (flagged samples / samples) and the
per-pixel rate (flagged pixels / pixels, a pixel being one spatial location of one sample).
"""

from __future__ import annotations

import numpy as np

LOW, HIGH = -0.5, 1.5


def artifact_pixels(images) -> np.ndarray:
    """(N, H, W) bool: pixels of (N, C, H, W) images (unclamped, [0, 1] scale) with any channel out of bounds."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 4:
        raise ValueError(f"images: shape {x.shape} is not (N, C, H, W)")
    bad = ~np.isfinite(x) | (x > HIGH) | (x < LOW)  # NaN compares False, hence the isfinite term
    return bad.any(axis=1)


def artifact_samples(images) -> np.ndarray:
    """(N,) bool: samples with at least one artifact pixel."""
    return artifact_pixels(images).reshape(len(images), -1).any(axis=1)


def artifact_rates(images) -> dict[str, float]:
    """Per-sample and per-pixel artifact rates of a batch of samples, with the counts behind them."""
    pixels = artifact_pixels(images)
    samples = pixels.reshape(pixels.shape[0], -1).any(axis=1)
    return {"per_sample": float(samples.mean()), "per_pixel": float(pixels.mean()),
            "n_samples": int(samples.size), "n_pixels": int(pixels.size)}
