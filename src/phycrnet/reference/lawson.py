"""Integrating-factor (Lawson) Dormand-Prince 5(4) steps for ``y' = L y + N(t, y)``.

``L`` is diagonal (a Fourier symbol: constant diffusion, real and non-positive). With
``v(s) = exp(-s L) y(t + s)`` the equation becomes ``v' = exp(-s L) N(t + s, exp(s L) v)``,
which carries no stiffness from ``L``; Dormand-Prince applied to it and written back in
``y`` (Lawson 1967) reads, with ``E(s) = exp(s*dt*L)``,

    Y_i   = E(c_i) y + dt * sum_j a_ij E(c_i - c_j) K_j,      K_i = N(t + c_i dt, Y_i),
    y_new = E(1) y + dt * sum_j b_j E(1 - c_j) K_j,
    error = dt * sum_j e_j E(1 - c_j) K_j.

Only ``E(s)`` with ``s >= 0`` occurs (the nodes ``c`` increase), so decaying modes are never
amplified. The last stage is ``N`` at ``y_new`` (first-same-as-last, as in plain
Dormand-Prince), so a step costs six evaluations of ``N``. A linear problem (``N = 0``) is
solved exactly; the step size is governed by ``N`` alone: accuracy and, for advection, the
explicit stability limit of the nonlinear terms, not the diffusion.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from phycrnet.reference.integrate import DP_A, DP_B, DP_C, DP_E, RightHandSide

__all__ = ["LawsonStep", "SpectralNorm"]


class LawsonStep:
    """One Lawson Dormand-Prince step (a :data:`phycrnet.reference.integrate.Step`).

    Args:
        linear: the diagonal of ``L``, broadcastable to the state (real, non-positive).
    """

    def __init__(self, linear: np.ndarray) -> None:
        self.linear = linear
        self.dt: float | None = None
        self.exponentials: dict[float, np.ndarray] = {}

    def __call__(
        self, f: RightHandSide, t: float, y: np.ndarray, f0: np.ndarray, dt: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        propagate = self._propagator(dt)
        stages = [f0]
        for c, row in zip(DP_C[1:], DP_A[1:]):
            stage = propagate(c, y) + _weighted(dt, row, [propagate(c - DP_C[j], k) for j, k in enumerate(stages)])
            stages.append(f(t + c * dt, stage))
        shifted = [propagate(1.0 - c, k) for c, k in zip(DP_C, stages)]
        y_new = propagate(1.0, y) + _weighted(dt, DP_B, shifted)
        f_new = f(t + dt, y_new)
        error = _weighted(dt, DP_E, [*shifted, f_new])
        return y_new, f_new, error

    def _propagator(self, dt: float) -> Callable[[float, np.ndarray], np.ndarray]:
        """``(s, values) -> E(s) values`` for steps of ``dt``.

        The factors are kept while the step size stays the same to 1e-12 (steps that land on
        equally spaced frames differ in their last bits), which changes them by about
        ``1e-12*|dt*L|``, far below any tolerance.
        """
        if self.dt is None or abs(dt - self.dt) > 1e-12 * abs(dt):
            self.dt, self.exponentials = dt, {}
        step, exponentials = self.dt, self.exponentials

        def propagate(s: float, values: np.ndarray) -> np.ndarray:
            key = round(s, 12)
            if key == 0.0:
                return values
            if key not in exponentials:
                exponentials[key] = np.exp((s * step) * self.linear)
            return exponentials[key] * values

        return propagate


def _weighted(dt: float, weights: tuple[float, ...], terms: list[np.ndarray]) -> np.ndarray:
    """``dt * sum(w_i * terms_i)`` over the nonzero weights."""
    result = np.zeros_like(terms[0])
    for weight, term in zip(weights, terms):
        if weight != 0.0:
            result += (dt * weight) * term
    return result


class SpectralNorm:
    """Error norm on half spectra: the RMS over fields of ``rms(error) / (atol + rtol*rms(y))``.

    The RMS of a field over the grid is read off its half spectrum (Parseval), so no transform
    is needed; ``y`` is the larger of the states before and after the step.

    Args:
        weights: Parseval weights of the half-spectrum columns, ``(Mx//2 + 1,)``.
        rtol: relative tolerance.
        atol: absolute tolerance of each field, ``(C,)`` (field units).
    """

    def __init__(self, weights: np.ndarray, rtol: float, atol: np.ndarray) -> None:
        self.weights = weights
        self.rtol = rtol
        self.atol = np.asarray(atol, dtype=np.float64)

    def rms(self, coefficients: np.ndarray) -> np.ndarray:
        """Root mean square over the grid of each field: ``(C,)``."""
        return np.sqrt(np.sum(np.square(np.abs(coefficients)) * self.weights, axis=(-2, -1)))

    def __call__(self, error: np.ndarray, y: np.ndarray, y_new: np.ndarray) -> float:
        scale = self.atol + self.rtol * np.maximum(self.rms(y), self.rms(y_new))
        return float(np.sqrt(np.mean(np.square(self.rms(error) / scale))))
