"""The physics of a compiled spec: its residual, right-hand side and explicit predictor."""

from phycrnet.physics.predictor import Predictor
from phycrnet.physics.residual import Physics

__all__ = ["Physics", "Predictor"]
