"""The implicit-diffusion filter of the physics input (``phycrnet.implicit``)."""

from __future__ import annotations


import pytest
import torch

from phycrnet.implicit import ImplicitDiffusion, constant_diffusivities
from phycrnet.operators import Derivatives
from phycrnet.spec import load_spec


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
    found = constant_diffusivities(problem, problem.parameter_values())
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


def test_filter_needs_a_periodic_grid_and_constant_diffusion(mixed_bc_spec):
    problem = load_spec(mixed_bc_spec)
    derivatives = Derivatives(problem.grid, 4, dtype=torch.float64)
    assert ImplicitDiffusion.for_problem(problem, derivatives, 0.1, dtype=torch.float64, device=torch.device("cpu")) is None
    reaction = load_spec(periodic_system({"u": "u - u**3"}))
    derivatives = Derivatives(reaction.grid, 4, spectral=True, dtype=torch.float64)
    assert ImplicitDiffusion.for_problem(reaction, derivatives, 0.1, dtype=torch.float64, device=torch.device("cpu")) is None
