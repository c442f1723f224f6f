"""The exact minimiser of the discrete residual (:mod:`phycrnet.discrete`), checked against
exact solutions: it must hold the boundary values, converge at the time scheme's order, and
be exact where the discretisation is."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import mixed_exact, periodic_exact

from phycrnet.errors import OptionsError
from phycrnet.methods.newton import discrete_solution
from phycrnet.physics.residual import PhysicsOptions
from phycrnet.spec.problem import load_spec


@pytest.mark.parametrize("scheme", ["crank_nicolson", "bdf2", "backward_euler", "adams_moulton"])
@pytest.mark.parametrize("mode", ["hard", "soft"])
def test_mixed_conditions_are_solved_exactly(mixed_bc_spec, scheme, mode):
    # u = x^2 + y^2 + 4kt is linear in t and quadratic in space: every scheme is exact on it,
    # including the Dirichlet nodes that the hard mode overwrites (BDF2 has two past frames).
    problem = load_spec(mixed_bc_spec)
    frames = discrete_solution(problem, PhysicsOptions(derivatives="fd4", boundary=mode, time_scheme=scheme))
    exact = mixed_exact(problem.grid.x.points, problem.grid.y.points, problem.times)
    assert frames.shape == (problem.n_steps + 1, 1, *exact.shape[1:])
    np.testing.assert_allclose(frames[:, 0], exact, atol=1e-8)


def test_crank_nicolson_converges_at_second_order_with_substeps(periodic_heat_spec):
    problem = load_spec(periodic_heat_spec)
    exact = periodic_exact(problem.grid.x.points, problem.grid.y.points, problem.times)
    errors = []
    for substeps in (1, 2, 4):
        frames = discrete_solution(problem, PhysicsOptions(derivatives="spectral"), substeps=substeps)
        assert frames.shape[0] == problem.n_steps + 1
        errors.append(np.abs(frames[:, 0] - exact).max())
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(rates > 1.9), (errors, rates)


def test_adams_moulton_converges_at_fourth_order(periodic_heat_spec):
    """The fourth-order residual (three-step Adams-Moulton, its first two steps from the
    cubic through F_0..F_3): the exact minimiser's error falls 16-fold per halved step
    (spectral in space, so the time error is all there is), and is far below
    Crank-Nicolson's at the same step."""
    problem = load_spec({**periodic_heat_spec, "parameters": {"k": 0.01}, "time": {"t_end": 0.4, "dt": 0.05}})
    exact = periodic_exact(problem.grid.x.points, problem.grid.y.points, problem.times, k=0.01)
    errors = []
    for substeps in (1, 2, 4):
        frames = discrete_solution(problem, PhysicsOptions(derivatives="spectral", time_scheme="adams_moulton"), substeps=substeps)
        errors.append(np.abs(frames[:, 0] - exact).max())
    rates = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(rates > 3.8), (errors, rates)
    crank_nicolson = discrete_solution(problem, PhysicsOptions(derivatives="spectral"))
    assert errors[0] < 0.05 * np.abs(crank_nicolson[:, 0] - exact).max()


def test_central_scheme_is_refused(periodic_heat_spec):
    with pytest.raises(OptionsError, match="central"):
        discrete_solution(load_spec(periodic_heat_spec), PhysicsOptions(time_scheme="central"))


def test_sparse_and_dense_jacobians_give_the_same_solution():
    """A nonlinear two-field problem with Dirichlet, Neumann and Robin sides (Burgers-like,
    fourth-order stencils with ghost-node closures): the sparse Newton step (probed
    Jacobian, chord iterations) reaches the dense one's solution."""
    spec = {
        "name": "tiny_burgers",
        "parameters": {"nu": 0.05},
        "domain": {"x": [0.0, 1.0], "y": [0.0, 1.0]},
        "grid": {"nx": 14, "ny": 13},
        "time": {"t_end": 0.1, "dt": 0.05},
        "equations": {"u": "-u*d_dx(u) - v*d_dy(u) + nu*laplace(u)", "v": "-u*d_dx(v) - v*d_dy(v) + nu*laplace(v)"},
        "initial": {"u": "sin(pi*x)*cos(pi*y)", "v": "0.5*cos(pi*x)*y"},
        "boundary": {
            "u": {"left": {"type": "dirichlet", "value": 0}, "right": {"type": "dirichlet", "value": 0},
                  "bottom": {"type": "neumann", "value": 0}, "top": {"type": "robin", "a": 1.0, "b": 0.5, "value": "-0.5*pi*sin(pi*x)"}},
            "v": {"left": {"type": "neumann", "value": 0}, "right": {"type": "robin", "a": 1.0, "b": 2.0, "value": "-0.5*y"},
                  "bottom": {"type": "dirichlet", "value": 0}, "top": {"type": "neumann", "value": "0.5*cos(pi*x)"}},
        },
    }
    problem = load_spec(spec)
    options = PhysicsOptions(derivatives="fd4", boundary="hard")
    sparse = discrete_solution(problem, options, substeps=2, jacobian="sparse")
    dense = discrete_solution(problem, options, substeps=2, jacobian="dense")
    assert np.abs(sparse[-1] - sparse[0]).max() > 1e-2  # the solution moves
    np.testing.assert_allclose(sparse, dense, atol=1e-10)


def test_sparse_jacobian_needs_hard_boundaries_without_periodic_axes(periodic_heat_spec, mixed_bc_spec):
    with pytest.raises(OptionsError, match="jacobian sparse"):
        discrete_solution(load_spec(periodic_heat_spec), PhysicsOptions(derivatives="fd4", boundary="hard"), jacobian="sparse")
    with pytest.raises(OptionsError, match="jacobian sparse"):
        discrete_solution(load_spec(mixed_bc_spec), PhysicsOptions(boundary="soft"), jacobian="sparse")
    with pytest.raises(OptionsError, match="jacobian"):
        discrete_solution(load_spec(mixed_bc_spec), jacobian="banded")
