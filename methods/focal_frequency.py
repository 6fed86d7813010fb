"""Focal frequency loss (Jiang et al., ICCV 2021) on top of the Gaussian L2 likelihood.

The FFL itself comes from the official `focal-frequency-loss` package, not a copy.

Scaling. The official example (VanillaAE, `--mse_w 1.0 --ffl_w 100.0`) trains
`nn.MSELoss()(recon, real) + 100 · FFL(recon, real)` on images in [−1, 1]. Going from our [0, 1]
to [−1, 1] multiplies every pixel difference by 2, so both the per-pixel MSE and the FFL (a mean of
squared orthonormal-DFT differences; its focal weight matrix is normalised by its maximum, so a
common scale cancels in it) grow by 4: their ratio does not depend on the range. Our L2 term is not
a per-pixel mean but the summed Gaussian NLL, `gaussian_nll = D/(2σ²) · MSE` with D = C·H·W. So
we put the FFL in the same units before weighting it:

    loss = gaussian_nll(x, x_hat, σ²) + weight · D/(2σ²) · FFL(x_hat, x)

i.e. the package's `loss_weight` is `weight · D/(2σ²)`, and `weight` is exactly the FFL:MSE ratio.
Its default, 100, reproduces the official example for any image size and σ². (With
`log_matrix: true` the weight matrix is no longer scale free, so there the range matters slightly.)

Version trap. The package parses `torch.__version__` at import time with
`tuple(map(int, version.split('+')[0].split('.')))`, which raises ValueError on pre-release
strings such as `2.1.0a0+git…` ("0a0" is no int). `_import_ffl` is the one place that guards it.
"""

from __future__ import annotations

import re
import sys

from blurbench.errors import ConfigError
from blurbench.method_api import ReconstructionTerm, gaussian_nll

PARAMS: dict = {"alpha": 1.0, "patch_factor": 1, "ave_spectrum": False, "log_matrix": False,
                "batch_matrix": False, "weight": 100.0}


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate(params: dict) -> None:
    """alpha ≥ 0, patch_factor an int ≥ 1, weight ≥ 0, the three switches booleans."""
    if not _is_number(params["alpha"]) or params["alpha"] < 0:
        raise ConfigError(f"'alpha': expected a number ≥ 0, got {params['alpha']!r}")
    pf = params["patch_factor"]
    if not isinstance(pf, int) or isinstance(pf, bool) or pf < 1:
        raise ConfigError(f"'patch_factor': expected an integer ≥ 1, got {pf!r}")
    if not _is_number(params["weight"]) or params["weight"] < 0:
        raise ConfigError(f"'weight': expected a number ≥ 0, got {params['weight']!r}")
    for key in ("ave_spectrum", "log_matrix", "batch_matrix"):
        if not isinstance(params[key], bool):
            raise ConfigError(f"'{key}': expected true or false, got {params[key]!r}")


def _check_patch_factor(pf: int, height: int, width: int) -> None:
    if height % pf or width % pf:
        raise ConfigError(f"'patch_factor': {pf} does not divide the image size {height}×{width}")


def validate_for_dataset(params: dict, resolution: int, channels: int) -> None:
    """Refuse a patch_factor that does not divide the dataset's resolution, before any job starts."""
    _check_patch_factor(params["patch_factor"], resolution, resolution)


def _import_ffl():
    """The package's FocalFrequencyLoss class, imported so that its torch-version parse cannot crash.

    On first import, `torch.__version__` is shown to the package as its numeric release part only
    (`2.1.0a0+git…` -> `2.1.0`) and restored right after; the package only compares it with 1.7.1.
    """
    import torch

    if "focal_frequency_loss" not in sys.modules:
        original = torch.__version__
        release = re.match(r"\d+(?:\.\d+)*", str(original))
        torch.__version__ = release.group(0) if release else "2.0.0"
        try:
            import focal_frequency_loss  # noqa: F401
        finally:
            torch.__version__ = original
    from focal_frequency_loss import FocalFrequencyLoss

    return FocalFrequencyLoss


class Term(ReconstructionTerm):
    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        validate(params)
        c, h, w = self.image_shape
        pf = params["patch_factor"]
        _check_patch_factor(pf, h, w)
        self.ffl_scale = c * h * w / (2 * self.sigma2)  # D/(2σ²): FFL in the units of gaussian_nll
        self.ffl = _import_ffl()(loss_weight=1.0, alpha=params["alpha"], patch_factor=pf,
                                 ave_spectrum=params["ave_spectrum"], log_matrix=params["log_matrix"],
                                 batch_matrix=params["batch_matrix"])

    def loss(self, x, x_hat, z, step):
        nll = gaussian_nll(x, x_hat, self.sigma2)
        ffl = self.ffl(x_hat, x)
        total = nll + self.params["weight"] * self.ffl_scale * ffl
        return total, {"recon_nll": total.detach(), "l2_nll": nll.detach(), "ffl": ffl.detach()}
