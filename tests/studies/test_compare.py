"""``phycrnet compare`` on a tiny case: the table, the JSON and the figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phycrnet.cli import main
from phycrnet.errors import OptionsError
from phycrnet.io.solution import read_solution, solution_dataset, write_solution
from phycrnet.spec.problem import load_spec
from phycrnet.studies.compare import METHODS, MethodResult, compare, format_table, time_to_reach


def exact_reference(problem, k=0.05):
    x, y, t = problem.grid.x.points, problem.grid.y.points, problem.times
    u = np.exp(-8 * np.pi**2 * k * t)[:, None, None] * np.sin(2 * np.pi * x)[None, None, :] * np.sin(2 * np.pi * y)[None, :, None]
    return solution_dataset({"u": u}, t, x, y, solver="exact", spec_yaml=problem.to_yaml(), periodic=problem.periodic)


TINY = {"model": {"encoder_channels": [4, 8, 16], "lstm_channels": 64}}
# The classical rows' set-up alone can take a second on a loaded machine: give them room.
ROOM = {"time_limit": 60.0}
OPTIONS = {"paper": TINY, "crn": TINY, "hybrid": TINY, "hybrid_untrained": TINY, "pinn": {"hidden": (16, 16), "n_interior": 256}}
OPTIONS |= {"classical_explicit": ROOM, "classical_implicit": ROOM, "pypde": ROOM}


def test_compare_writes_every_row_beside_the_classical_solvers(tmp_path, periodic_heat_spec, single_thread):
    problem = load_spec(periodic_heat_spec)
    result = compare(problem, time_budget=1.5, out_dir=tmp_path, reference=exact_reference(problem), threads=1, options=OPTIONS)
    assert [r.method for r in result.rows] == list(METHODS)
    rows = {r.method: r for r in result.rows}
    for row in result.rows:
        assert 0 < row.rel_l2 < 10 and row.wall_seconds > 0
    # The classical solvers of the residual's own equations are close to the exact solution.
    assert rows["classical_implicit"].rel_l2 < 3e-3 and rows["classical_explicit"].rel_l2 < 5e-2  # IMEX: first order
    # Trained rows carry their error during training; the others a single point.
    for method in ("paper", "crn", "hybrid", "pinn"):
        assert rows[method].curve and rows[method].iterations > 0
    assert not rows["classical_implicit"].curve and rows["hybrid_untrained"].iterations == 0
    assert result.target == rows["pinn"].rel_l2 and result.target_from == "pinn"
    assert rows["pinn"].time_to_target is not None
    saved = json.loads((tmp_path / "compare_tiny_periodic_heat.json").read_text())
    assert [r["method"] for r in saved["rows"]] == list(METHODS)
    for name in ("compare_tiny_periodic_heat_u.png", "compare_tiny_periodic_heat_error.png", "compare_tiny_periodic_heat_time.png", "tiny_periodic_heat_pinn.nc", "tiny_periodic_heat_classical_implicit.nc"):
        assert (tmp_path / name).stat().st_size > 0
    table = format_table(result)
    assert all(method in table for method in METHODS) and "time to" in table


def test_time_to_reach_reads_the_curve_or_the_final_result():
    trained = MethodResult("hybrid", 2e-5, {}, 2e-5, 300.0, 1000, curve=[(0.1, 5e-5), (10.0, 3e-5), (200.0, 2e-5)])
    assert time_to_reach(trained, 3e-5) == 10.0 and time_to_reach(trained, 1e-5) is None
    # The written state can be better than the last sampled point: it counts at the row's wall time.
    finished_late = MethodResult("pinn", 1e-5, {}, 1e-5, 300.0, 1000, curve=[(0.1, 5e-5), (200.0, 2e-5)])
    assert time_to_reach(finished_late, 1e-5) == 300.0
    classical_row = MethodResult("classical_implicit", 2e-5, {}, 2e-5, 0.4, 20)
    assert time_to_reach(classical_row, 3e-5) == 0.4 and time_to_reach(classical_row, 1e-5) is None


def test_compare_needs_a_positive_budget_and_known_methods(tmp_path, periodic_heat_spec):
    with pytest.raises(OptionsError, match="--time-budget"):
        compare(periodic_heat_spec, time_budget=0, out_dir=tmp_path)
    with pytest.raises(OptionsError, match="--methods: unknown magic"):
        compare(periodic_heat_spec, time_budget=1, out_dir=tmp_path, methods=["magic"])


def test_cli_compare_prints_the_table(tmp_path, periodic_heat_spec, capsys, single_thread):
    problem = load_spec(periodic_heat_spec)
    spec_path = tmp_path / "heat.yaml"
    spec_path.write_text(problem.to_yaml())
    reference = write_solution(exact_reference(problem), tmp_path / "ref.nc")
    command = ["compare", str(spec_path), "--time-budget", "1", "--out-dir", str(tmp_path / "cmp"), "--reference", str(reference)]
    code = main([*command, "--methods", "classical_implicit,hybrid_untrained,pinn", "--threads", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "classical_implicit" in out and "time to" in out and "(pinn)" in out
    assert (tmp_path / "cmp" / "compare_tiny_periodic_heat_error.png").exists()


def test_a_row_that_blows_up_is_recorded_and_the_comparison_goes_on(tmp_path, periodic_heat_spec, monkeypatch, single_thread):
    import phycrnet.studies.compare as module
    from phycrnet.errors import DivergenceError

    original = module.classical

    def explicit_blows_up(problem, scheme, **options):
        if scheme == "explicit":
            raise DivergenceError("the explicit solver blew up at step 3; try --scheme implicit")
        return original(problem, scheme=scheme, **options)

    monkeypatch.setattr(module, "classical", explicit_blows_up)
    problem = load_spec(periodic_heat_spec)
    result = compare(problem, time_budget=1, out_dir=tmp_path, reference=exact_reference(problem), methods=["classical_explicit", "classical_implicit"], threads=1, options=OPTIONS)
    rows = {r.method: r for r in result.rows}
    assert rows["classical_explicit"].rel_l2 == float("inf") and "blew up" in rows["classical_explicit"].note
    assert rows["classical_implicit"].rel_l2 < 3e-3
    assert "blew up" in format_table(result)


def test_the_untrained_hybrid_row_starts_where_the_trained_one_does(tmp_path, periodic_heat_spec, single_thread):
    """Under a time budget, transport the spec grid does not resolve (cell Peclet 6.25) is
    trained on a refined grid; the untrained row is that same start, so the two rows differ
    by the training alone."""
    advected = load_spec({**periodic_heat_spec, "equations": {"u": "0.01*laplace(u) - d_dx(u**2/2)"}})
    result = compare(advected, time_budget=1.0, out_dir=tmp_path, reference=exact_reference(advected), threads=1, options=OPTIONS, methods=["hybrid_untrained"])
    untrained = read_solution(result.rows[0].file)
    assert int(untrained.attrs["refine"]) == 3 and int(untrained.attrs["iterations"]) == 0


def test_classical_rows_get_the_networks_budget_as_their_time_limit(tmp_path, periodic_heat_spec, single_thread):
    """Equal run time: a classical or py-pde row that cannot finish within the budget is
    recorded as not finished (infinite error, the reason in its note), not waited for."""
    problem = load_spec(periodic_heat_spec)
    result = compare(problem, time_budget=1e-6, out_dir=tmp_path, reference=exact_reference(problem), methods=["classical_implicit", "pypde"], threads=1)
    for row in result.rows:
        assert row.rel_l2 == float("inf") and "did not finish within 1e-06 s" in row.note, row
    assert "did not finish" in format_table(result)
    fresh = compare(problem, time_budget=60, out_dir=tmp_path, reference=exact_reference(problem), methods=["pypde"], threads=1)
    assert fresh.rows[0].rel_l2 < 1e-2 and fresh.rows[0].wall_seconds < 60
