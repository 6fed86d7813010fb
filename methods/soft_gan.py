"""SR `soft_gan` (Sønderby et al.'s control): the GAN without the projection, plus an LR-consistency term.

Generator loss: the AffGAN term + `consistency_weight` × ‖A x̂ − y‖²/n. The weight is this harness's
choice (the paper gives none): 1000 makes an LR MSE of 1e-3 cost about one unit of the GAN term.
Instance noise as `aff_gan`.
"""

import math

from blurbench.errors import ConfigError
from blurbench.sr import losses
from blurbench.sr.method_api import SRMethod

TASK = "sr"
PARAMS: dict = {"noise_start": losses.INSTANCE_NOISE_START, "consistency_weight": 1000.0}


def validate(params: dict) -> None:
    for key in ("noise_start", "consistency_weight"):
        v = params[key]
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
            raise ConfigError(f"'{key}': expected a number ≥ 0, got {v!r}")


class Method(SRMethod):
    adversarial = True

    def loss(self, x, x_hat, y, features, step, fake_logits=None):
        loss = losses.soft_gan_generator_loss(fake_logits, self.operator.A(x_hat), y,
                                              self.params["consistency_weight"])
        return loss, {"mse": (x_hat - x).pow(2).mean().detach()}
