"""phycrnet: physics-constrained convolutional recurrent networks for 2D time-dependent PDEs."""

from __future__ import annotations

__version__ = "0.1.0"

from phycrnet.errors import DataError, DivergenceError, PhycrnetError, SpecError  # noqa: E402

__all__ = ["__version__", "PhycrnetError", "SpecError", "DataError", "DivergenceError"]
