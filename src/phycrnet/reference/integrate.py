"""Adaptive embedded Runge-Kutta time stepping for the reference solvers.

:func:`integrate` advances ``dy/dt = f(t, y)`` with Dormand-Prince 5(4) steps (Hairer,
Norsett & Wanner, "Solving ODEs I", table 5.2) and Hairer's PI step-size control, landing
exactly on every frame time. :func:`integrate_scheme` runs the same loop for any embedded
step with the first-same-as-last property and its own error norm (the spectral reference's
integrating-factor steps, :mod:`phycrnet.reference.lawson`).

The stepping makes no BLAS calls: multithreaded BLAS in ``scipy.integrate`` slowed the
integration down 10-20 times on a loaded 2-core machine.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from phycrnet.errors import DivergenceError, TimeLimitError

__all__ = [
    "DP_A",
    "DP_B",
    "DP_C",
    "DP_E",
    "ErrorNorm",
    "IntegrationStats",
    "OutOfTime",
    "PointwiseNorm",
    "RightHandSide",
    "Scheme",
    "Step",
    "absolute_tolerance",
    "dormand_prince_step",
    "integrate",
    "integrate_scheme",
    "progress_bar",
    "require_finite",
]

#: A right-hand side ``f(t, state) -> d state/dt``.
RightHandSide = Callable[[float, np.ndarray], np.ndarray]
#: One embedded step ``step(f, t, y, f(t, y), dt) -> (y_new, f(t + dt, y_new), error estimate)``.
Step = Callable[[RightHandSide, float, np.ndarray, np.ndarray, float], tuple[np.ndarray, np.ndarray, np.ndarray]]
#: ``norm(error, y, y_new)``: size of ``error`` relative to the tolerance at states ``y`` and
#: ``y_new`` (a step is accepted when it is at most 1); it may overwrite ``error``.
ErrorNorm = Callable[[np.ndarray, np.ndarray, np.ndarray], float]

# Dormand-Prince 5(4) tableau (Hairer, Norsett & Wanner, "Solving ODEs I", table 5.2).
DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
DP_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
#: 5th- minus 4th-order weights; the last entry multiplies f(t + dt, y_new) (FSAL).
DP_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)


@dataclass
class IntegrationStats:
    """Work done by :func:`integrate`."""

    steps: int = 0
    rejected: int = 0
    evaluations: int = 0


class OutOfTime(TimeLimitError):
    """The integration ran past its deadline (a :class:`~phycrnet.errors.TimeLimitError`,
    the one error of every solver that runs out of time)."""


class PointwiseNorm:
    """RMS over all entries of ``error / (atol + rtol*max(|y|, |y_new|))``."""

    def __init__(self, rtol: float, atol: np.ndarray | float) -> None:
        self.rtol = rtol
        self.atol = atol

    def __call__(self, error: np.ndarray, y: np.ndarray, y_new: np.ndarray) -> float:
        scale = np.maximum(np.abs(y), np.abs(y_new))
        scale *= self.rtol
        scale += self.atol
        error /= scale
        return float(np.sqrt(np.mean(np.square(error))))


@dataclass(frozen=True)
class Scheme:
    """An embedded one-step method for one right-hand side.

    Attributes:
        rhs: the function ``f(t, y)`` the steps evaluate.
        step: one step (see :data:`Step`); a 5th-order pair with a 4th-order error estimate,
            which is what the step-size controller is tuned for.
        norm: the error norm (see :data:`ErrorNorm`).
        label: the solver's name, which starts the error messages.
    """

    rhs: RightHandSide
    step: Step
    norm: ErrorNorm
    label: str = "py-pde reference"


def integrate(
    rhs: RightHandSide,
    state: np.ndarray,
    times: np.ndarray,
    on_frame: Callable[[int, float, np.ndarray], None],
    *,
    rtol: float,
    atol: np.ndarray | float,
    deadline: float | None = None,
    progress: Any = None,
) -> IntegrationStats:
    """Integrate ``d state/dt = rhs(t, state)`` with adaptive Dormand-Prince 5(4) steps.

    Steps land exactly on every frame time, where ``on_frame(k, t_k, state)`` is called
    (also for ``k = 0``). The local error is kept below ``atol + rtol*|state|`` in the RMS
    norm, with Hairer's PI step-size control. ``deadline`` is a ``time.perf_counter()``
    value after which :class:`OutOfTime` is raised; ``progress`` is updated once per frame.

    Raises:
        DivergenceError: the solution became NaN or infinite, or the step size underflowed.
    """
    scheme = Scheme(rhs, dormand_prince_step, PointwiseNorm(rtol, atol))
    return integrate_scheme(scheme, state, times, on_frame, deadline=deadline, progress=progress)


def integrate_scheme(
    scheme: Scheme,
    state: np.ndarray,
    times: np.ndarray,
    on_frame: Callable[[int, float, np.ndarray], None],
    *,
    deadline: float | None = None,
    progress: Any = None,
) -> IntegrationStats:
    """:func:`integrate` with any embedded step and error norm (real or complex states)."""
    stepper = _Stepper(scheme, deadline)
    y = np.array(state, dtype=np.result_type(state, np.float64))
    t = float(times[0])
    on_frame(0, t, y)
    derivative = stepper.evaluate(t, y)
    require_finite(derivative, t, scheme.label)
    dt = _initial_step(stepper.evaluate, scheme.norm, t, y, derivative, float(times[-1] - times[0]))
    for k in range(1, len(times)):
        t, y, derivative, dt = stepper.advance(t, y, derivative, dt, float(times[k]))
        on_frame(k, t, y)
        if progress is not None:
            progress.update(1)
    return stepper.stats


class _Stepper:
    """Adaptive stepping of one scheme (see :func:`integrate`)."""

    def __init__(self, scheme: Scheme, deadline: float | None) -> None:
        self.scheme = scheme
        self.deadline = deadline
        self.controller = _StepController()
        self.stats = IntegrationStats()

    def evaluate(self, t: float, y: np.ndarray) -> np.ndarray:
        self.stats.evaluations += 1
        return self.scheme.rhs(t, y)

    def advance(
        self, t: float, y: np.ndarray, derivative: np.ndarray, dt: float, t_target: float
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Step from ``t`` exactly to ``t_target``; returns ``(t, y, f(t, y), next dt)``.

        The last step before the target lands on it; a remainder between one and two steps
        is split in halves instead of leaving a sliver.
        """
        while t < t_target:
            if self.deadline is not None and time.perf_counter() > self.deadline:
                raise OutOfTime(f"past the deadline at t = {t:g}")
            remaining = t_target - t
            landing = dt >= remaining * (1 - 1e-12)
            step = remaining if landing else (0.5 * remaining if dt > 0.5 * remaining else dt)
            y_new, f_new, error = self.scheme.step(self.evaluate, t, y, derivative, step)
            norm = self.scheme.norm(error, y, y_new)
            proposal = self._next_step(t, t_target, step, norm)
            if not norm <= 1.0:  # rejected (NaN included)
                self.stats.rejected += 1
                dt = proposal
                continue
            self.stats.steps += 1
            t = t_target if landing else t + step
            y, derivative = y_new, f_new
            dt = max(proposal, dt) if step < dt else proposal
        return t, y, derivative, dt

    def _next_step(self, t: float, t_target: float, step: float, norm: float) -> float:
        smallest = 1e-12 * max(1.0, abs(t_target))
        if not math.isfinite(norm):
            if 0.1 * step < smallest:
                raise DivergenceError(f"{self.scheme.label} solution became NaN or infinite at t={t:.6g}")
            return 0.1 * step
        proposal = self.controller.propose(step, norm)
        if norm > 1.0 and proposal < smallest:
            raise DivergenceError(
                f"{self.scheme.label}: time step underflow at t={t:.6g} (the solution blows up or is too stiff)"
            )
        return proposal


