"""Implicit treatment of constant diffusion in the network's physics input.

With ``model.physics_input`` the decoder sees the right-hand side F(u) and learns a
correction to the explicit step ``u + dt * F(u)``. Where diffusion makes that step unstable
(FitzHugh-Nagumo's inhibitor diffuses 100 times faster than its activator; Gray-Scott runs
dt = 5), the network is better served by the linearly implicit (IMEX Euler) step, diffusion
backward and everything else forward::

    (I - dt * D * Lap) (u_next - u) = dt * F(u)   <=>   u_next = u + dt * P F(u),

with ``P = (I - dt * D * Lap)^-1`` per field. On a fully periodic grid ``P`` is diagonal in
Fourier space, so ``P F`` costs two FFTs; its eigenvalues on pure diffusion are
``dt * lam / (1 - dt * lam)`` in (-1, 0], so the step is stable for any dt. ``Lap`` is the
residual's own discrete Laplacian (its symbol is read off the operator itself, spectral or
finite-difference alike), and D is each field's own diffusion coefficient where it is a
constant (cross-diffusion, variable or nonlinear diffusion stay in the explicit part).
The filter only shapes what the network sees; the physics residual is unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import sympy
import torch

from phycrnet.expressions import substitute, transport_coefficients
from phycrnet.operators import Derivatives
from phycrnet.spec import Problem


def constant_diffusivities(problem: Problem, values: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Each field's own diffusion coefficients ``(D_x, D_y)`` in its equation, where both are
    non-negative constants once the parameters take ``values`` (fields without constant
    diffusion are left out)."""
    found: dict[str, tuple[float, float]] = {}
    for field, expression in problem.equations.items():
        coefficients = transport_coefficients(expression, field)
        pair = []
        for axis in ("x", "y"):
            value = substitute(coefficients[f"diffusion_{axis}"], values)
            pair.append(float(value) if isinstance(value, sympy.Number) and value.is_real else math.nan)
        if all(math.isfinite(d) and d >= 0 for d in pair) and any(d > 0 for d in pair):
            found[field] = (pair[0], pair[1])
    return found


def diffusion_symbol(derivatives: Derivatives, diffusivity: tuple[float, float], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """Eigenvalues ``(ny, nx // 2 + 1)`` (``rfft2`` order) of ``D_x d2/dx2 + D_y d2/dy2`` with
    the periodic operators of ``derivatives``: the transform of the operator applied to a
    unit impulse. Real and non-positive for symmetric stencils and spectral derivatives."""
    impulse = torch.zeros(derivatives.grid.shape, dtype=dtype, device=device)
    impulse[0, 0] = 1.0
    response = diffusivity[0] * derivatives.d2_dx2(impulse) + diffusivity[1] * derivatives.d2_dy2(impulse)
    return torch.fft.rfft2(response).real


class ImplicitDiffusion:
    """``f -> P f`` with ``P = (I - dt * D * Lap)^-1`` per field, by FFT (see the module).

    Args:
        problem: a fully periodic problem.
        derivatives: the residual's operators (their Laplacian is the one inverted).
        diffusivities: ``field -> (D_x, D_y)``; fields not named are passed through.
        dt: the step (the network's sub-step) in time units.
    """

    def __init__(self, problem: Problem, derivatives: Derivatives, diffusivities: Mapping[str, tuple[float, float]], dt: float, *, dtype: torch.dtype, device: torch.device) -> None:
        if not all(problem.periodic):
            raise ValueError("implicit diffusion by FFT needs a periodic grid on both axes")
        self.dt = dt
        self.diffusivities = dict(diffusivities)
        multipliers = []
        for field in problem.fields:
            symbol = diffusion_symbol(derivatives, self.diffusivities.get(field, (0.0, 0.0)), dtype, device)
            multipliers.append(1.0 / (1.0 - dt * symbol.clamp(max=0.0)))
        self.multipliers = torch.stack(multipliers)  # (C, ny, nx // 2 + 1)
        self.shape = problem.grid.shape

    @classmethod
    def for_problem(cls, problem: Problem, derivatives: Derivatives, dt: float, *, dtype: torch.dtype, device: torch.device) -> ImplicitDiffusion | None:
        """The filter for ``problem`` at step ``dt``, or None where it does not apply (an
        axis not periodic, or no field with constant diffusion)."""
        if not all(problem.periodic):
            return None
        diffusivities = constant_diffusivities(problem, problem.parameter_values())
        if not diffusivities:
            return None
        return cls(problem, derivatives, diffusivities, dt, dtype=dtype, device=device)

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        """``P f`` for ``f`` of shape ``(..., C, ny, nx)``."""
        spectrum = torch.fft.rfft2(f) * self.multipliers.to(f.dtype)
        return torch.fft.irfft2(spectrum, s=self.shape)
