"""Super-resolution task: degradation operators, the AffGAN losses, the 2-D toy and the SR network."""

from .network import SR_METHODS, SRNet, SRTrainingDiverged, train_sr
from .operators import MAX_CONDITION, OPERATORS, Operator, make_operator

__all__ = ["MAX_CONDITION", "OPERATORS", "Operator", "SR_METHODS", "SRNet", "SRTrainingDiverged",
           "make_operator", "train_sr"]
