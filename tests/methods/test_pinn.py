"""Tests of the PINN baseline (phycrnet.methods.pinn; the network: tests/models/test_pinn_network.py):
residuals, boundary residuals, the built-in initial value, training, output and CLI.
Small networks and few points keep them fast (tiny specs from conftest.py)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
import yaml
from helpers import random_points

from phycrnet.errors import DivergenceError, OptionsError
from phycrnet.io.solution import read_solution
from phycrnet.methods.pinn import Collocation, PinnTask, boundary_residual, causal_mean, loss_terms, pde_residuals, pinn_solve
from phycrnet.models.pinn import InitialValues, autograd_jet
from phycrnet.options import pinn_options
from phycrnet.spec.problem import load_spec

pytestmark = pytest.mark.usefixtures("single_thread")

SMALL = {"hidden": (16, 16), "n_interior": 256, "n_boundary": 32, "n_initial": 64, "threads": 1}


class Analytic:
    """A stand-in for :class:`FieldModel` built from a formula ``f(x, y, t) -> (N, C)``."""

    def __init__(self, function, problem):
        self.function = function
        self.initial = InitialValues(problem)

    def __call__(self, x, y, t):
        return self.function(x, y, t)

    def jet(self, pts, first=(), second=()):
        return autograd_jet(self.function, pts.x, pts.y, pts.t, first, second, create_graph=True)


def mixed_solution(offset: float = 0.0, k: float = 0.05):
    return lambda x, y, t: (x**2 + y**2 + 4 * k * t + offset).unsqueeze(-1)


# --------------------------------------------------------------------------- network





# --------------------------------------------------------------------------- residuals


def test_boundary_and_pde_residuals_vanish_for_the_exact_solution(mixed_bc_spec):
    problem = load_spec(mixed_bc_spec)
    exact = Analytic(mixed_solution(), problem)
    sides = {side: random_points(30, seed=i) for i, side in enumerate(("left", "right", "bottom", "top"))}
    sides["left"].x.zero_(), sides["right"].x.fill_(1.0), sides["bottom"].y.zero_(), sides["top"].y.fill_(1.0)
    initial = random_points(30, seed=9)
    initial.t.zero_()
    batch = Collocation(random_points(100, seed=7), sides, initial)
    terms = loss_terms(exact, problem, batch, problem.parameter_values())
    assert set(terms) == {"pde_u", "bc_u_left", "bc_u_right", "bc_u_bottom", "bc_u_top", "ic_u"}
    for name, value in terms.items():
        assert float(value.detach()) < 1e-24, (name, float(value.detach()))


def test_boundary_residual_measures_the_violation(mixed_bc_spec):
    problem = load_spec(mixed_bc_spec)
    # u + 1 breaks the Dirichlet side by 1 and the Robin side by a * 1 = 1; Neumann sides still hold.
    shifted = mixed_solution(offset=1.0)
    expected = {"left": 1.0, "right": 0.0, "bottom": 1.0, "top": 0.0}
    for side, value in expected.items():
        pts = random_points(20, seed=3)
        if side in ("left", "right"):
            pts.x.fill_(0.0 if side == "left" else 1.0)
        else:
            pts.y.fill_(0.0 if side == "bottom" else 1.0)
        jet = autograd_jet(shifted, pts.x, pts.y, pts.t, ("x", "y"))
        residual = boundary_residual(jet, 0, problem.boundary["u"][side], side, pts, problem.parameter_values())
        np.testing.assert_allclose(residual.numpy(), value, atol=1e-12)


def test_outward_normal_sign_on_neumann_sides(mixed_bc_spec):
    """On the left side du/dn = -du/dx: u = x^2 has du/dn = 0 at x = 0, u = -x has du/dn = 1."""
    mixed_bc_spec["boundary"]["u"]["left"] = {"type": "neumann", "value": 1.0}
    problem = load_spec(mixed_bc_spec)
    pts = random_points(10)
    pts.x.zero_()
    jet = autograd_jet(lambda x, y, t: (-x).unsqueeze(-1), pts.x, pts.y, pts.t, ("x",))
    residual = boundary_residual(jet, 0, problem.boundary["u"]["left"], "left", pts, {})
    np.testing.assert_allclose(residual.numpy(), 0.0, atol=1e-14)


def test_operators_on_expressions_use_automatic_differentiation(periodic_heat_spec):
    periodic_heat_spec["equations"] = {"u": "d_dx(u*u) + k*laplace(u**3)"}
    problem = load_spec(periodic_heat_spec)
    model = Analytic(lambda x, y, t: (x + t).unsqueeze(-1), problem)
    pts = random_points(40)
    residual = pde_residuals(model, problem, pts, problem.parameter_values())
    u = pts.x + pts.t
    # u_t = 1, d_dx(u^2) = 2u, laplace(u^3) = 6u.
    expected = 1.0 - 2 * u - 0.05 * 6 * u
    torch.testing.assert_close(residual[:, 0], expected, rtol=0, atol=1e-12)


def test_training_with_operators_of_expressions_runs_through_lbfgs(periodic_heat_spec):
    periodic_heat_spec["equations"] = {"u": "k*laplace(u**3) - d_dx(u*u)"}
    ds = pinn_solve(periodic_heat_spec, iterations=6, lbfgs_fraction=0.5, lbfgs_max_iter=2, **SMALL)
    assert int(ds.attrs["iterations"]) == 6
    assert np.isfinite(json.loads(ds.attrs["loss_terms"])["pde_u"])


def test_causal_mean_weights_later_bins_less():
    t = torch.tensor([0.05, 0.15, 0.25, 0.35])
    squares = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert float(causal_mean(squares, t, 0.4, 4, 0.0)) == pytest.approx(2.5)
    weighted = float(causal_mean(squares, t, 0.4, 4, 1.0))
    expected = np.mean([1.0, 2.0 * np.exp(-1.0), 3.0 * np.exp(-3.0), 4.0 * np.exp(-6.0)])
    assert weighted == pytest.approx(expected)


# --------------------------------------------------------------------------- initial values


def test_hard_initial_value_holds_exactly_at_t0(periodic_heat_spec, tmp_path):
    ds = pinn_solve(periodic_heat_spec, iterations=3, **SMALL)
    problem = load_spec(periodic_heat_spec)
    np.testing.assert_allclose(ds["u"].values[0], problem.initial_values()[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", ["periodic_heat", "mixed_bc"])
def test_grid_initial_values_are_interpolated_through_the_nodes(tiny_cases, case):
    spec = tiny_cases(case)
    spec["initial"] = {"u": {"random": {"seed": 3, "scale": 0.5, "length": 0.3}}}
    problem = load_spec(spec)
    X, Y = problem.grid.mesh()
    values = InitialValues(problem)(torch.as_tensor(X.ravel()), torch.as_tensor(Y.ravel()))
    np.testing.assert_allclose(values[:, 0].numpy().reshape(X.shape), problem.initial_values()[0], atol=1e-12)
    task = PinnTask(problem, pinn_options(overrides={**SMALL, "iterations": 0}), device=torch.device("cpu"), dtype=torch.float32)
    frames = task.predict(problem.times[:1])
    np.testing.assert_allclose(frames[0, 0], problem.initial_values()[0], atol=1e-5)


# --------------------------------------------------------------------------- training and output


def test_training_reduces_the_loss_on_a_tiny_case(periodic_heat_spec, tmp_path, exact_solutions):
    log = tmp_path / "pinn.log.csv"
    ds = pinn_solve(periodic_heat_spec, iterations=200, lr=1e-2, log=log, log_every=10, lbfgs_fraction=0.0, **SMALL)
    with open(log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {"iteration", "seconds", "lr", "loss", "pde_u", "w_pde_u"} <= set(rows[0])
    assert int(rows[0]["iteration"]) == 1 and int(rows[-1]["iteration"]) == 200
    first, last = float(rows[0]["pde_u"]), float(rows[-1]["pde_u"])
    assert last < first / 10, (first, last)
    exact = exact_solutions[0](ds.x.values, ds.y.values, ds.t.values)
    initial_only = np.broadcast_to(exact[0], exact.shape)
    error = np.linalg.norm(ds["u"].values - exact) / np.linalg.norm(exact)
    assert error < 0.5 * np.linalg.norm(initial_only - exact) / np.linalg.norm(exact)


def test_mixed_boundaries_soft_initial_and_lbfgs_run(mixed_bc_spec, tmp_path):
    out = tmp_path / "mixed.nc"
    ds = pinn_solve(mixed_bc_spec, out=out, iterations=30, hard_initial=False, lbfgs_fraction=0.3, lbfgs_max_iter=5, causal=1.0, weighting="relobralo", **SMALL)
    terms = json.loads(ds.attrs["loss_terms"])
    assert set(terms) == {"pde_u", "bc_u_left", "bc_u_right", "bc_u_bottom", "bc_u_top", "ic_u"}
    assert int(ds.attrs["iterations"]) == 30 and int(ds.attrs["adam_iterations"]) == 21
    written = read_solution(out)
    assert written.attrs["solver"] == "pinn"
    assert written["u"].dims == ("t", "y", "x") and written["u"].shape == (5, 12, 16)
    np.testing.assert_allclose(written.x.values, np.linspace(0, 1, 16))
    assert float(written.attrs["wall_seconds"]) > 0
    assert json.loads(written.attrs["options"])["pinn"]["hard_initial"] is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mixed.ckpt.pt", "mixed.log.csv", "mixed.nc"]


def test_learnable_parameter_is_reported(periodic_heat_spec):
    periodic_heat_spec["parameters"] = {"k": {"init": 0.1, "learn": True}}
    ds = pinn_solve(periodic_heat_spec, iterations=5, **SMALL)
    assert "k" in json.loads(ds.attrs["identified_parameters"])


def test_divergence_raises(periodic_heat_spec):
    periodic_heat_spec["equations"] = {"u": "1e30*u**4"}
    with pytest.raises(DivergenceError, match="diverged"):
        pinn_solve(periodic_heat_spec, iterations=5, **SMALL)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"bogus": 1}, "bogus: unknown option"),
        ({"hidden": ()}, "hidden"),
        ({"lr": -1.0}, "lr"),
        ({"activation": "relu"}, "activation"),
        ({"harmonics": [0]}, "harmonics"),
        ({"lbfgs_fraction": 1.0}, "lbfgs_fraction"),
        ({"weighting": "nope"}, "weighting"),
        ({"time_budget": -5.0}, "time_budget"),
    ],
)
def test_bad_options_give_one_line_errors(periodic_heat_spec, options, match):
    with pytest.raises(OptionsError, match=match) as info:
        pinn_solve(periodic_heat_spec, iterations=1, **options)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- command line


def test_cli_pinn_writes_a_file_that_evaluate_accepts(tmp_path, capsys, periodic_heat_spec):
    from phycrnet.cli import main

    spec = tmp_path / "heat.yaml"
    spec.write_text(yaml.safe_dump(periodic_heat_spec))
    out = tmp_path / "pinn.nc"
    log = tmp_path / "pinn.csv"
    code = main(["pinn", str(spec), "--out", str(out), "--iterations", "5", "--seed", "1", "--device", "cpu", "--quiet", "--log", str(log), "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "wrote" in captured.out and log.exists()
    assert read_solution(out).attrs["solver"] == "pinn"
    assert main(["evaluate", str(out), str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["fields"]["u"]["rel_l2"] == 0.0


def test_cli_pinn_bad_option_is_one_line(tmp_path, capsys):
    from phycrnet.cli import main

    code = main(["pinn", "allen_cahn_periodic", "--out", str(tmp_path / "x.nc"), "--time-budget", "-1"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
