"""Flow `flow_affine`: the conditional SR flow (`blurbench.flows.sr_flow.SRFlow`) with SRFlow's affine coupling.

z_b = s·x_b + t with s = sigmoid(h + 2) + eps, eps = 1e-4 as in Hong et al.'s reference code (nflows
uses 1e-3): sampling divides by s, so one layer can amplify its input up to 1/eps = 1e4 times, and
t is unbounded. This is the arm whose inverse Hong, Park and Chun show exploding for out-of-distribution
conditions (issue 26).
"""

import math

from blurbench.errors import ConfigError
from blurbench.flows.coupling import AFFINE_EPS, check_coupling

TASK = "flow"
COUPLING = "affine"
PARAMS: dict = {"eps": AFFINE_EPS}


def validate(params: dict) -> None:
    """The coupling is known and eps (the scale's floor) is a finite number > 0."""
    check_coupling(COUPLING)
    eps = params["eps"]
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0:
        raise ConfigError(f"eps: {eps!r} is not a finite number > 0 (the affine scale's floor)")
