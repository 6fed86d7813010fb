"""The flows figure `flows_<dataset>`: what each coupling outputs for the same LR inputs of every condition set.

One row per condition set (in distribution first, then the OOD sets): the first LR inputs (nearest-
upsampled to the HR size), then one sample of each flow method for those inputs, from the runs'
flows.npz (one seed). Samples are shown unclamped but clipped to [0, 1] for display, with their artifact
pixels (`flows.artifacts`: a channel > 1.5, < −0.5 or non-finite) painted red and each flagged sample
framed in red (a red pixel of the image itself is not framed), so an exploding inverse is visible where it
happens, not averaged away.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import layout
from ..errors import DataError
from ..figures import MISSING, save_figure
from ..results_schema import flows_key
from .artifacts import artifact_pixels

RED = np.array([1.0, 0.0, 0.0])
MARK = 0.7  # weight of red on a marked pixel


def figure_names(flows: dict | None) -> list[str]:
    """File stems `write_flows_figures` writes: one figure per flows dataset."""
    return [f"flows_{d}" for d in (flows or {}).get("datasets", [])]


def _load(path: Path | None) -> dict | None:
    """A run's flows.npz as a dict, or None when it is absent or empty (a run that did not train)."""
    if path is None or not Path(path).is_file():
        return None
    try:
        with np.load(path) as f:
            return {k: f[k] for k in f.files} or None
    except (OSError, ValueError) as e:
        raise DataError(f"{path} is not a readable .npz file: {e}") from None


def _strip(images: np.ndarray, marks: np.ndarray | None = None) -> np.ndarray:
    """(n, C, H, W) floats -> one RGB strip (H, n·W + gaps, 3) in [0, 1], white 2-pixel gaps; non-finite
    values shown black; `marks` (n, H, W) painted red."""
    n, c, h, w = images.shape
    rgb = np.nan_to_num(np.clip(images, 0, 1), nan=0.0).transpose(0, 2, 3, 1)
    rgb = np.repeat(rgb, 3, axis=-1) if c == 1 else rgb
    if marks is not None:
        rgb[marks] = (1 - MARK) * rgb[marks] + MARK * RED
    out = np.ones((h, n * w + 2 * (n - 1), 3))
    for i in range(n):
        out[:, i * (w + 2):i * (w + 2) + w] = rgb[i]
    return out


def flows_figure(dataset: str, runs: dict, out_base: Path) -> list[Path]:
    """`runs`: flow method -> path of its eval/flows.npz (None if absent). Rows: condition sets;
    columns: the LR inputs, then each method's samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    loaded = {m: _load(p) for m, p in runs.items()}
    first = next((a for a in loaded.values() if a is not None), None)
    conditions = [str(c) for c in first["conditions"]] if first is not None else []
    columns = ["LR input (nearest)", *loaded]
    fig, axes = plt.subplots(max(1, len(conditions)), len(columns), squeeze=False, layout="constrained",
                             figsize=(2.2 * len(columns) + 1, 0.75 * max(1, len(conditions)) + 0.8))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    if first is None:
        axes[0, 0].text(0.5, 0.5, f"n/a: no {layout.FLOWS} of any method", ha="center", va="center",
                        transform=axes[0, 0].transAxes, fontsize=8)
    for j, label in enumerate(columns):
        axes[0, j].set_title(label, fontsize=8)
    for i, condition in enumerate(conditions):
        lr = first[flows_key("lr", condition)]
        factor = first[flows_key("samples", condition)].shape[-1] // lr.shape[-1]
        axes[i, 0].imshow(_strip(lr.repeat(factor, -1).repeat(factor, -2)), interpolation="nearest")
        axes[i, 0].set_ylabel(condition.replace("_", " "), rotation=0, ha="right", va="center", fontsize=8)
        for j, (method, arrays) in enumerate(loaded.items(), start=1):
            key = flows_key("samples", condition)
            if arrays is None or key not in arrays:
                axes[i, j].text(0.5, 0.5, "n/a: " + MISSING.format(file=layout.FLOWS), ha="center", va="center",
                                transform=axes[i, j].transAxes, fontsize=6, color="0.3")
                continue
            samples = arrays[key]
            marks = artifact_pixels(samples)
            flagged = marks.any(axis=(1, 2))
            axes[i, j].imshow(_strip(samples, marks), interpolation="nearest")
            h, w = samples.shape[-2:]
            for k in np.flatnonzero(flagged):
                axes[i, j].add_patch(Rectangle((k * (w + 2) - 0.5, -0.5), w, h, fill=False, edgecolor="red",
                                               linewidth=1.5))
            axes[i, j].set_xlabel(f"{int(flagged.sum())}/{len(samples)} flagged", fontsize=6, labelpad=1)
    t = f" at T = {float(first['temperature']):g}" if first is not None else ""
    fig.suptitle(f"{dataset}: one sample per LR input{t}; artifact pixels (> 1.5, < −0.5 or non-finite, "
                 "unclamped) in red, their samples framed", fontsize=9)
    return save_figure(fig, out_base)


def write_flows_figures(files: dict, out_dir: Path) -> list[Path]:
    """`files`: flows dataset -> flow method -> path of its flows.npz (one seed, the rule's inputs)."""
    return [p for d, runs in files.items()
            for p in flows_figure(d, {m: Path(f) for m, f in runs.items()}, Path(out_dir) / f"flows_{d}")]
