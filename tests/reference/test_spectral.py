"""Tests of phycrnet.reference.spectral: the pseudo-spectral reference for periodic problems."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from phycrnet.analysis.metrics import rel_l2
from phycrnet.errors import OptionsError, PhycrnetError
from phycrnet.io.solution import read_solution
from phycrnet.reference import solve_reference, solve_spectral_reference
from phycrnet.reference.spectral import SOLVER_NAME
from phycrnet.spec.problem import load_spec

#: The py-pde reference of allen_cahn_periodic written by the benchmarks (estimated error ~6e-7).
PYPDE_ALLEN_CAHN = Path(__file__).resolve().parents[2] / "benchmarks" / ".cache" / "allen_cahn_periodic_ref.nc"


def periodic_spec(equations: dict[str, str], initial: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A periodic spec on [0,1]^2, 32x32 points, t in [0, 0.5] every 0.05."""
    spec = {
        "name": "periodic",
        "parameters": {"k": 0.02, "nu": 0.01},
        "domain": {"x": [0.0, 1.0], "y": [0.0, 1.0]},
        "grid": {"nx": 32, "ny": 32},
        "time": {"t_end": 0.5, "dt": 0.05},
        "equations": equations,
        "initial": initial,
        "boundary": "periodic",
    }
    spec.update(changes)
    return spec


def burgers_spec(**changes: Any) -> dict[str, Any]:
    equations = {
        "u": "-u*d_dx(u) - v*d_dy(u) + nu*laplace(u)",
        "v": "-u*d_dx(v) - v*d_dy(v) + nu*laplace(v)",
    }
    initial = {"u": "0.5*(sin(4*pi*x) + sin(4*pi*y))", "v": "0.5*(cos(4*pi*x) + cos(4*pi*y))"}
    return periodic_spec(equations, initial, **changes)


def exact_frames(problem, solution) -> np.ndarray:
    """``solution(x, y, t)`` on the spec grid at every frame, shape ``(T, ny, nx)``."""
    x, y = problem.grid.mesh()
    return np.stack([np.broadcast_to(solution(x, y, t), x.shape) for t in problem.times])


# --------------------------------------------------------------------------- exact solutions


@pytest.mark.parametrize(
    ("equation", "rate"),
    [("k*laplace(u)", 8 * math.pi**2), ("k*d2_dx2(u) + 3*k*d2_dy2(u)", 16 * math.pi**2)],
)
def test_periodic_heat_is_exact(equation, rate):
    problem = load_spec(periodic_spec({"u": equation}, {"u": "sin(2*pi*x)*sin(2*pi*y)"}))
    ds = solve_spectral_reference(problem)
    k = problem.parameter_values()["k"]
    exact = exact_frames(problem, lambda x, y, t: math.exp(-rate * k * t) * np.sin(2 * np.pi * x) * np.sin(2 * np.pi * y))
    assert rel_l2(ds["u"].values, exact) < 1e-10
    assert ds.attrs["solver"] == SOLVER_NAME and ds.attrs["refinement"] == 2
    assert ds.attrs["estimated_error"] < 1e-10 and ds.attrs["tolerance_met"] == 1
    assert ds.attrs["periodic_x"] == 1 and ds.attrs["periodic_y"] == 1
    assert ds.attrs["wall_seconds"] > 0 and "Lawson" in ds.attrs["method"]


def test_manufactured_nonlinear_solution_with_time_dependent_source():
    # u = exp(-t) sin(2 pi x) solves u_t = -d_dx(u**2)/2 + nu*laplace(u) + S with this S; the
    # source exercises coordinates, time and an operator applied to an expression
    source = "(4*pi**2*nu - 1)*exp(-t)*sin(2*pi*x) + pi*exp(-2*t)*sin(4*pi*x)"
    spec = periodic_spec({"u": f"-0.5*d_dx(u**2) + nu*laplace(u) + {source}"}, {"u": "sin(2*pi*x)"})
    problem = load_spec(spec)
    ds = solve_spectral_reference(problem, refinement=1)
    exact = exact_frames(problem, lambda x, y, t: math.exp(-t) * np.sin(2 * np.pi * x))
    assert rel_l2(ds["u"].values, exact) < 1e-7
    assert ds.attrs["estimated_error"] < 1e-7


