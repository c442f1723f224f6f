"""Tests of phycrnet.reference: the py-pde reference solver against exact solutions.

Every exact-solution case is a heat equation ``u_t = k*laplace(u) (+ source)`` on a 32x32
spec grid, solved with ``refinement=1`` (levels 1, 2 and, time permitting, 4) and compared
with the exact solution in relative L2 over all space-time nodes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.optimize import brentq

from phycrnet.errors import DivergenceError, OptionsError
from phycrnet.reference.boundary import pypde_boundary_conditions
from phycrnet.reference.grid import fourier_upsample, initial_state, refined_axes
from phycrnet.reference.rhs import NumpyRightHandSide, numba_right_hand_side
from phycrnet.reference.sampling import Sampler
from phycrnet.reference.solver import SOLVER_NAME, solve_reference, worst_field_rel_l2
from phycrnet.spec.problem import load_spec

K = 0.02  # diffusivity: k*t_end = 0.01 keeps the explicit stepping cheap at refinement 4
SIDES = ("left", "right", "bottom", "top")


def heat_spec(u0: Any, boundary: Any, **changes: Any) -> dict[str, Any]:
    """A heat-equation spec on [0,1]^2, 32x32 nodes, t in [0, 0.5] every 0.05."""
    spec = {
        "name": "heat",
        "parameters": {"k": K},
        "domain": {"x": [0.0, 1.0], "y": [0.0, 1.0]},
        "grid": {"nx": 32, "ny": 32},
        "time": {"t_end": 0.5, "dt": 0.05},
        "equations": {"u": "k*laplace(u)"},
        "initial": {"u": u0},
        "boundary": boundary,
    }
    spec.update(changes)
    return spec


def same_on_all_sides(kind: str, value: float = 0.0) -> dict[str, Any]:
    return {"u": {side: {"type": kind, "value": value} for side in SIDES}}


def exact_frames(problem, solution) -> np.ndarray:
    """``solution(x, y, t)`` on the spec grid at every frame, shape ``(T, ny, nx)``."""
    x, y = problem.grid.mesh()
    return np.stack([np.broadcast_to(solution(x, y, t), x.shape) for t in problem.times])


def assert_matches_exact(problem, solution, *, tolerance: float = 1e-3) -> Any:
    ds = solve_reference(problem, refinement=1)
    exact = exact_frames(problem, solution)
    error = np.linalg.norm(ds["u"].values - exact) / np.linalg.norm(exact)
    assert error < tolerance, f"rel L2 error {error:.3e}"
    # the reported estimate must not be optimistic
    assert error <= 2.0 * ds.attrs["estimated_error"] + 1e-12, (error, ds.attrs["estimated_error"])
    return ds


# --------------------------------------------------------------------------- exact solutions


def test_heat_dirichlet_zero():
    problem = load_spec(heat_spec("sin(pi*x)*sin(pi*y)", same_on_all_sides("dirichlet")))
    rate = 2 * math.pi**2 * K
    assert_matches_exact(problem, lambda x, y, t: math.exp(-rate * t) * np.sin(np.pi * x) * np.sin(np.pi * y))


def test_heat_neumann_zero():
    problem = load_spec(heat_spec("cos(pi*x)*cos(pi*y)", same_on_all_sides("neumann")))
    rate = 2 * math.pi**2 * K
    assert_matches_exact(problem, lambda x, y, t: math.exp(-rate * t) * np.cos(np.pi * x) * np.cos(np.pi * y))


def test_heat_robin_in_x_neumann_in_y():
    a, b = 1.0, 0.5
    # X(x) = cos(mu x) + c sin(mu x) with a*X - b*X' = 0 at x = 0 and a*X + b*X' = 0 at x = 1
    mu = brentq(lambda m: 2 * a * math.cos(m) + (a**2 / (b * m) - b * m) * math.sin(m), 1.0, 2.0)
    c = a / (b * mu)
    robin = {"type": "robin", "a": a, "b": b, "value": 0.0}
    boundary = {"u": {"left": robin, "right": robin, "bottom": {"type": "neumann"}, "top": {"type": "neumann"}}}
    initial = f"(cos({mu!r}*x) + {c!r}*sin({mu!r}*x))*cos(pi*y)"
    problem = load_spec(heat_spec(initial, boundary))
    rate = K * (mu**2 + math.pi**2)

    def solution(x, y, t):
        return math.exp(-rate * t) * (np.cos(mu * x) + c * np.sin(mu * x)) * np.cos(np.pi * y)

    assert_matches_exact(problem, solution)


def test_heat_periodic():
    problem = load_spec(heat_spec("sin(2*pi*x)*cos(2*pi*y)", "periodic"))
    rate = 8 * math.pi**2 * K
    ds = assert_matches_exact(
        problem, lambda x, y, t: math.exp(-rate * t) * np.sin(2 * np.pi * x) * np.cos(2 * np.pi * y)
    )
    assert ds.attrs["periodic_x"] == 1 and ds.attrs["periodic_y"] == 1


def test_manufactured_time_dependent_boundary_values():
    # u = exp(-t) sin(pi x/2 + 0.3) (1 + y^2); the source makes it solve u_t = k laplace(u) + f
    exact = "exp(-t)*sin(pi*x/2 + 0.3)*(1 + y**2)"
    source = "-exp(-t)*sin(pi*x/2 + 0.3)*((1 + y**2) + k*(2 - pi**2/4*(1 + y**2)))"
    dirichlet = {"type": "dirichlet", "value": exact}
    # on top (y = 1): u = 2 e^-t s and du/dn = du/dy = 2 e^-t s, so u + 0.5 du/dn = 3 e^-t s
    top = {"type": "robin", "a": 1.0, "b": 0.5, "value": "3*exp(-t)*sin(pi*x/2 + 0.3)"}
    boundary = {"u": {"left": dirichlet, "right": dirichlet, "bottom": dirichlet, "top": top}}
    spec = heat_spec(exact.replace("exp(-t)*", ""), boundary, equations={"u": f"k*laplace(u) + {source}"})
    problem = load_spec(spec)
    assert problem.boundary["u"]["left"].time_dependent

    def solution(x, y, t):
        return math.exp(-t) * np.sin(np.pi * x / 2 + 0.3) * (1 + y**2)

    assert_matches_exact(problem, solution)


# --------------------------------------------------------------------------- output format


def test_output_on_spec_grid_and_frames_with_attributes():
    boundary = {
        "u": {
            "left": {"type": "periodic"},
            "right": {"type": "periodic"},
            "bottom": {"type": "dirichlet", "value": 0.0},
            "top": {"type": "neumann", "value": 0.0},
        }
    }
    spec = heat_spec("sin(2*pi*x)*sin(pi*y/2)", boundary, grid={"nx": 16, "ny": 12}, time={"t_end": 0.2, "dt": 0.05})
    problem = load_spec(spec)
    ds = solve_reference(problem, refinement=1, richardson=False)
    np.testing.assert_array_equal(ds["x"].values, problem.grid.x.points)  # no endpoint
    np.testing.assert_array_equal(ds["y"].values, problem.grid.y.points)  # both boundary nodes
    assert ds["y"].values[0] == 0.0 and ds["y"].values[-1] == 1.0
    np.testing.assert_array_equal(ds["t"].values, problem.times)
    assert ds["u"].dims == ("t", "y", "x")
    assert ds["u"].shape == (len(problem.times), 12, 16)
    np.testing.assert_array_equal(ds["u"].values[0], problem.initial["u"])
    attrs = ds.attrs
    assert attrs["solver"] == SOLVER_NAME
    assert attrs["refinement"] == 2 and attrs["richardson"] == 0
    assert 0.0 < attrs["self_convergence"] < 1e-2
    assert attrs["estimated_error"] == pytest.approx(attrs["self_convergence"] / 3)
    for key in ("method", "pypde_version", "numba_version", "spec", "error_estimate"):
        assert isinstance(attrs[key], str) and attrs[key]


def test_automatic_refinement_reaches_tolerance():
    problem = load_spec(heat_spec("sin(2*pi*x)*cos(2*pi*y)", "periodic", grid={"nx": 16, "ny": 16}))
    ds = solve_reference(problem, tolerance=1e-5)
    assert ds.attrs["tolerance_met"] == 1
    assert ds.attrs["estimated_error"] < 1e-5
    assert ds.attrs["stop_reason"] == "tolerance reached"


# --------------------------------------------------------------------------- building blocks


def test_boundary_conditions_map_onto_pypde():
    boundary = {
        "u": {
            "left": {"type": "dirichlet", "value": "c*y*t"},
            "right": {"type": "neumann", "value": 0.5},
            "bottom": {"type": "robin", "a": 2.0, "b": 0.5, "value": 1.0},
            "top": {"type": "robin", "a": 1.0, "b": 0.0, "value": 3.0},
        }
    }
    problem = load_spec(heat_spec("x", boundary, parameters={"k": K, "c": 2.0}))
    conditions = pypde_boundary_conditions(problem, "u")
    assert conditions["x-"] == {"value_expression": "2.0*t*y"}
    assert conditions["x+"] == {"derivative": 0.5}
    assert conditions["y-"] == {"type": "mixed", "value": 4.0, "const": 2.0}
    assert conditions["y+"] == {"value": 3.0}


def test_sampling_is_exact_for_cubics_consistent_with_the_boundary_conditions():
    # u = p(x) cos(2 pi y), p(x) = 1 + x - 2x^2 + 2x^3: p(0) = 1, p(1) = 2, p'(1) = 3, so
    # left: u = cos(2 pi y), right: u + 0.5 du/dn = 3.5 cos(2 pi y)
    boundary = {
        "u": {
            "left": {"type": "dirichlet", "value": "cos(2*pi*y)"},
            "right": {"type": "robin", "a": 1.0, "b": 0.5, "value": "3.5*cos(2*pi*y)"},
            "bottom": {"type": "periodic"},
            "top": {"type": "periodic"},
        }
    }
    problem = load_spec(heat_spec("0", boundary, grid={"nx": 9, "ny": 8}))
    x, y = problem.grid.mesh()
    for refinement in (1, 2, 3):
        axes = refined_axes(problem.grid, refinement)
        xc, yc = np.meshgrid(axes[0].centres, axes[1].centres, indexing="ij")
        cells = (1 + xc - 2 * xc**2 + 2 * xc**3) * np.cos(2 * np.pi * yc)
        sampled = Sampler(problem, axes)(0.0, cells[None])[0]
        expected = (1 + x - 2 * x**2 + 2 * x**3) * np.cos(2 * np.pi * y)
        np.testing.assert_allclose(sampled, expected, atol=1e-12)


def test_periodic_cell_centres_sit_on_spec_points():
    problem = load_spec(heat_spec("0", "periodic", domain={"x": [-1.0, 2.0], "y": [0.0, 1.0]}))
    for refinement in (1, 2, 5):
        axis = refined_axes(problem.grid, refinement)[0]
        np.testing.assert_allclose(axis.centres[::refinement], problem.grid.x.points, atol=1e-14)


def test_file_and_random_initial_values_are_interpolated_smoothly():
    spec = heat_spec("0", "periodic", initial={"u": {"random": {"seed": 3, "scale": 1.0, "length": 0.3}}})
    problem = load_spec(spec)
    state = initial_state(problem, refined_axes(problem.grid, 3))[0]
    np.testing.assert_allclose(state[::3, ::3], problem.initial["u"].T, atol=1e-12)
    # band-limited interpolation reproduces trigonometric polynomials exactly
    x = np.arange(8) / 8
    fine = np.arange(32) / 32
    np.testing.assert_allclose(fourier_upsample(np.cos(2 * np.pi * 3 * x), 4, 0), np.cos(2 * np.pi * 3 * fine), atol=1e-12)


def test_operator_arguments_use_the_boundary_conditions_of_their_fields():
    # u = x + y with exact Dirichlet values: the ghost values extend u (and u**2) exactly, so
    # laplace(u) = 0 and laplace(u**2) = 4 in every cell, although v has Neumann conditions
    boundary = {
        "u": {side: {"type": "dirichlet", "value": "x + y"} for side in SIDES},
        "v": {side: {"type": "neumann", "value": 0.0} for side in SIDES},
    }
    equations = {"u": "0*u", "v": "laplace(u) + laplace(u**2)"}
    spec = heat_spec("0", boundary, equations=equations, initial={"u": "x + y", "v": "0"})
    problem = load_spec(spec)
    rhs = NumpyRightHandSide(problem, 2)
    state = initial_state(problem, refined_axes(problem.grid, 2))
    rate = rhs(0.0, state)
    np.testing.assert_allclose(rate[1], 4.0, atol=1e-8)
    with pytest.raises(OptionsError, match="backend 'numba'"):
        numba_right_hand_side(problem, 2)


def test_self_convergence_takes_the_worst_field():
    reference = np.ones((2, 2, 3, 3))
    approximation = reference.copy()
    approximation[:, 1] *= 1.01
    assert worst_field_rel_l2(approximation, reference) == pytest.approx(0.01)


# --------------------------------------------------------------------------- errors


def test_nan_raises_a_divergence_error():
    # u' = sqrt(u) - 2 from u = 1 reaches u = 0 at t = 4 ln 2 - 2 = 0.77, then sqrt(u < 0) = NaN
    spec = heat_spec(1.0, "periodic", equations={"u": "sqrt(u) - 2"}, grid={"nx": 8, "ny": 8}, time={"t_end": 1.0, "dt": 0.1})
    with pytest.raises(DivergenceError, match="reference"):  # a row of `compare` that fails, not the end of it
        solve_reference(load_spec(spec), refinement=1)


@pytest.mark.parametrize("options", [{"refinement": 0}, {"tolerance": -1.0}, {"time_limit": 0.0}, {"backend": "cuda"}])
def test_invalid_options(options):
    problem = load_spec(heat_spec("0", "periodic"))
    with pytest.raises(OptionsError):
        solve_reference(problem, **options)


# --------------------------------------------------------------------------- slow


@pytest.mark.slow
def test_numpy_right_hand_side_equals_pypde_compiled_pde():
    """The numpy backend reproduces py-pde's numba ``PDE`` to round-off (compiles: ~1 min)."""
    boundary = {
        "u": {
            "left": {"type": "dirichlet", "value": "sin(y)*exp(-t)"},
            "right": {"type": "robin", "a": 1.0, "b": 0.5, "value": "c*y + t"},
            "bottom": {"type": "neumann", "value": "x*t"},
            "top": {"type": "robin", "a": 2.0, "b": 0.0, "value": 1.5},
        }
    }
    spec = heat_spec(
        "cos(x)*exp(y)",
        boundary,
        parameters={"k": 0.1, "c": 0.3},
        domain={"x": [0.0, 2.0], "y": [-1.0, 1.0]},
        grid={"nx": 16, "ny": 12},
        equations={"u": "k*laplace(u) + c*d_dx(u)*x - u**2 + 0.1*d2_dy2(u) + sin(t)*y"},
    )
    problem = load_spec(spec)
    state = initial_state(problem, refined_axes(problem.grid, 3))
    expected = numba_right_hand_side(problem, 3)(0.37, state)
    np.testing.assert_allclose(NumpyRightHandSide(problem, 3)(0.37, state), expected, rtol=1e-12, atol=1e-10)


