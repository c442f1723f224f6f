"""The implicit-diffusion filter of the physics input (``phycrnet.implicit``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from phycrnet.discretisation.implicit import BoundedImplicitDiffusion, ImplicitDiffusion
from phycrnet.discretisation.operators import Derivatives
from phycrnet.spec.expressions import constant_diffusivities
from phycrnet.spec.problem import load_spec


def periodic_system(equations: dict[str, str], n: int = 16) -> dict:
    return {
        "name": "system",
        "parameters": {"a": 0.5, "b": 2.0},
        "domain": {"x": [0.0, 1.0], "y": [0.0, 2.0]},
        "grid": {"nx": n, "ny": n + 4},
        "time": {"t_end": 0.2, "dt": 0.05},
        "equations": equations,
        "initial": {name: "sin(2*pi*x)" for name in equations},
        "boundary": "periodic",
    }


def test_constant_diffusivities_are_read_per_field_and_axis():
    """Own constant diffusion counts (parameters substituted, d2_dx2 and d2_dy2 apart);
    cross-diffusion, state-dependent diffusion and fields without diffusion do not."""
    problem = load_spec(periodic_system({
        "u": "a*laplace(u) + b*d2_dy2(u) + laplace(v) - u*v",
        "v": "v*laplace(v) + u",
        "w": "u - w",
    }))
    found = constant_diffusivities(problem.equations, problem.parameter_values())
    assert found == {"u": (pytest.approx(0.5), pytest.approx(2.5))}


@pytest.mark.parametrize("spectral, accuracy", [(True, 4), (False, 4), (False, 2)])
def test_filter_inverts_the_implicit_diffusion_operator(spectral, accuracy):
    """P (g - dt * D * Lap g) = g with the residual's own Laplacian, per field; a field
    without diffusion passes unchanged."""
    problem = load_spec(periodic_system({"u": "a*laplace(u)", "v": "b*laplace(v) - u", "w": "u"}))
    derivatives = Derivatives(problem.grid, accuracy, spectral=spectral, dtype=torch.float64)
    dt = 0.3
    filter_ = ImplicitDiffusion.for_problem(problem, derivatives, dt, dtype=torch.float64, device=torch.device("cpu"))
    g = torch.randn(2, 3, *problem.grid.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    diffusion = torch.tensor([0.5, 2.0, 0.0], dtype=torch.float64).view(1, 3, 1, 1)
    implicit = g - dt * diffusion * derivatives.laplace(g)
    assert torch.allclose(filter_(implicit), g, atol=1e-10)
    assert torch.allclose(filter_(g)[:, 2], g[:, 2], atol=1e-12)


def test_filter_needs_constant_diffusion(mixed_bc_spec):
    problem = load_spec(mixed_bc_spec)
    derivatives = Derivatives(problem.grid, 4, dtype=torch.float64)
    bounded = ImplicitDiffusion.for_problem(problem, derivatives, 0.1, dtype=torch.float64, device=torch.device("cpu"))
    assert isinstance(bounded, BoundedImplicitDiffusion)
    reaction = load_spec(periodic_system({"u": "u - u**3"}))
    derivatives = Derivatives(reaction.grid, 4, spectral=True, dtype=torch.float64)
    assert ImplicitDiffusion.for_problem(reaction, derivatives, 0.1, dtype=torch.float64, device=torch.device("cpu")) is None


def ghost_node_laplacian(g: np.ndarray, hx: float, hy: float, robin_ratio: float) -> np.ndarray:
    """The 3-point Laplacian of increments ``g`` (ny, nx) under the homogeneous conditions of
    ``mixed_bc_spec``: Dirichlet left (held at 0), Neumann right and top (mirrored ghost),
    Robin bottom (ghost ``g_1 - 2 h (a / b) g_0``). Written node by node, apart from the
    filter's per-axis matrices."""
    ny, nx = g.shape
    padded = np.zeros((ny + 2, nx + 2))
    padded[1:-1, 1:-1] = g
    padded[1:-1, -1] = g[:, -2]
    padded[-1, 1:-1] = g[-2, :]
    padded[0, 1:-1] = g[1, :] - 2 * hy * robin_ratio * g[0, :]
    out = np.zeros_like(g)
    for j in range(ny):
        for i in range(nx):
            d2x = 0.0 if i == 0 else (padded[j + 1, i] - 2 * padded[j + 1, i + 1] + padded[j + 1, i + 2]) / hx**2
            d2y = (padded[j, i + 1] - 2 * padded[j + 1, i + 1] + padded[j + 2, i + 1]) / hy**2
            out[j, i] = d2x + d2y
    return out


def test_bounded_filter_inverts_the_ghost_node_diffusion_operator(mixed_bc_spec):
    """On Dirichlet, Neumann and Robin sides: P (g - dt k Lap g) = g for increments g that
    are zero on the Dirichlet side, with Lap the 3-point stencil and mirrored ghost nodes."""
    problem = load_spec(mixed_bc_spec)
    derivatives = Derivatives(problem.grid, 4, dtype=torch.float64)
    dt, k = 0.7, 0.05
    filter_ = ImplicitDiffusion.for_problem(problem, derivatives, dt, dtype=torch.float64, device=torch.device("cpu"))
    hx, hy = problem.grid.spacing
    rng = np.random.default_rng(0)
    g = rng.normal(size=(problem.grid.y.n, problem.grid.x.n))
    g[:, 0] = 0.0
    implicit = g - dt * k * ghost_node_laplacian(g, hx, hy, robin_ratio=1.0 / 0.5)
    recovered = filter_(torch.as_tensor(implicit).view(1, 1, *g.shape))[0, 0].numpy()
    np.testing.assert_allclose(recovered, g, atol=1e-10)


def test_bounded_filter_damps_every_mode(mixed_bc_spec):
    """The eigenvalues of ``dt P k Lap`` lie in (-1, 0] at any dt: the IMEX step on pure
    diffusion is stable however stiff (here dt k / h^2 up to 2e3)."""
    problem = load_spec(mixed_bc_spec)
    derivatives = Derivatives(problem.grid, 4, dtype=torch.float64)
    hx, hy = problem.grid.spacing
    n = problem.grid.y.n * problem.grid.x.n
    for dt in (1e-3, 1.0, 10.0):
        filter_ = ImplicitDiffusion.for_problem(problem, derivatives, dt, dtype=torch.float64, device=torch.device("cpu"))
        columns = []
        for index in range(n):
            e = np.zeros(n)
            e[index] = 1.0
            lap = ghost_node_laplacian(e.reshape(problem.grid.y.n, problem.grid.x.n), hx, hy, robin_ratio=2.0)
            columns.append(filter_(torch.as_tensor(dt * 0.05 * lap).view(1, 1, problem.grid.y.n, problem.grid.x.n)).reshape(-1).numpy())
        eigenvalues = np.linalg.eigvals(np.stack(columns, axis=1))
        assert np.abs(eigenvalues.imag).max() < 1e-8
        assert eigenvalues.real.min() > -1.0 and eigenvalues.real.max() < 1e-10
