"""CPU cost of one bootstrap FID resample: blurbench.stats' weighted Gram form vs materialising it.

    python benchmarks/bench_bootstrap_fid.py [--reps 200] [--direct-reps 5] [--threads 1]

Synthetic pool3-like features (d = 2048, non-negative, low-rank plus noise) against fixed
reference statistics, at N = 128 and N = 256. Per resample (same count vectors for every form):
- gram: stats.fid_stat, the weighted N×N Gram form on the drawn items;
- direct: np.repeat the features, then fid.frechet_distance_features (the fastest existing path);
- plain: np.repeat, then fid.frechet_distance(*fid.stats(x), ...) (the textbook d×d form; N = 128 only).
CPU seconds (time.process_time), forms interleaved round by round so load from other jobs hits
them alike. Also times the per-image bootstrap (2000 resamples of 256 images) and prints the
FID bootstrap budget per dataset: 2 FIDs × 10 methods × (method + reference) × (N_BOOT_SET
resamples + the one-off setup). The last line is `ratio: gram / direct` at N = 256.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

D = 2048
METHODS, FIDS = 10, 2


def cpu_per_call(fn, reps: int) -> float:
    t = time.process_time()
    for _ in range(reps):
        fn()
    return (time.process_time() - t) / reps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200, help="Gram-form resamples per round")
    parser.add_argument("--direct-reps", type=int, default=5, help="materialised resamples per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # before numpy loads BLAS

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from anywhere
    import numpy as np

    from blurbench import stats
    from blurbench.metrics import fid

    rng = np.random.default_rng(0)
    basis = rng.standard_normal((32, D)) / 4

    def pool3(n):  # non-negative, low-rank plus noise, like Inception pool3 features
        return np.maximum(rng.standard_normal((n, 32)) @ basis + 0.2 * rng.standard_normal((n, D)), 0)

    mu_ref, sigma_ref = fid.stats(pool3(4 * D))

    per_image = rng.standard_normal((1, 256))
    t_img = cpu_per_call(lambda: stats.paired_mean_diff(per_image, 0 * per_image, n_boot=2000), 20)
    print(f"per-image bootstrap, 2000 resamples of 256 images: {t_img * 1e3:.1f} ms CPU")

    for n in (128, 256):
        feats = pool3(n)
        t0 = time.process_time()
        evaluate = stats.fid_stat(mu_ref, sigma_ref)(feats)
        setup = time.process_time() - t0
        draws = rng.integers(0, n, (args.reps, n)) + n * np.arange(args.reps)[:, None]
        counts = np.bincount(draws.ravel(), minlength=args.reps * n).reshape(args.reps, n)
        few = counts[:args.direct_reps]
        direct = lambda w: fid.frechet_distance_features(np.repeat(feats, w, 0), mu_ref, sigma_ref)
        plain = lambda w: fid.frechet_distance(*fid.stats(np.repeat(feats, w, 0)), mu_ref, sigma_ref)
        forms = {"gram": (lambda: evaluate(counts), args.reps),
                 "direct": (lambda: [direct(w) for w in few], args.direct_reps)}
        if n == 128:
            forms["plain"] = (lambda: plain(few[0]), 1)
        times = {name: [] for name in forms}
        for _ in range(args.rounds):
            for name, (fn, per_call) in forms.items():
                times[name].append(cpu_per_call(fn, 1) / per_call)
        med = {name: statistics.median(ts) for name, ts in times.items()}
        gram = evaluate(counts[:1])[0]
        exact = direct(counts[0])
        print(f"N = {n}, d = {D}: setup {setup * 1e3:.0f} ms; per resample "
              + ", ".join(f"{name} {t * 1e3:.2f} ms" for name, t in med.items())
              + f"; |gram - direct| / direct = {abs(gram - exact) / exact:.1e}")
        budget = FIDS * METHODS * 2 * (setup + stats.N_BOOT_SET * med["gram"])
        print(f"  FID bootstrap per dataset, one seed ({FIDS} FIDs × {METHODS} methods × 2 × "
              f"({stats.N_BOOT_SET} resamples + setup)): {budget:.1f} s CPU")
        ratio = med["gram"] / med["direct"]
    print(f"ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