def dormand_prince_step(
    f: RightHandSide, t: float, y: np.ndarray, f0: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Dormand-Prince step: ``(y_new, f(t + dt, y_new), error estimate)``."""
    stages = [f0]
    for c, row in zip(DP_C[1:], DP_A[1:]):
        stages.append(f(t + c * dt, _combine(y, dt, row, stages)))
    y_new = _combine(y, dt, DP_B, stages)
    f_new = f(t + dt, y_new)
    error = _combine(None, dt, DP_E, [*stages, f_new])
    return y_new, f_new, error


def _combine(base: np.ndarray | None, dt: float, weights: Sequence[float], stages: Sequence[np.ndarray]) -> np.ndarray:
    """``base + dt * sum(w_i * k_i)`` with a single scratch array (no large temporaries)."""
    result = np.zeros_like(stages[0]) if base is None else base.copy()
    scratch = np.empty_like(stages[0])
    for weight, stage in zip(weights, stages):
        if weight != 0.0:
            np.multiply(stage, dt * weight, out=scratch)
            result += scratch
    return result


class _StepController:
    """Hairer's PI step-size controller for a 5th-order pair (beta = 0.04, safety 0.9)."""

    beta = 0.04
    safety = 0.9
    max_growth = 5.0
    max_shrink = 10.0

    def __init__(self) -> None:
        self.previous_error = 1e-4

    def propose(self, dt: float, error: float) -> float:
        """The next step after a step of ``dt`` with normalised error ``error``."""
        factor = max(error, 1e-10) ** (0.2 - 0.75 * self.beta)
        if error <= 1.0:
            factor /= self.previous_error**self.beta
            self.previous_error = max(error, 1e-4)
            factor = min(self.max_shrink, max(1.0 / self.max_growth, factor / self.safety))
            return dt / factor
        return dt / min(self.max_shrink, factor / self.safety)


def _initial_step(f: RightHandSide, norm: ErrorNorm, t: float, y: np.ndarray, f0: np.ndarray, span: float) -> float:
    """Hairer's starting step estimate, at most a tenth of the time span."""
    d0 = norm(np.array(y), y, y)
    d1 = norm(np.array(f0), y, y)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, 0.1 * span)
    f1 = f(t + h0, y + h0 * f0)
    d2 = norm(f1 - f0, y, y) / h0
    h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** 0.2
    return min(100 * h0, h1, 0.1 * span)


def require_finite(values: np.ndarray, t: float, label: str = "py-pde reference") -> None:
    """Raise a :class:`DivergenceError` naming ``label`` and ``t`` unless all values are finite."""
    if not np.all(np.isfinite(values)):
        raise DivergenceError(f"{label} solution became NaN or infinite at t={t:.6g}")


def absolute_tolerance(state: np.ndarray, rtol: float) -> np.ndarray:
    """Per-field absolute tolerance ``rtol * scale``, shape ``(n_fields, 1, 1)``.

    ``state`` has shape ``(n_fields, n1, n2)``; a field's scale is its largest magnitude, or
    the largest of all fields where it is zero (1 where all are).
    """
    peaks = np.max(np.abs(state), axis=(1, 2))
    overall = float(np.max(peaks)) if peaks.size and np.max(peaks) > 0 else 1.0
    scales = np.where(peaks > 0, peaks, overall)
    return (rtol * scales)[:, None, None]


def progress_bar(total: int, description: str, enabled: bool) -> Any:
    """A tqdm bar over ``total`` frames, or ``None`` when not ``enabled``."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="frame", leave=False)
