"""Implicit treatment of constant diffusion in the network's physics input.

With ``model.physics_input`` the decoder sees the right-hand side F(u) and learns a
correction to the explicit step ``u + dt * F(u)``. Where diffusion makes that step unstable
(FitzHugh-Nagumo's inhibitor diffuses 100 times faster than its activator; Gray-Scott runs
dt = 5), the network is better served by the linearly implicit (IMEX Euler) step, diffusion
backward and everything else forward::

    (I - dt * D * Lap) (u_next - u) = dt * F(u)   <=>   u_next = u + dt * P F(u),

with ``P = (I - dt * D * Lap)^-1`` per field. D is each field's own diffusion coefficient
where it is a constant (cross-diffusion, variable or nonlinear diffusion stay in the explicit
part). The filter only shapes what the network sees; the physics residual is unchanged.

* On a fully periodic grid ``P`` is diagonal in Fourier space, so ``P F`` costs two FFTs.
  ``Lap`` is the residual's own discrete Laplacian (its symbol is read off the operator
  itself, spectral or finite-difference alike), and the eigenvalues of ``dt P Lap`` are
  ``dt * lam / (1 - dt * lam)`` in (-1, 0]: the step is stable for any dt.
* With a bounded axis (:class:`BoundedImplicitDiffusion`) ``Lap`` is separable, one matrix
  per axis and field, applied through the eigenvectors of each (dense ``n x n`` products).
  A bounded axis gets the 3-point second difference with the homogeneous form of the
  field's condition on each side: a Dirichlet node is held (its increment is the known
  boundary value's, left to the boundary enforcement), a Neumann node sees a mirrored
  ghost node, a Robin node ``a u + b du/dn = g`` the ghost ``u_1 - 2 h (a / b) u_0``. A
  periodic axis keeps the residual's own operator (a circulant). Inside the grid the
  residual's 4th-order stencil then leaves ``dt D (Lap4 - Lap2)`` in the explicit part,
  whose eigenvalues against ``1 - dt D Lap2`` stay above -1/3. The residual's one-sided
  closures at Neumann and Robin sides differ more from the ghost-node rows: in the stiff
  limit the IMEX step's dt * rho comes to about 2.4 (1.5 with 2nd-order stencils, 1.3
  with Dirichlet sides only), a little beyond the explicit limit of 2, so the trainer
  damps the explicit gain slightly there (:func:`phycrnet.methods.resolve.resolve`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from phycrnet.discretisation.operators import Derivatives
from phycrnet.spec.expressions import constant_diffusivities
from phycrnet.spec.problem import Problem


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
        """The filter for ``problem`` at step ``dt``, or None where no field has constant
        diffusion. A grid with a bounded axis gets :class:`BoundedImplicitDiffusion`."""
        diffusivities = constant_diffusivities(problem.equations, problem.parameter_values())
        if not diffusivities:
            return None
        kind = cls if all(problem.periodic) else BoundedImplicitDiffusion
        return kind(problem, derivatives, diffusivities, dt, dtype=dtype, device=device)

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        """``P f`` for ``f`` of shape ``(..., C, ny, nx)``."""
        spectrum = torch.fft.rfft2(f) * self.multipliers.to(f.dtype)
        return torch.fft.irfft2(spectrum, s=self.shape)


class BoundedImplicitDiffusion(ImplicitDiffusion):
    """``f -> P f`` on a grid with a bounded axis, through per-axis eigenvectors (see the
    module for the operators). Same arguments as :class:`ImplicitDiffusion`."""

    def __init__(self, problem: Problem, derivatives: Derivatives, diffusivities: Mapping[str, tuple[float, float]], dt: float, *, dtype: torch.dtype, device: torch.device) -> None:
        self.dt = dt
        self.diffusivities = dict(diffusivities)
        self.shape = problem.grid.shape
        self.transforms: list[tuple[torch.Tensor, ...] | None] = []
        for field in problem.fields:
            d_x, d_y = self.diffusivities.get(field, (0.0, 0.0))
            if d_x == 0.0 and d_y == 0.0:
                self.transforms.append(None)
                continue
            x_values, x_vectors = _eigen(_axis_operator(problem, derivatives, field, "x"))
            y_values, y_vectors = _eigen(_axis_operator(problem, derivatives, field, "y"))
            symbol = d_x * x_values[None, :] + d_y * y_values[:, None]  # (ny, nx)
            multiplier = 1.0 / (1.0 - dt * symbol.clamp(max=0.0))
            parts = (y_vectors, torch.linalg.inv(y_vectors), x_vectors, torch.linalg.inv(x_vectors), multiplier)
            self.transforms.append(tuple(t.to(dtype=dtype, device=device) for t in parts))

    def __call__(self, f: torch.Tensor) -> torch.Tensor:
        """``P f`` for ``f`` of shape ``(..., C, ny, nx)``."""
        out = []
        for c, transform in enumerate(self.transforms):
            g = f[..., c, :, :]
            if transform is not None:
                v_y, w_y, v_x, w_x, multiplier = (t.to(f.dtype) for t in transform)
                g = v_y @ ((w_y @ g @ w_x.T) * multiplier) @ v_x.T
            out.append(g)
        return torch.stack(out, dim=-3)


def _axis_operator(problem: Problem, derivatives: Derivatives, field: str, axis: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``n x n`` second-derivative matrix ``A`` of ``field`` along ``axis`` (float64),
    with a diagonal ``d`` for which ``diag(d) A diag(d)^-1`` is symmetric: the residual's own
    circulant on a periodic axis, otherwise the 3-point stencil with the homogeneous side
    conditions (module docstring), whose ghost rows ``(.., -2 - 2 h a / b, 2)`` need
    ``d = 1 / sqrt(2)`` at their node."""
    index = 0 if axis == "x" else 1
    grid_axis = (problem.grid.x, problem.grid.y)[index]
    n, h = grid_axis.n, problem.grid.spacing[index]
    scale = torch.ones(n, dtype=torch.float64)
    if grid_axis.periodic:
        impulse = torch.zeros(problem.grid.shape, dtype=torch.float64)
        if axis == "x":
            impulse[:, 0] = 1.0
            column = derivatives.d2_dx2(impulse)[problem.grid.shape[0] // 2]
        else:
            impulse[0, :] = 1.0
            column = derivatives.d2_dy2(impulse)[:, problem.grid.shape[1] // 2]
        shift = (torch.arange(n)[:, None] - torch.arange(n)[None, :]) % n
        return column.to(torch.float64)[shift], scale
    matrix = (torch.diag(torch.full((n,), -2.0)) + torch.diag(torch.ones(n - 1), 1) + torch.diag(torch.ones(n - 1), -1)).double()
    sides = ("left", "right") if axis == "x" else ("bottom", "top")
    for side, node, inner in ((sides[0], 0, 1), (sides[1], n - 1, n - 2)):
        condition = problem.boundary[field][side]
        if condition.b == 0.0:  # Dirichlet: the node is held
            matrix[node, :] = 0.0
            matrix[:, node] = 0.0
            continue
        matrix[node, inner] = 2.0  # the mirrored ghost node
        matrix[node, node] = -2.0 - 2.0 * h * condition.a / condition.b
        scale[node] = 2.0**-0.5
    return matrix / h**2, scale


def _eigen(operator: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues and eigenvectors ``V`` of ``A`` from the symmetric ``diag(d) A diag(d)^-1``
    (see :func:`_axis_operator`): ``A = V diag(values) V^-1``."""
    matrix, scale = operator
    symmetric = scale[:, None] * matrix / scale[None, :]
    values, vectors = torch.linalg.eigh(0.5 * (symmetric + symmetric.T))
    return values, vectors / scale[:, None]
