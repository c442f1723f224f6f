"""phycrnet: physics-constrained convolutional recurrent networks for 2D time-dependent PDEs.

The Python API mirrors the command line::

    import phycrnet
    problem = phycrnet.load_spec("allen_cahn_periodic")
    baseline = phycrnet.classical(problem)                 # phycrnet classical
    ds = phycrnet.solve(problem, time_budget=60)           # phycrnet solve
    pinn = phycrnet.pinn(problem, time_budget=60)          # phycrnet pinn
    ref = phycrnet.solve_reference(problem)                # phycrnet reference
    report = phycrnet.evaluate(ds, ref)                    # phycrnet evaluate

The functions are imported on first use, so ``import phycrnet`` stays light (no torch).
"""

from __future__ import annotations

import importlib
from typing import Any

from phycrnet._version import __version__
from phycrnet.errors import DataError, DivergenceError, PhycrnetError, SpecError  # noqa: E402

#: Public name -> (module, attribute), resolved lazily by :func:`__getattr__`.
_LAZY = {
    "load_spec": ("phycrnet.spec.problem", "load_spec"),
    "solve": ("phycrnet.methods.solve", "solve"),
    "classical": ("phycrnet.methods.classical", "classical"),
    "pinn": ("phycrnet.methods.pinn", "pinn_solve"),
    "solve_reference": ("phycrnet.reference.solver", "solve_reference"),
    "evaluate": ("phycrnet.analysis.metrics", "evaluate"),
    "compare": ("phycrnet.studies.compare", "compare"),
}

__all__ = ["__version__", "PhycrnetError", "SpecError", "DataError", "DivergenceError", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'phycrnet' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
