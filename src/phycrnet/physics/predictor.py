"""The explicit predictor: the classical step the hybrid network starts from.

One predictor step of length ``h`` from ``u`` at ``t`` moves along a direction ``d``:
explicit Euler's ``d = P F(u, t)``, or Heun's average ``d = (P F(u, t) + P F(v, t + h)) / 2``
at the end ``v = u + h * gain * P F(u, t)`` of the Euler step. ``P`` is the implicit
diffusion filter where it applies (:mod:`phycrnet.discretisation.implicit`, an IMEX step),
the identity elsewhere; ``gain`` is 1 unless the step must be damped to stay stable.
Intermediate states get their Dirichlet values (hard boundaries).

A network step of length ``dt`` takes ``steps`` predictor steps of ``h = dt / steps``; its
:meth:`Predictor.direction` is their mean, so ``u + dt * gain * direction`` is exactly the
end of those steps. Fed to the decoder (``model.physics_input``) with the output layer
started as the identity on it, the untrained network *is* this classical solver
(:func:`phycrnet.methods.classical.explicit_rollout` runs it without a network).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from phycrnet.physics.residual import Physics

Filter = Callable[[torch.Tensor], torch.Tensor]


class Predictor:
    """The explicit predictor of one problem (see the module docstring).

    Args:
        physics: the residual's operators and boundary treatment.
        dt: the network step (time units).
        steps: predictor steps per network step.
        gain: factor on each step's direction (1: undamped).
        kind: ``"heun"`` or ``"euler"``.
        implicit: the implicit diffusion filter ``P``, or ``None``.
    """

    def __init__(self, physics: Physics, dt: float, *, steps: int = 1, gain: float | torch.Tensor = 1.0, kind: str = "heun", implicit: Filter | None = None) -> None:
        self.physics = physics
        self.dt = dt
        self.steps = steps
        self.gain = gain
        self.kind = kind
        self.implicit = implicit

    def with_gain(self, gain: float | torch.Tensor) -> Predictor:
        """The same predictor with another ``gain`` (a batch member's, possibly a tensor)."""
        return Predictor(self.physics, self.dt, steps=self.steps, gain=gain, kind=self.kind, implicit=self.implicit)

    def _time(self, t: float, like: torch.Tensor) -> torch.Tensor:
        return torch.full((1,), t, dtype=like.dtype, device=like.device)

    def _filtered(self, value: torch.Tensor) -> torch.Tensor:
        return value if self.implicit is None else self.implicit(value)

    def _enforce(self, v: torch.Tensor, t: float, parameters: Mapping[str, Any]) -> torch.Tensor:
        return self.physics.enforce(v, self._time(t, v), parameters) if self.physics.hard else v

    def _step_direction(self, v: torch.Tensor, t: float, parameters: Mapping[str, Any], first: torch.Tensor | None = None) -> torch.Tensor:
        """The direction of one predictor step from ``v`` at ``t``."""
        if first is None:
            first = self._filtered(self.physics.rhs(v, self._time(t, v), parameters))
        if self.kind == "euler":
            return first
        h = self.dt / self.steps
        stage = self._enforce(v + h * self.gain * first, t + h, parameters)
        return 0.5 * (first + self._filtered(self.physics.rhs(stage, self._time(t + h, v), parameters)))

    def direction(self, u: torch.Tensor, t: float, parameters: Mapping[str, Any], record: list[torch.Tensor] | None = None) -> torch.Tensor:
        """The mean direction of the ``steps`` predictor steps from ``u`` ``(1, C, ny, nx)``
        at ``t``. F(u, t) is appended to ``record`` when given (the residual reuses it)."""
        value = self.physics.rhs(u, self._time(t, u), parameters)
        if record is not None:
            record.append(value)
        h = self.dt / self.steps
        step = self._step_direction(u, t, parameters, self._filtered(value))
        total, v = step, u
        for j in range(1, self.steps):
            # The interior of u + dt * gain * mean is then exactly the end of the steps
            # (the boundary values are imposed after the network step).
            v = self._enforce(v + h * self.gain * step, t + j * h, parameters)
            step = self._step_direction(v, t + j * h, parameters)
            total = total + step
        return total / self.steps

    def step(self, u: torch.Tensor, t: float, parameters: Mapping[str, Any]) -> torch.Tensor:
        """One network step of the predictor alone: ``u + dt * gain * direction``, with the
        Dirichlet values of ``t + dt``."""
        return self._enforce(u + self.dt * self.gain * self.direction(u, t, parameters), t + self.dt, parameters)
