"""Tests of phycrnet.methods.solve: training to a solution, resume, divergence, options,
extrapolation, learnable coefficients and the written file (tiny problems, conftest.py)."""

from __future__ import annotations

import csv
import importlib
import json
import math
import shutil

import numpy as np
import pytest
import torch

import phycrnet
from phycrnet.analysis.metrics import rel_l2
from phycrnet.errors import DataError, DivergenceError, OptionsError
from phycrnet.io.solution import read_solution
from phycrnet.methods.solve import solve
from phycrnet.spec.problem import load_spec


def read_log(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def no_temporaries(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp") or p.name.startswith("."))


# --------------------------------------------------------------------------- it learns


def test_tiny_heat_problem_trains_towards_the_exact_solution(tmp_path, periodic_heat_spec, tiny_model, exact_solutions):
    out = tmp_path / "heat.nc"
    # lr 1e-2 with a cosine decay: over seeds 0-2 the residual falls 15-19x and the error to
    # 13-15 % of the untrained one, well inside the bounds below.
    ds = solve(periodic_heat_spec, out=out, iterations=150, lr=1e-2, schedule="cosine", model=tiny_model, threads=1, seed=0)
    rows = read_log(tmp_path / "heat.log.csv")
    first = float(rows[0]["pde_u"])
    assert int(rows[0]["iteration"]) == 1
    final = json.loads(ds.attrs["loss_terms"])["pde_u"]
    assert final < first / 5, (first, final)

    exact = exact_solutions[0](ds.x.values, ds.y.values, ds.t.values)
    untrained = np.broadcast_to(exact[0], exact.shape)  # u(t) = u0, what the network starts from
    error = rel_l2(ds["u"].values, exact)
    baseline = rel_l2(untrained, exact)
    assert error < 0.35 * baseline, (error, baseline)
    assert rel_l2(ds["u"].values[-1], exact[-1]) < 0.5 * rel_l2(untrained[-1], exact[-1])


# --------------------------------------------------------------------------- the output file


def test_written_file_has_the_documented_attributes(tmp_path, periodic_heat_spec, tiny_model):
    out = tmp_path / "sol.nc"
    returned = solve(periodic_heat_spec, out=out, iterations=3, model=tiny_model, threads=1)
    ds = read_solution(out)
    assert ds["u"].dims == ("t", "y", "x")
    assert ds["u"].shape == (5, 16, 16)
    np.testing.assert_allclose(ds.t.values, [0.0, 0.05, 0.1, 0.15, 0.2])
    np.testing.assert_allclose(ds.x.values, np.arange(16) / 16)
    assert ds.attrs["solver"] == "phycrnet"
    assert ds.attrs["phycrnet_version"] == phycrnet.__version__
    assert float(ds.attrs["wall_seconds"]) >= 0
    assert int(ds.attrs["iterations"]) == 3
    assert int(ds.attrs["recoveries"]) == 0 and int(ds.attrs["lbfgs_stalls"]) >= 0
    assert set(json.loads(ds.attrs["loss_terms"])) == {"pde_u"}
    assert load_spec(ds.attrs["spec"]).to_yaml() == load_spec(periodic_heat_spec).to_yaml()
    np.testing.assert_allclose(ds["u"].values, returned["u"].values)
    np.testing.assert_allclose(ds["u"].values[0], np.sin(2 * np.pi * ds.x.values)[None, :] * np.sin(2 * np.pi * ds.y.values)[:, None], atol=1e-6)
    assert (tmp_path / "sol.log.csv").exists()
    assert (tmp_path / "sol.ckpt.pt").exists()
    assert no_temporaries(tmp_path) == []


def test_spec_training_section_is_used_and_overridden(periodic_heat_spec, tiny_model):
    spec = dict(periodic_heat_spec, training={"iterations": 2, "threads": 1}, model=tiny_model)
    assert int(solve(spec).attrs["iterations"]) == 2
    assert int(solve(spec, iterations=3).attrs["iterations"]) == 3


def test_unknown_training_option_is_an_options_error(periodic_heat_spec, tiny_model):
    with pytest.raises(OptionsError, match="bogus"):
        solve(periodic_heat_spec, iterations=1, model=tiny_model, bogus=1)
    with pytest.raises(OptionsError, match="lr"):
        solve(periodic_heat_spec, iterations=1, model=tiny_model, lr=-1.0)


# --------------------------------------------------------------------------- options


OPTIONS = [
    {"time_scheme": "crank_nicolson"},
    {"time_scheme": "central"},
    {"time_scheme": "backward_euler"},
    {"derivatives": "fd2"},
    {"derivatives": "fd4"},
    {"derivatives": "spectral"},
    {"derivatives": "auto"},
    {"substeps": 2},
    {"curriculum": [2]},
    {"memory_budget_gb": 1e-7},
    {"lbfgs_fraction": 0.3},
    {"causal": 1.0},
    {"schedule": "step"},
    {"schedule": "cosine"},
    {"schedule": "exponential"},
    {"schedule": "constant"},
    {"schedule": "steplr"},
    {"boundary": "hard"},
    {"grad_clip": 1.0},
    {"dtype": "float64"},
]


@pytest.mark.parametrize("which", ["periodic", "mixed"])
@pytest.mark.parametrize("option", OPTIONS, ids=[f"{k}={v}" for o in OPTIONS for k, v in o.items()])
def test_training_option_runs(periodic_heat_spec, mixed_bc_spec, tiny_model, option, which):
    spec = periodic_heat_spec if which == "periodic" else mixed_bc_spec
    ds = solve(spec, iterations=4, model=tiny_model, threads=1, **option)
    ny, nx = (16, 16) if which == "periodic" else (12, 16)
    assert ds["u"].shape == (5, ny, nx)
    assert np.isfinite(ds["u"].values).all()
    assert int(ds.attrs["iterations"]) == 4
    losses = json.loads(ds.attrs["loss_terms"])
    assert losses and all(math.isfinite(v) for v in losses.values())
    options = json.loads(ds.attrs["options"])
    recorded = {**options["physics"], **options["training"]}
    for key, value in option.items():
        assert recorded[key] == value
    if option.get("derivatives") == "auto":
        assert ds.attrs["derivatives"] == ("spectral" if which == "periodic" else "fd4")
    elif "derivatives" in option:
        assert ds.attrs["derivatives"] == option["derivatives"]


@pytest.mark.parametrize(
    "option",
    [{"time_scheme": "leapfrog"}, {"derivatives": "fd6"}, {"boundary": "sticky"}, {"schedule": "linear"}, {"substeps": -1}, {"lbfgs_fraction": 1.0}],
)
def test_bad_option_values_are_options_errors(periodic_heat_spec, tiny_model, option):
    with pytest.raises(OptionsError) as info:
        solve(periodic_heat_spec, iterations=1, model=tiny_model, **option)
    assert next(iter(option)) in str(info.value)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- extrapolation


def test_extrapolate_marks_exactly_the_frames_past_t_end(tmp_path, periodic_heat_spec, tiny_model):
    out = tmp_path / "ext.nc"
    ds = solve(periodic_heat_spec, out=out, iterations=2, extrapolate=0.3, model=tiny_model, threads=1)
    np.testing.assert_allclose(ds.t.values, [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3], atol=1e-12)
    np.testing.assert_array_equal(ds["extrapolated"].values, [0, 0, 0, 0, 0, 1, 1])
    assert ds["extrapolated"].dims == ("t",)
    assert np.isfinite(ds["u"].values).all()
    plain = solve(periodic_heat_spec, iterations=2, model=tiny_model, threads=1)
    np.testing.assert_allclose(ds["u"].values[:5], plain["u"].values, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(plain["extrapolated"].values, [0, 0, 0, 0, 0])
    written = read_solution(out)
    np.testing.assert_array_equal(written["extrapolated"].values, [0, 0, 0, 0, 0, 1, 1])


@pytest.mark.parametrize("substeps", [1, 2])
def test_extrapolate_in_hard_mode_keeps_imposing_dirichlet_values(mixed_bc_spec, tiny_model, exact_solutions, substeps):
    ds = solve(mixed_bc_spec, iterations=2, extrapolate=0.3, boundary="hard", substeps=substeps, dtype="float64", model=tiny_model, threads=1)
    np.testing.assert_array_equal(ds["extrapolated"].values, [0, 0, 0, 0, 0, 1, 1])
    u = ds["u"].values
    assert np.isfinite(u).all()
    exact = exact_solutions[1](ds.x.values, ds.y.values, ds.t.values)
    np.testing.assert_allclose(u[:, :, 0], exact[:, :, 0], rtol=0, atol=1e-12)


def test_extrapolate_must_go_past_t_end(periodic_heat_spec, tiny_model):
    with pytest.raises(OptionsError, match="extrapolate"):
        solve(periodic_heat_spec, iterations=1, extrapolate=0.2, model=tiny_model)


# --------------------------------------------------------------------------- learnable coefficients


def test_learnable_parameter_is_reported_in_attrs_and_log(tmp_path, periodic_heat_spec, tiny_model):
    spec = dict(periodic_heat_spec, parameters={"k": {"init": 0.05, "learn": True}})
    out = tmp_path / "inverse.nc"
    # Two Adam iterations, then one L-BFGS evaluation: a log row for each.
    ds = solve(spec, out=out, iterations=3, lbfgs_fraction=0.5, log_every=1, model=tiny_model, threads=1)
    identified = json.loads(ds.attrs["identified_parameters"])
    assert set(identified) == {"k"}
    assert math.isfinite(identified["k"])
    assert json.loads(read_solution(out).attrs["identified_parameters"]) == identified
    rows = read_log(tmp_path / "inverse.log.csv")
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3]
    values = [float(r["param_k"]) for r in rows]
    assert values[0] == pytest.approx(0.05, rel=1e-5)
    assert all(math.isfinite(v) for v in values)


def test_fixed_parameters_are_not_reported(periodic_heat_spec, tiny_model):
    ds = solve(periodic_heat_spec, iterations=1, model=tiny_model, threads=1)
    assert "identified_parameters" not in ds.attrs


# --------------------------------------------------------------------------- resume

RESUME_OPTIONS = {"lr": 5e-3, "schedule": "constant", "log_every": 2, "weighting": "relobralo", "threads": 1, "lbfgs_fraction": 0.0}


def loss_columns(rows):
    return [{k: float(v) for k, v in row.items() if k not in ("seconds",) and v != ""} for row in rows]


def test_resumed_solve_matches_the_uninterrupted_run(tmp_path, mixed_bc_spec, tiny_model):
    full = solve(mixed_bc_spec, out=tmp_path / "full.nc", iterations=12, model=tiny_model, **RESUME_OPTIONS)
    solve(mixed_bc_spec, out=tmp_path / "part.nc", iterations=6, model=tiny_model, **RESUME_OPTIONS)
    resumed = solve(mixed_bc_spec, out=tmp_path / "part.nc", iterations=12, resume=True, model=tiny_model, **RESUME_OPTIONS)

    expected = read_log(tmp_path / "full.log.csv")
    got = read_log(tmp_path / "part.log.csv")
    iterations = [int(r["iteration"]) for r in got]
    assert iterations == [1, 2, 4, 6, 8, 10, 12]
    assert iterations == [int(r["iteration"]) for r in expected]
    for row_a, row_b in zip(loss_columns(expected), loss_columns(got)):
        assert set(row_a) == set(row_b)
        for key in row_a:
            assert row_b[key] == pytest.approx(row_a[key], rel=1e-6), (row_a["iteration"], key)

    assert int(resumed.attrs["iterations"]) == 12
    np.testing.assert_allclose(resumed["u"].values, full["u"].values, rtol=1e-5, atol=1e-6)
    assert json.loads(resumed.attrs["loss_terms"]) == pytest.approx(json.loads(full.attrs["loss_terms"]), rel=1e-5)
    assert no_temporaries(tmp_path) == []


def test_resume_from_an_older_checkpoint_leaves_no_duplicate_log_rows(tmp_path, periodic_heat_spec, tiny_model):
    out = tmp_path / "run.nc"
    checkpoint, log = tmp_path / "run.ckpt.pt", tmp_path / "run.log.csv"
    solve(periodic_heat_spec, out=out, iterations=4, model=tiny_model, **RESUME_OPTIONS)
    shutil.copy(checkpoint, tmp_path / "saved.pt")
    solve(periodic_heat_spec, out=out, iterations=8, resume=True, model=tiny_model, **RESUME_OPTIONS)
    first = read_log(log)
    # Go back to the checkpoint at iteration 4 (as after a crash) with rows up to 8 logged.
    shutil.copy(tmp_path / "saved.pt", checkpoint)
    solve(periodic_heat_spec, out=out, iterations=8, resume=True, model=tiny_model, **RESUME_OPTIONS)
    second = read_log(log)
    iterations = [int(r["iteration"]) for r in second]
    assert iterations == [1, 2, 4, 6, 8]
    assert len(set(iterations)) == len(iterations)
    for row_a, row_b in zip(loss_columns(first), loss_columns(second)):
        assert row_b == pytest.approx(row_a, rel=1e-6)


def test_resume_with_the_checkpoint_of_another_spec_is_a_data_error(tmp_path, mixed_bc_spec, tiny_model):
    out = tmp_path / "run.nc"
    solve(mixed_bc_spec, out=out, iterations=2, model=tiny_model, threads=1)
    before = out.read_bytes()
    other = dict(mixed_bc_spec, parameters={"k": 0.06})
    with pytest.raises(DataError, match="different spec") as info:
        solve(other, out=out, iterations=4, resume=True, model=tiny_model, threads=1)
    assert "\n" not in str(info.value)
    assert out.read_bytes() == before


@pytest.mark.parametrize(
    "change",
    [{"model": {"encoder_channels": [4, 8, 8], "lstm_channels": 64}}, {"weighting": "uncertainty"}],
    ids=["other-network", "other-weighting"],
)
def test_resume_with_an_incompatible_run_configuration_is_a_data_error(tmp_path, periodic_heat_spec, tiny_model, change):
    """A checkpoint that cannot be loaded into this run ends in a one-line DataError, not a
    raw RuntimeError from load_state_dict (which the CLI would show as a traceback)."""
    out = tmp_path / "run.nc"
    solve(periodic_heat_spec, out=out, iterations=2, model=tiny_model, threads=1)
    options = {"model": tiny_model, **change}
    with pytest.raises(DataError) as info:
        solve(periodic_heat_spec, out=out, iterations=4, resume=True, threads=1, **options)
    assert "\n" not in str(info.value)


def test_resume_needs_a_checkpoint(tmp_path, periodic_heat_spec, tiny_model):
    with pytest.raises(OptionsError, match="resume"):
        solve(periodic_heat_spec, iterations=2, resume=True, model=tiny_model)
    with pytest.raises(DataError, match="no checkpoint"):
        solve(periodic_heat_spec, out=tmp_path / "none.nc", iterations=2, resume=True, model=tiny_model)
    assert not (tmp_path / "none.nc").exists()


# --------------------------------------------------------------------------- divergence


def test_divergence_raises_and_writes_no_output(tmp_path, periodic_heat_spec, tiny_model):
    out = tmp_path / "diverged.nc"
    with pytest.raises(DivergenceError) as info:
        solve(periodic_heat_spec, out=out, iterations=60, lr=1e6, schedule="constant", model=tiny_model, threads=1)
    message = str(info.value)
    assert "\n" not in message
    assert "diverged" in message
    assert not out.exists()
    assert no_temporaries(tmp_path) == []


def test_divergence_does_not_replace_an_existing_output(tmp_path, periodic_heat_spec, tiny_model):
    out = tmp_path / "keep.nc"
    solve(periodic_heat_spec, out=out, iterations=1, model=tiny_model, threads=1)
    before = out.read_bytes()
    with pytest.raises(DivergenceError):
        solve(periodic_heat_spec, out=out, iterations=60, lr=1e6, schedule="constant", model=tiny_model, threads=1)
    assert out.read_bytes() == before


@pytest.mark.parametrize("extra", [{"shuffle_channels": 4}, {"input_skip": False}, {"head_channels": 4}, {"physics_input": False}])
def test_model_options_change_the_network_and_train(periodic_heat_spec, tiny_model, extra):
    """Decoder options build the layers they name and still produce finite frames of the
    grid's shape; a bad value is a one-line error naming the key."""
    from phycrnet.models.crn import PhyCRNet
    from phycrnet.options import ModelOptions

    config = ModelOptions(**{**tiny_model, **extra})
    network = PhyCRNet(1, (16, 16), (True, True), config)
    if extra.get("shuffle_channels"):
        assert network.project is not None and network.project.out_channels == 4 * config.upscale**2
    if extra.get("head_channels"):
        assert network.hidden_head is not None
    dataset = solve(periodic_heat_spec, iterations=3, threads=1, model={**tiny_model, **extra})
    assert np.isfinite(dataset["u"].values).all() and dataset["u"].shape[1:] == (16, 16)




@pytest.mark.parametrize("physics_input", [True, False])
def test_network_sees_the_boundary_data_through_the_physics_input(tiny_model, physics_input):
    """Two problems that differ only in a Neumann flux give the same network different first
    steps once its F channels carry weight: the boundary data reach the network through F
    (hard mode, ghost nodes). Without the physics input they cannot."""
    from phycrnet.methods.solve import prepare

    def first_step(flux: float) -> torch.Tensor:
        spec = {
            "name": "flux", "parameters": {"a": 0.1}, "domain": {"x": [0, 1], "y": [0, 1]},
            "grid": {"nx": 16, "ny": 16}, "time": {"t_end": 0.1, "dt": 0.05},
            "equations": {"u": "a*laplace(u)"}, "initial": {"u": "cos(pi*x)"},
            "boundary": {"u": {s: {"type": "neumann", "value": flux} for s in ("left", "right", "bottom", "top")}},
        }
        section = {**tiny_model, "physics_input": physics_input}
        task = prepare(spec, threads=1, substeps=1, model=section).task
        with torch.no_grad():
            if physics_input:
                task.model.output.conv.weight[:, -1].fill_(0.1)  # as training would
            return task.rollout(1)[1]

    assert torch.allclose(first_step(0.0), first_step(1.0)) != physics_input


def test_negative_shuffle_channels_is_rejected(tiny_model):
    from phycrnet.options import crn_options

    with pytest.raises(OptionsError, match="shuffle_channels"):
        crn_options(model={**tiny_model, "shuffle_channels": -1})


def test_top_level_api_mirrors_the_cli(periodic_heat_spec, tiny_model):
    """The README's ``phycrnet.solve(...)`` works, and evaluate/reference/load_spec sit beside it."""
    problem = phycrnet.load_spec(periodic_heat_spec)
    ds = phycrnet.solve(problem, iterations=2, model=tiny_model, threads=1)
    assert set(problem.fields) <= set(ds.data_vars)
    report = phycrnet.evaluate(ds, ds)
    assert report["rel_l2_mean"] == 0.0
    importlib.import_module("phycrnet.reference")  # a submodule import must not shadow the function

    assert callable(phycrnet.solve_reference)
    assert {"solve", "solve_reference", "evaluate", "load_spec"} <= set(dir(phycrnet))
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        phycrnet.nonexistent  # noqa: B018


def test_output_records_the_physics_input_choices(periodic_heat_spec, tiny_model):
    """The attributes say which physics input the network was fed."""
    from phycrnet.methods.solve import solve

    heun = solve(periodic_heat_spec, iterations=2, threads=1, progress=False, model={**tiny_model, "physics_input": True})
    assert heun.attrs["physics_input"] == 1 and heun.attrs["physics_predictor"] == "heun"
    assert heun.attrs["implicit_diffusion"] == 1  # dt * rho = 12.6 on this periodic grid: stiff
    plain = solve(periodic_heat_spec, iterations=2, threads=1, progress=False, model={**tiny_model, "physics_input": False})
    assert plain.attrs["physics_predictor"] == "none" and plain.attrs["implicit_diffusion"] == 0


# --------------------------------------------------------------------------- refined grid


@pytest.mark.parametrize("factor", [2, 3])
def test_refined_problem_keeps_every_node_of_the_spec(periodic_heat_spec, mixed_bc_spec, factor):
    from phycrnet.methods.resolve import refined

    for spec in (periodic_heat_spec, mixed_bc_spec):
        coarse = load_spec(spec)
        fine = refined(coarse, factor)
        for a, b in ((coarse.grid.x, fine.grid.x), (coarse.grid.y, fine.grid.y)):
            assert b.n == (a.n * factor if a.periodic else (a.n - 1) * factor + 1)
            assert np.allclose(b.points[::factor], a.points, atol=1e-12)
        assert np.allclose(fine.initial_values()[:, ::factor, ::factor], coarse.initial_values(), atol=1e-12)
    assert refined(coarse, 1) is coarse


def test_refine_trains_on_the_finer_grid_and_returns_the_spec_nodes(tmp_path, mixed_bc_spec, tiny_model, exact_solutions):
    obs = tmp_path / "obs.csv"
    obs.write_text("t,x,y,u\n0.1,0.3,0.4,0.45\n0.2,0.7,0.2,0.73\n")
    ds = solve(mixed_bc_spec, out=tmp_path / "r.nc", iterations=3, refine=2, boundary="hard", model=tiny_model, threads=1, data=obs)
    coarse = load_spec(mixed_bc_spec)
    assert ds["u"].shape == (coarse.n_steps + 1, coarse.grid.y.n, coarse.grid.x.n)
    assert np.allclose(ds.x.values, coarse.grid.x.points) and np.allclose(ds.y.values, coarse.grid.y.points)
    assert ds.attrs["refine"] == 2 and json.loads(ds.attrs["options"])["training"]["refine"] == 2
    exact = exact_solutions[1](ds.x.values, ds.y.values, ds.t.values)
    assert np.allclose(ds["u"].values[0], exact[0], atol=1e-6)
    # The Dirichlet side is imposed on the fine grid, so exactly at the spec's nodes too.
    assert np.allclose(ds["u"].values[:, :, 0], exact[:, :, 0], atol=1e-5)
    assert set(json.loads(ds.attrs["data_misfit_rms"])) == {"u"}


def test_refine_needs_expression_initial_values(tmp_path, periodic_heat_spec, tiny_model):
    np.save(tmp_path / "u0.npy", load_spec(periodic_heat_spec).initial_values()[0])
    spec = dict(periodic_heat_spec, initial={"u": {"file": str(tmp_path / "u0.npy")}})
    with pytest.raises(OptionsError, match="refine 2: initial.u"):
        solve(spec, iterations=1, refine=2, model=tiny_model)
    with pytest.raises(OptionsError, match="refine"):
        solve(periodic_heat_spec, iterations=1, refine=0, model=tiny_model)


@pytest.mark.parametrize(
    "nu, refine, advice",
    [(0.01, 1, "refine 3"), (0.01, 2, "refine 3"), (0.004, 1, "refine 7"), (0.01, 3, None), (0.05, 1, None), (0.0, 1, None)],
)
def test_an_unresolved_transport_gets_advice_to_refine(periodic_heat_spec, tiny_model, nu, refine, advice):
    """Cell Peclet number |a| h / D with a = 1, h = 1/16: 6.25 at nu = 0.01 (refine 3 brings
    it to 2.1, below 2.5; refine 2 leaves 3.1), 15.6 at 0.004 (refine 7), 1.25 at 0.05;
    without diffusion no refinement resolves it, so no advice."""
    import warnings

    from phycrnet.errors import PhycrnetWarning

    advected = {**periodic_heat_spec, "equations": {"u": f"{nu}*laplace(u) - d_dx(u**2/2)"}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        solve(advected, iterations=1, refine=refine, model=tiny_model, threads=1)
    advised = [str(w.message) for w in caught if issubclass(w.category, PhycrnetWarning)]
    if advice is None:
        assert advised == []
    else:
        assert len(advised) == 1 and advice in advised[0] and "Peclet" in advised[0]


def advected_spec(periodic_heat_spec: dict, nu: float) -> dict:
    """Burgers-like transport on the 16-point periodic grid: cell Peclet number 1/16/nu."""
    return {**periodic_heat_spec, "equations": {"u": f"{nu}*laplace(u) - d_dx(u**2/2)"}}


@pytest.mark.parametrize(
    "nu, options, factor",
    [
        (0.01, {"time_budget": 5.0}, 3),  # Pe 6.25 -> 2.1
        (0.02, {"time_budget": 5.0}, 2),  # Pe 3.1 -> 1.6
        (0.004, {"time_budget": 5.0}, 4),  # Pe 15.6: capped
        (0.001, {"time_budget": 5.0}, 4),  # Pe 62.5: capped
        (0.05, {"time_budget": 5.0}, 1),  # Pe 1.25: resolved
        (0.0, {"time_budget": 5.0}, 1),  # no diffusion: no grid resolves it
        (0.01, {"iterations": 10}, 1),  # iteration-capped: the cost would multiply
        (0.01, {"iterations": 10, "time_budget": 5.0}, 1),
        (0.01, {}, 1),  # the default iteration count
        (0.01, {"time_budget": 5.0, "refine": 3}, 3),  # a given factor wins
        (0.05, {"time_budget": 5.0, "refine": 2}, 2),
    ],
)
def test_automatic_refinement_follows_the_peclet_number_under_a_time_budget(periodic_heat_spec, nu, options, factor):
    from phycrnet.methods.resolve import training_refinement
    from phycrnet.options import crn_options

    problem = load_spec(advected_spec(periodic_heat_spec, nu))
    assert training_refinement(problem, crn_options(problem.option_sections(), options)) == factor


def test_automatic_refinement_keeps_file_initial_values_on_the_spec_grid(tmp_path, periodic_heat_spec):
    from phycrnet.methods.resolve import training_refinement
    from phycrnet.options import crn_options

    np.save(tmp_path / "u0.npy", load_spec(periodic_heat_spec).initial_values()[0])
    spec = dict(advected_spec(periodic_heat_spec, 0.01), initial={"u": {"file": str(tmp_path / "u0.npy")}})
    problem = load_spec(spec)
    assert training_refinement(problem, crn_options(problem.option_sections(), {"time_budget": 5.0})) == 1


def test_a_time_budgeted_run_refines_an_unresolved_grid_and_returns_the_spec_nodes(periodic_heat_spec, tiny_model):
    """Under a time budget alone, Pe 6.25 trains on 48 points (no advice is left to give);
    the output holds the 16 spec points and records the factor."""
    import warnings

    from phycrnet.errors import PhycrnetWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = solve(advected_spec(periodic_heat_spec, 0.01), time_budget=1.0, model=tiny_model, threads=1)
    assert int(ds.attrs["refine"]) == 3
    assert ds["u"].shape[1:] == (16, 16)
    assert not [w for w in caught if issubclass(w.category, PhycrnetWarning)]
