"""L2: the Gaussian log-likelihood with a fixed, isotropic σ² (the plain VAE baseline).

`sigma2_divisor` d makes the term use σ²/d instead of the model's σ², so an L2 σ² sweep (the
control for the blur-Wiener term's gain, which acts like a smaller σ²) is an ordinary ablation.
d = 1 computes exactly the plain baseline.
"""

import math

from blurbench.errors import ConfigError
from blurbench.method_api import ReconstructionTerm, gaussian_nll

PARAMS: dict = {"sigma2_divisor": 1.0}


def validate(params: dict) -> None:
    """sigma2_divisor: a finite number > 0 (σ² itself is the model's `model.sigma2`)."""
    d = params["sigma2_divisor"]
    if not isinstance(d, (int, float)) or isinstance(d, bool) or not math.isfinite(d) or d <= 0:
        raise ConfigError(f"'sigma2_divisor': expected a finite number > 0, got {d!r}")


class Term(ReconstructionTerm):
    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        validate(params)
        self.effective_sigma2 = self.sigma2 / params["sigma2_divisor"]

    def loss(self, x, x_hat, z, step):
        nll = gaussian_nll(x, x_hat, self.effective_sigma2)
        return nll, {"recon_nll": nll.detach()}
