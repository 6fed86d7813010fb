"""Trivial baselines and the blur ladder of a dataset's test split, scored like every run.

A model that does not beat these has not learned, whatever the tables say:
- `mean_image`: the training-set mean image, for every test image;
- `mean_colour`: each test image's own mean colour (per channel);
- `blur_sigma<σ>`: the test image itself, blurred by a Gaussian of σ px (scipy.ndimage, reflect
  borders, so a constant image stays constant), for each σ of `evaluate.blur_ladder`;
- on a dataset of the SR or flows task: `sr_pinv` (A⁺y) and `sr_bicubic` (bicubic upsampling of
  y), from each test image's LR version y = A x. A dataset no VAE run uses gets only these two.

Each is scored by `scoring.score_against_test` (the runs' code, the same N); a ladder row's
equivalent blur, fitted to its transfer function, comes out at its own σ (tests/test_transfer.py). Rows have method
`results_schema.BASELINE_METHOD` and the baseline's name as variant; computed once per dataset, by a rule of its own.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import layout, provenance
from .atomic import write_text
from .data import open_split, to_float
from .model import pick_device
from .results_schema import BASELINE_METHOD, SR_BICUBIC, SR_PINV
from .scoring import RowWriter, rows_csv, score_against_test

def mean_image(train: np.ndarray, batch: int = 1024) -> torch.Tensor:
    """Mean of the training images (C×H×W, float64 accumulation), read in chunks."""
    total = np.zeros(train.shape[1:], dtype=np.float64)
    for start in range(0, train.shape[0], batch):
        total += train[start:start + batch].astype(np.float64).sum(0)
    return torch.from_numpy(total / train.shape[0] / 255.0).float()


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Each image blurred by a Gaussian of σ px over its two spatial axes (reflect borders)."""
    from scipy.ndimage import gaussian_filter

    return torch.from_numpy(gaussian_filter(x.double().numpy(), sigma=(0, 0, sigma, sigma),
                                            mode="reflect")).float()


def sr_predictions(x: torch.Tensor, operator: dict) -> dict[str, torch.Tensor]:
    """The SR task's trivial baselines from each test image's LR version y = A x: the pseudo-inverse
    A⁺y (`sr_pinv`; nearest replication for average pooling) and bicubic upsampling of y
    (`sr_bicubic`, torch's, align_corners=False), both clamped to [0, 1]."""
    from .sr.operators import make_operator

    op = make_operator(operator["operator"], tuple(x.shape[-2:]), factor=operator["factor"], sigma=operator["sigma"])
    y = op.A(x.double())
    bicubic = torch.nn.functional.interpolate(y, scale_factor=operator["factor"], mode="bicubic", align_corners=False)
    return {SR_PINV: op.pinv(y).clamp(0, 1).float(), SR_BICUBIC: bicubic.clamp(0, 1).float()}


def predictions(x: torch.Tensor, train: np.ndarray, ladder, sr_operator: dict | None = None,
                trivial: bool = True) -> dict[str, torch.Tensor]:
    """Baseline name -> the images it predicts for the test images `x`: the trivial ones (unless
    `trivial` is false), the blur ladder, and with `sr_operator` the SR task's."""
    out = {}
    if trivial:
        out = {"mean_image": mean_image(train).expand_as(x).contiguous(),
               "mean_colour": x.mean((2, 3), keepdim=True).expand_as(x).contiguous()}
    out.update({layout.ladder_variant(s): gaussian_blur(x, s) for s in ladder})
    if sr_operator:
        out.update(sr_predictions(x, sr_operator))
    return out


def compute(spec: dict, data_dir: str | Path, out: str | Path, fid_stats: str | Path | None = None,
            threads: int = 1, device: str = "auto") -> list[dict]:
    """Score every baseline of `spec` (Grid.baseline_spec) and write their rows to `out` (a CSV)."""
    started = provenance.now()
    torch.set_num_threads(threads)
    dev = pick_device(device)
    data_dir = Path(data_dir)
    x = to_float(open_split(data_dir / layout.split_array("test"))[:])
    preds = predictions(x, open_split(data_dir / layout.split_array("train")), spec["blur_ladder"],
                        spec.get("sr_operator"), spec.get("trivial", True))
    prov = provenance.row_columns(provenance.collect(dev, started))
    all_rows = []
    for name, y in preds.items():
        rows = RowWriter({"run_id": f"{spec['dataset']}/{BASELINE_METHOD}/{name}", "dataset": spec["dataset"],
                          "method": BASELINE_METHOD, "variant": name, "seed": "", "resolution": spec["resolution"],
                          "channels": spec["channels"], **prov})
        score_against_test(rows, x, y, spec, channels=spec["channels"], resolution=spec["resolution"],
                           fid_stats=Path(fid_stats) if fid_stats else None, device=dev)
        all_rows += rows.rows
    write_text(out, rows_csv(all_rows))
    return all_rows
