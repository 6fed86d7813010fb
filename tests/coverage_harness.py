"""The one coverage harness: how often an interval procedure covers a known truth.

Every interval the harness reports (protocol.md, "Statistics") has a simulation test built on
`coverage`: draw a fresh data set from a generating process whose true value is known, build the
interval, count the hits. At a nominal 0.95 the observed rate over ≥ 200 repetitions must lie in
[LOW, HIGH]; with 200 repetitions a correct 95 % interval lands there with probability ≈ 0.99.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

LOW, HIGH = 0.90, 0.99
MIN_REPETITIONS = 200

# draw(rng) -> (lo, hi, truth): one simulated data set's interval and the value it should cover
Draw = Callable[[np.random.Generator], tuple[float, float, float]]


def coverage(draw: Draw, repetitions: int = MIN_REPETITIONS, seed: int = 0) -> float:
    """Fraction of `repetitions` independent draws whose interval [lo, hi] contains the truth."""
    if repetitions < 1:
        raise ValueError(f"repetitions: expected ≥ 1, got {repetitions}")
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(repetitions):
        lo, hi, truth = draw(rng)
        hits += bool(lo <= truth <= hi)
    return hits / repetitions


def assert_calibrated(draw: Draw, repetitions: int = MIN_REPETITIONS, seed: int = 0, what: str = "") -> float:
    """Assert a nominal-95 % interval's coverage lies in [LOW, HIGH]; returns the coverage."""
    if repetitions < MIN_REPETITIONS:
        raise ValueError(f"a coverage test needs ≥ {MIN_REPETITIONS} repetitions, got {repetitions}")
    c = coverage(draw, repetitions, seed)
    assert LOW <= c <= HIGH, f"{what or 'interval'}: coverage {c:.3f} over {repetitions} draws, " \
                             f"expected within [{LOW}, {HIGH}] at nominal 0.95"
    return c
