"""The thresholds behind every ``auto`` option, in one table.

:func:`phycrnet.methods.resolve.resolve` reads them; ``docs/options.md`` prints them with
the rules that use them. Each threshold states its unit and why it has its value; the
measurements it rests on are in ``docs/method.md``.

``dt * rho`` is the step of the network (or of the classical solver) times the spectral
radius of the Jacobian of the right-hand side F at the initial state: an explicit Euler
step is stable on the negative real axis while it stays at or below 2.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any


def _threshold(value: Any, meaning: str) -> Any:
    return field(default=value, metadata={"meaning": meaning})


@dataclass(frozen=True)
class Thresholds:
    """The constants of the automatic choices (see the module docstring)."""

    stiff_step: float = _threshold(
        2.0, "dt * rho each explicit step is brought to or below: the explicit Euler stability limit on the negative real axis"
    )
    max_imex_substeps: int = _threshold(
        4, "network steps per frame where constant diffusion is treated implicitly (IMEX): the splitting is first order, so sub-steps buy accuracy"
    )
    max_explicit_substeps: int = _threshold(
        8, "most network steps per frame chosen automatically for an explicit physics input; each costs a full network step"
    )
    max_predictor_steps: int = _threshold(
        8, "most explicit predictor steps per network step; beyond them the predictor's gain is damped"
    )
    physics_input_limit: float = _threshold(
        8.0, "dt * rho per sub-step above which the physics input is left out: a predictor damped that far blew the rollout up"
    )
    peclet_limit: float = _threshold(
        5.0, "cell Peclet number |a| h / D above which the physics input is left out: an explicit step of unresolved transport is a poor predictor"
    )
    resolved_peclet: float = _threshold(
        2.5, "cell Peclet number that refine: auto refines the training grid down to (and above which solve advises refinement)"
    )
    max_auto_refine: int = _threshold(4, "largest refinement factor refine: auto chooses (each doubling costs four times per iteration)")
    step_balance_limit: float = _threshold(1e3, "largest weight step_balance gives one network step's residual")
    reference_step: float = _threshold(
        0.05, "network step (time units) up to which the untrained output layer keeps its initial scale; longer steps scale it down"
    )

    def table(self) -> list[tuple[str, float, str]]:
        """``(name, value, meaning)`` of every threshold, in declaration order."""
        return [(f.name, getattr(self, f.name), f.metadata["meaning"]) for f in fields(self)]


#: The thresholds in use.
THRESHOLDS = Thresholds()
