"""Flow `flow_spline`: the conditional SR flow (`blurbench.flows.sr_flow.SRFlow`) with rational-quadratic
spline coupling, Hong et al.'s remedy.

z_b = RQS(x_b) + t: a monotone spline of `bins` bins on [−tail_bound, tail_bound], the identity
outside, plus a condition-driven shift t = shift_bound·tanh(g). The reference's values: 2 bins on
[−0.5, 0.5], shift bound 1. Whatever the condition, a sample's null-space coordinates are bounded
(`SRFlow.spline_bound`): the spline maps its interval into itself and the shift is capped.
"""

import math

from blurbench.errors import ConfigError
from blurbench.flows.coupling import check_coupling

TASK = "flow"
COUPLING = "spline"
PARAMS: dict = {"bins": 2, "tail_bound": 0.5, "shift_bound": 1.0}


def validate(params: dict) -> None:
    """bins an integer ≥ 2, tail_bound a finite number > 0 (`check_coupling`), shift_bound finite ≥ 0."""
    check_coupling(COUPLING, params["bins"], params["tail_bound"])
    shift = params["shift_bound"]
    if isinstance(shift, bool) or not isinstance(shift, (int, float)) or not math.isfinite(shift) or shift < 0:
        raise ConfigError(f"shift_bound: {shift!r} is not a finite number ≥ 0 (the cap of the coupling's shift)")
