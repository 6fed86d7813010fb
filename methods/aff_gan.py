"""SR `aff_gan` (Sønderby et al.): the projected network trained adversarially.

Generator loss −log(D/(1 − D)) (`blurbench.sr.losses.affgan_generator_loss`), which minimises
KL[q‖p] at the optimal discriminator; instance noise N(0, σ_t²) on D's real and fake inputs,
σ_t = `noise_start` · (1 − t/T), linear to 0 over the run's T steps (the paper anneals 0.1 → 0).
"""

import math

from blurbench.errors import ConfigError
from blurbench.sr import losses
from blurbench.sr.method_api import SRMethod

TASK = "sr"
PARAMS: dict = {"noise_start": losses.INSTANCE_NOISE_START}


def validate(params: dict) -> None:
    v = params["noise_start"]
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v < 0:
        raise ConfigError(f"'noise_start': expected a number ≥ 0, got {v!r}")


class Method(SRMethod):
    project = True
    adversarial = True

    def loss(self, x, x_hat, y, features, step, fake_logits=None):
        loss = losses.affgan_generator_loss(fake_logits)
        return loss, {"mse": (x_hat - x).pow(2).mean().detach()}
