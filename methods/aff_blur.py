"""SR `aff_blur`: the blur-Wiener likelihood (methods/blur_wiener.py) under the affine projection.

Neither SR paper nor the VAE paper tries this: the harness's own cross of the two ideas. The output
is projected onto {x : A x = y} as in `aff_mse`; the loss is the blur-Wiener NLL of the HR image
with per-image kernels, exactly the VAE term's code (its ε, C, kernel size, start step and kernel
step; `sigma2` is its σ², the VAE's default 0.01). There is no latent in SR, so the kernel generator
G_γ is conditioned on the SR body's LR features, averaged over space to one `width`-vector per image
(detached: the kernel is a constant for the network's step, as `kernel.detach_in_vae_step` keeps it
in the VAE). ε = 0 is exactly `aff_mse` up to the loss's scale (Adam does not see a constant scale).
"""

import copy
import math

from blurbench import plugins
from blurbench.errors import ConfigError
from blurbench.sr.method_api import SRMethod

TASK = "sr"
_BLUR = plugins.load_method("blur_wiener")
PARAMS: dict = {"sigma2": 0.01, **copy.deepcopy(_BLUR.PARAMS)}


def validate(params: dict) -> None:
    s = params["sigma2"]
    if not isinstance(s, (int, float)) or isinstance(s, bool) or not math.isfinite(s) or s <= 0:
        raise ConfigError(f"'sigma2': expected a number > 0, got {s!r}")
    _BLUR.validate({k: v for k, v in params.items() if k != "sigma2"})


def validate_for_dataset(params: dict, resolution: int, channels: int) -> None:
    _BLUR.validate_for_dataset(params, resolution, channels)


class Method(SRMethod):
    project = True

    def __init__(self, params, *, operator, channels, steps, width, device):
        super().__init__(params, operator=operator, channels=channels, steps=steps, width=width, device=device)
        size = operator.size
        self.term = _BLUR.Term({k: v for k, v in params.items() if k != "sigma2"}, sigma2=params["sigma2"],
                               steps=steps, latent_dim=width, image_shape=(channels, *size), device=device)

    @staticmethod
    def _code(features):
        return features.detach().mean((-2, -1))

    def loss(self, x, x_hat, y, features, step, fake_logits=None):
        nll, logs = self.term.loss(x, x_hat, self._code(features), step)
        return nll, {**logs, "mse": (x_hat - x).pow(2).mean().detach()}

    def after_step(self, x, x_hat, features, step):
        return self.term.after_vae_step(x, x_hat.detach(), self._code(features), step)

    def state_dict(self):
        return self.term.state_dict()

    def load_state_dict(self, state):
        self.term.load_state_dict(state)
