"""SR `aff_mse` (Sønderby et al.): the MSE network with the affine projection layer.

Every output lies on {x : A x = y}, g = (I − A⁺A) f + A⁺y, so its LR consistency is round-off; the
loss reaches the network high-passed by (I − A⁺A).
"""

from blurbench.sr.method_api import SRMethod

TASK = "sr"
PARAMS: dict = {}


def validate(params: dict) -> None:
    """No parameters."""


class Method(SRMethod):
    project = True