def test_allen_cahn_converges_and_agrees_with_the_pypde_reference():
    problem = load_spec("allen_cahn_periodic")  # eps 0.001, 32x32, dt 0.05, t_end 1
    ds = solve_spectral_reference(problem)
    assert ds.attrs["estimated_error"] < 1e-6
    assert ds.attrs["tolerance_met"] == 1 and ds.attrs["stop_reason"] == "tolerance reached"
    np.testing.assert_array_equal(ds["u"].values[0], problem.initial["u"])
    if not PYPDE_ALLEN_CAHN.exists():
        pytest.skip(f"no cached py-pde reference at {PYPDE_ALLEN_CAHN}")
    pypde = read_solution(PYPDE_ALLEN_CAHN)
    np.testing.assert_allclose(pypde["t"].values, ds["t"].values)
    assert rel_l2(ds["u"].values, pypde["u"].values) < 1e-5


def test_burgers_estimate_falls_with_refinement_and_measures_the_level_difference():
    problem = load_spec(burgers_spec(time={"t_end": 0.3, "dt": 0.05}))
    coarse = solve_spectral_reference(problem, refinement=1)  # levels 1 and 2
    fine = solve_spectral_reference(problem, refinement=2)  # levels 2 and 4
    assert coarse.attrs["refinements"] == "[1, 2]" and fine.attrs["refinements"] == "[2, 4]"
    assert fine.attrs["estimated_error"] < 0.1 * coarse.attrs["estimated_error"]
    assert coarse.attrs["estimated_error"] < 1e-2
    # the estimate is the mean over fields of ||u_2 - u_4|| / ||u_4||
    differences = [rel_l2(coarse[f].values, fine[f].values) for f in ("u", "v")]
    assert fine.attrs["estimated_error"] == pytest.approx(np.mean(differences), rel=1e-6)
    assert fine.attrs["self_convergence"] == pytest.approx(max(differences), rel=1e-6)


# --------------------------------------------------------------------------- solve_reference


def test_solve_reference_dispatches_by_method():
    problem = load_spec(burgers_spec(time={"t_end": 0.1, "dt": 0.05}))
    spectral = solve_reference(problem, method="spectral", refinement=1)
    automatic = solve_reference(problem, method="auto", refinement=1)
    assert spectral.attrs["solver"] == automatic.attrs["solver"] == SOLVER_NAME
    np.testing.assert_array_equal(spectral["u"].values, automatic["u"].values)
    assert solve_reference(problem, refinement=1, richardson=False).attrs["solver"] == "py-pde reference"


def test_auto_uses_pypde_for_bounded_problems():
    boundary = {"u": {side: {"type": "dirichlet", "value": 0.0} for side in ("left", "right", "bottom", "top")}}
    spec = periodic_spec({"u": "k*laplace(u)"}, {"u": "sin(pi*x)*sin(pi*y)"}, boundary=boundary)
    spec.update(grid={"nx": 8, "ny": 8}, time={"t_end": 0.1, "dt": 0.05})
    ds = solve_reference(load_spec(spec), method="auto", refinement=1, richardson=False)
    assert ds.attrs["solver"] == "py-pde reference"


# --------------------------------------------------------------------------- errors


def test_non_periodic_problems_are_refused():
    boundary = {
        "u": {
            "left": {"type": "periodic"},
            "right": {"type": "periodic"},
            "bottom": {"type": "dirichlet", "value": 0.0},
            "top": {"type": "neumann", "value": 0.0},
        }
    }
    problem = load_spec(periodic_spec({"u": "k*laplace(u)"}, {"u": "0"}, boundary=boundary))
    with pytest.raises(OptionsError, match="not periodic in y") as error:
        solve_spectral_reference(problem)
    assert "\n" not in str(error.value)
    with pytest.raises(OptionsError, match="periodic"):
        solve_reference(problem, method="spectral")


@pytest.mark.parametrize(
    "options", [{"refinement": 0}, {"refinement": 1.5}, {"tolerance": 0.0}, {"time_limit": -1.0}]
)
def test_invalid_options(options):
    problem = load_spec(periodic_spec({"u": "k*laplace(u)"}, {"u": "0"}))
    with pytest.raises(OptionsError):
        solve_spectral_reference(problem, **options)


def test_unknown_method_is_refused():
    problem = load_spec(periodic_spec({"u": "k*laplace(u)"}, {"u": "0"}))
    with pytest.raises(OptionsError, match="method"):
        solve_reference(problem, method="fem")


def test_time_limit_is_respected():
    problem = load_spec(burgers_spec())
    with pytest.raises(PhycrnetError, match=r"time limit of 0\.001 s exceeded"):
        solve_spectral_reference(problem, time_limit=0.001)
