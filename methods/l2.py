"""L2: the Gaussian log-likelihood with a fixed, isotropic σ² (the plain VAE baseline).

`sigma2_divisor` d makes the term use σ²/d instead of the model's σ², so an L2 σ² sweep (the
control for the blur-Wiener term's gain, which acts like a smaller σ²) is an ordinary ablation.
d = 1 computes exactly the plain baseline.

`match_gain_of: <method>` (the `l2_matched` control) sets d, per dataset when the grid is built, to
the mean precision gain ⟨|W|²⟩ of that method's initial kernel at the dataset's resolution (the
method's plugin provides `initial_gain(params, resolution)`), so this L2 weighs reconstruction as
much as the blur term does when it switches on, with a flat spectrum.

The term logs its precision gain over the model's σ² (`gain` = d), like the blur term logs ⟨|W|²⟩.
"""

import copy
import math

from blurbench import plugins
from blurbench.errors import ConfigError
from blurbench.method_api import ReconstructionTerm, gaussian_nll

PARAMS: dict = {"sigma2_divisor": 1.0, "match_gain_of": None}


def validate(params: dict) -> None:
    """sigma2_divisor: a finite number > 0 (σ² itself is the model's `model.sigma2`)."""
    d = params["sigma2_divisor"]
    if not isinstance(d, (int, float)) or isinstance(d, bool) or not math.isfinite(d) or d <= 0:
        raise ConfigError(f"'sigma2_divisor': expected a finite number > 0, got {d!r}")
    m = params["match_gain_of"]
    if m is not None and not isinstance(m, str):
        raise ConfigError(f"'match_gain_of': expected null or a method name, got {m!r}")


def resolve_params(params: dict, *, resolution: int, channels: int, methods: dict) -> dict:
    """With `match_gain_of`, the divisor becomes that method's initial gain at this resolution."""
    target = params["match_gain_of"]
    if target is None:
        return params
    if target not in methods:
        raise ConfigError(f"'match_gain_of': unknown method '{target}'; defined: {', '.join(sorted(methods))}")
    plugin = plugins.load_method(methods[target]["plugin"])
    if not hasattr(plugin, "initial_gain"):
        raise ConfigError(f"'match_gain_of': method '{target}' (plugin {methods[target]['plugin']}) "
                          "has no initial gain to match")
    out = copy.deepcopy(params)
    out["sigma2_divisor"] = round(plugin.initial_gain(methods[target]["params"], resolution), 6)
    return out


class Term(ReconstructionTerm):
    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        validate(params)
        self.divisor = float(params["sigma2_divisor"])
        self.effective_sigma2 = self.sigma2 / self.divisor

    def loss(self, x, x_hat, z, step):
        nll = gaussian_nll(x, x_hat, self.effective_sigma2)
        return nll, {"recon_nll": nll.detach(), "gain": nll.new_full((), self.divisor)}
