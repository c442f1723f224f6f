"""Time-stepping residuals between frames, looked up by name.

Each scheme maps frames ``U`` ``(T, ...)`` at uniform times, their steps ``dt``
``(T-1, 1, 1, 1)`` and the right-hand side ``F`` (a function of a frame slice) to the
residual of every step it constrains:

* ``crank_nicolson``: ``(U_k+1 - U_k)/dt - (F_k+1 + F_k)/2``, every step, second order;
* ``central`` (the paper's): ``(U_k+1 - U_k-1)/(2 dt) - F_k``; it leaves the first step
  unconstrained and has no residual at the last frame (``T - 2`` residuals);
* ``backward_euler``: ``(U_k+1 - U_k)/dt - F_k+1``, first order;
* ``bdf2``: ``(3 U_k+1 - 4 U_k + U_k-1)/(2 dt) - F_k+1`` (backward Euler for the first
  step), second order and L-stable: it damps the stiff transients that an initial value
  incompatible with its boundary conditions excites, where Crank-Nicolson rings;
* ``adams_moulton``: fourth order, see :func:`adams_moulton_average` (Crank-Nicolson on
  fewer than four frames).

``past`` is how many frames a step looks back on (the classical solver advances with it);
``one_step`` is false for ``central``, which cannot be marched from an initial value.
Residual ``k`` reads frames ``k - history`` to ``k + width - 1`` (:meth:`TimeScheme.frames_of`),
so the residual of a long rollout can be formed piece by piece with the same values.
``lead`` and ``implicit_weight`` are the coefficients of ``U_k+1 / dt`` and ``F_k+1`` in a
step's residual: the Jacobian of the residual in the new frame is
``(lead / dt) (I - dt * implicit_weight / lead * dF/du)``, which Newton-Krylov solvers
precondition with the implicit diffusion filter of step ``dt * implicit_weight / lead``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

#: ``rhs(start, stop)`` is F of ``frames[start:stop]``.
RightHandSide = Callable[[int, "int | None"], torch.Tensor]
Residual = Callable[[torch.Tensor, torch.Tensor, RightHandSide], torch.Tensor]


def _crank_nicolson(frames: torch.Tensor, dt: torch.Tensor, rhs: RightHandSide) -> torch.Tensor:
    f = rhs(0, None)
    return (frames[1:] - frames[:-1]) / dt - 0.5 * (f[1:] + f[:-1])


def _central(frames: torch.Tensor, dt: torch.Tensor, rhs: RightHandSide) -> torch.Tensor:
    span = dt[1:] + dt[:-1]
    return (frames[2:] - frames[:-2]) / span - rhs(1, -1)


def _backward_euler(frames: torch.Tensor, dt: torch.Tensor, rhs: RightHandSide) -> torch.Tensor:
    return (frames[1:] - frames[:-1]) / dt - rhs(1, None)


def _bdf2(frames: torch.Tensor, dt: torch.Tensor, rhs: RightHandSide) -> torch.Tensor:
    f = rhs(1, None)
    first = (frames[1:2] - frames[:1]) / dt[:1] - f[:1]
    rest = (3 * frames[2:] - 4 * frames[1:-1] + frames[:-2]) / (2 * dt[1:]) - f[1:]  # uniform steps
    return torch.cat([first, rest])


def _adams_moulton(frames: torch.Tensor, dt: torch.Tensor, rhs: RightHandSide) -> torch.Tensor:
    if frames.shape[0] < 4:
        return _crank_nicolson(frames, dt, rhs)
    return (frames[1:] - frames[:-1]) / dt - adams_moulton_average(rhs(0, None))


def adams_moulton_average(f: torch.Tensor) -> torch.Tensor:
    """The fourth-order average of F over each step, ``(T-1, ...)`` from F at ``T >= 4``
    uniformly spaced frames: the integral over [t_k, t_k+1] of the cubic through four
    neighbouring values, divided by dt. From the third step on it is the three-step
    Adams-Moulton formula (9 F_k+1 + 19 F_k - 5 F_k-1 + F_k-2) / 24; the first two steps,
    which lack past values, use the cubic through F_0..F_3. Local error O(dt^5) on every
    step, so the residual is fourth order (Crank-Nicolson's is second)."""
    first = (9 * f[0:1] + 19 * f[1:2] - 5 * f[2:3] + f[3:4]) / 24
    second = (-f[0:1] + 13 * f[1:2] + 13 * f[2:3] - f[3:4]) / 24
    rest = (9 * f[3:] + 19 * f[2:-1] - 5 * f[1:-2] + f[:-3]) / 24
    return torch.cat([first, second, rest])


@dataclass(frozen=True)
class TimeScheme:
    """A residual and what a classical solver needs to march it."""

    residual: Residual
    past: int = 1
    one_step: bool = True
    lead: float = 1.0
    implicit_weight: float = 0.5
    history: int = 0
    width: int = 2

    def frames_of(self, start: int, stop: int, n_frames: int) -> tuple[int, int]:
        """The frame slice ``[first, last)`` whose residual contains residuals ``start`` to
        ``stop - 1`` of all ``n_frames`` frames, as its residuals ``start - first`` onwards
        (the residuals before them use the special first steps of a shorter sequence)."""
        return max(0, start - self.history), min(n_frames, stop + self.width - 1)


TIME_SCHEMES: dict[str, TimeScheme] = {
    "crank_nicolson": TimeScheme(_crank_nicolson),
    "central": TimeScheme(_central, past=2, one_step=False, lead=0.5, implicit_weight=0.0, width=3),
    "backward_euler": TimeScheme(_backward_euler, implicit_weight=1.0),
    "bdf2": TimeScheme(_bdf2, past=2, lead=1.5, implicit_weight=1.0, history=1),
    "adams_moulton": TimeScheme(_adams_moulton, past=3, implicit_weight=9 / 24, history=2),
}


def time_scheme(name: str) -> TimeScheme:
    """The scheme called ``name`` (the names of ``physics.time_scheme``)."""
    return TIME_SCHEMES[name]
