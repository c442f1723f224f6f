"""``phycrnet compare`` on a tiny case: the table, the JSON and the figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from phycrnet.cli import main
from phycrnet.studies.compare import compare, format_table
from phycrnet.errors import OptionsError
from phycrnet.io.solution import solution_dataset, write_solution
from phycrnet.spec.problem import load_spec


def exact_reference(problem, k=0.05):
    x, y, t = problem.grid.x.points, problem.grid.y.points, problem.times
    u = np.exp(-8 * np.pi**2 * k * t)[:, None, None] * np.sin(2 * np.pi * x)[None, None, :] * np.sin(2 * np.pi * y)[None, :, None]
    return solution_dataset({"u": u}, t, x, y, solver="exact", spec_yaml=problem.to_yaml(), periodic=problem.periodic)


def test_compare_writes_table_solutions_and_figures(tmp_path, periodic_heat_spec, single_thread):
    problem = load_spec(periodic_heat_spec)
    result = compare(
        problem,
        time_budget=1.5,
        out_dir=tmp_path,
        reference=exact_reference(problem),
        threads=1,
        phycrnet_options={"model": {"encoder_channels": [4, 8, 16], "lstm_channels": 64}},
        pinn_options={"hidden": (16, 16), "n_interior": 256},
    )
    methods = [r.method for r in result.rows]
    assert methods == ["phycrnet", "pinn"]
    for row in result.rows:
        assert 0 < row.rel_l2 < 10 and row.iterations > 0
        assert 0 < row.wall_seconds < 10
    assert result.ratio() == pytest.approx(result.rows[1].rel_l2 / result.rows[0].rel_l2)
    saved = json.loads((tmp_path / "compare_tiny_periodic_heat.json").read_text())
    assert saved["ratio_pinn_over_phycrnet"] == pytest.approx(result.ratio())
    for name in ("compare_tiny_periodic_heat_u.png", "compare_tiny_periodic_heat_error.png", "tiny_periodic_heat_pinn.nc", "tiny_periodic_heat_phycrnet.nc"):
        assert (tmp_path / name).stat().st_size > 0
    table = format_table(result)
    assert "phycrnet" in table and "pinn" in table and "error(PINN) / error(PhyCRNet)" in table


def test_compare_needs_a_positive_budget(tmp_path, periodic_heat_spec):
    with pytest.raises(OptionsError, match="--time-budget"):
        compare(periodic_heat_spec, time_budget=0, out_dir=tmp_path)


def test_cli_compare_prints_the_table(tmp_path, periodic_heat_spec, capsys, single_thread):
    problem = load_spec(periodic_heat_spec)
    spec_path = tmp_path / "heat.yaml"
    spec_path.write_text(problem.to_yaml())
    reference = write_solution(exact_reference(problem), tmp_path / "ref.nc")
    code = main(["compare", str(spec_path), "--time-budget", "1", "--out-dir", str(tmp_path / "cmp"), "--reference", str(reference), "--threads", "1", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "error(PINN) / error(PhyCRNet)" in out
    assert (tmp_path / "cmp" / "compare_tiny_periodic_heat_error.png").exists()
