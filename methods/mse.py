"""SR `mse`: the shared SR network trained on the mean squared error to the HR image, no projection.

The baseline both SR papers improve on: the posterior mean, blurry where the LR input is ambiguous.
"""

from blurbench.sr.method_api import SRMethod

TASK = "sr"
PARAMS: dict = {}


def validate(params: dict) -> None:
    """No parameters."""


class Method(SRMethod):
    pass