@pytest.mark.slow
def test_numba_backend_solves_the_heat_equation():
    problem = load_spec(heat_spec("sin(2*pi*x)*cos(2*pi*y)", "periodic", grid={"nx": 16, "ny": 16}))
    ds = solve_reference(problem, refinement=1, backend="numba")
    rate = 8 * math.pi**2 * K
    exact = exact_frames(problem, lambda x, y, t: math.exp(-rate * t) * np.sin(2 * np.pi * x) * np.cos(2 * np.pi * y))
    assert np.linalg.norm(ds["u"].values - exact) / np.linalg.norm(exact) < 1e-3
    assert ds.attrs["jit_seconds"] > 0


def test_pypde_on_the_spec_grid_is_one_level_without_an_estimate():
    """``pypde_solution``: py-pde on the spec's own spacing (the baseline beside other
    solvers on that grid), second order: twice finer is about four times closer to the
    exact solution; a time limit ends it with a TimeLimitError."""
    from phycrnet.errors import TimeLimitError
    from phycrnet.reference.solver import pypde_solution

    errors = []
    for n in (16, 32):
        problem = load_spec(heat_spec("sin(2*pi*x)*sin(2*pi*y)", "periodic", grid={"nx": n, "ny": n}, time={"t_end": 0.2, "dt": 0.05}))
        ds = pypde_solution(problem)
        assert ds.attrs["solver"] == "py-pde" and ds.attrs["refinement"] == 1 and "estimated_error" not in ds.attrs
        x, y, t = problem.grid.x.points, problem.grid.y.points, problem.times
        exact = np.exp(-8 * np.pi**2 * K * t)[:, None, None] * np.sin(2 * np.pi * x)[None, None, :] * np.sin(2 * np.pi * y)[None, :, None]
        errors.append(np.linalg.norm(ds["u"].values - exact) / np.linalg.norm(exact))
    assert 3.0 < errors[0] / errors[1] < 5.0
    with pytest.raises(TimeLimitError, match="py-pde did not finish within 1e-09 s"):
        pypde_solution(problem, time_limit=1e-9)
