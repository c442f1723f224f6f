"""Observations: interpolation accuracy, CSV validation, sampling, and the command line's
handling of bad observation files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import PAPER_DATA, exact_dataset, heat_exact

from phycrnet.cli import main
from phycrnet.errors import DataError, OptionsError
from phycrnet.io.observations import (
    Observations,
    lagrange_stencil,
    read_observations,
    sample_observations,
    write_observations,
)
from phycrnet.spec.problem import load_spec


def write_csv(path, rows: str) -> Path:
    path.write_text(rows)
    return path



@pytest.mark.parametrize("periodic", [True, False])
def test_lagrange_interpolation_is_fourth_order(periodic):
    rng = np.random.default_rng(1)
    errors = []
    for n in (16, 32, 64):
        nodes = np.arange(n) / n if periodic else np.linspace(0, 1, n)
        q = rng.uniform(0, 1, 500)
        index, weight = lagrange_stencil(q / (nodes[1] - nodes[0]), n, periodic)
        f = (lambda z: np.sin(2 * np.pi * z)) if periodic else (lambda z: np.exp(2 * z))
        errors.append(np.abs((f(nodes)[index] * weight).sum(axis=1) - f(q)).max())
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 3.6), orders


def test_interpolation_is_exact_at_nodes_and_weights_sum_to_one():
    n = 10
    s = np.arange(n, dtype=float)
    index, weight = lagrange_stencil(s, n, periodic=False)
    values = np.random.default_rng(0).normal(size=n)
    np.testing.assert_allclose((values[index] * weight).sum(axis=1), values, atol=1e-13)
    _, weight = lagrange_stencil(np.random.default_rng(2).uniform(0, n - 1, 50), n, periodic=False)
    np.testing.assert_allclose(weight.sum(axis=1), 1.0, atol=1e-12)


def test_periodic_stencil_wraps_past_the_last_node():
    n = 8
    index, weight = lagrange_stencil(np.array([7.5, 8.0]), n, periodic=True)
    assert index.min() >= 0 and index.max() < n
    values = np.cos(2 * np.pi * np.arange(n) / n)
    np.testing.assert_allclose((values[index] * weight).sum(axis=1)[1], 1.0, atol=1e-12)


def test_reads_our_format_with_any_column_order(tmp_path, heat):
    path = write_csv(tmp_path / "obs.csv", "u,y,x,t\n0.5,0.25,0.5,0.1\n-0.1,0.75,0.125,0.2\n")
    obs = read_observations(path, heat)
    assert len(obs) == 2 and obs.fields == ["u"]
    np.testing.assert_allclose(obs.t, [0.1, 0.2])
    np.testing.assert_allclose(obs.x, [0.5, 0.125])
    np.testing.assert_allclose(obs.values["u"], [0.5, -0.1])


def test_reads_the_papers_long_header_without_regard_to_case(tmp_path, heat):
    path = write_csv(tmp_path / "paper.csv", "X,Y,T,U\n0.5,0.25,0.1,0.3\n")
    obs = read_observations(path, heat)
    assert obs.fields == ["u"] and obs.values["u"][0] == 0.3


@pytest.mark.parametrize(
    "rows, message",
    [
        ("t,x,y,u\n0.1,0.5,0.5,nan\n", "row 1 (line 2), column 'u'"),
        ("t,x,y,u\n0.1,0.5,0.5,1\n0.1,0.2,0.3,abc\n", "row 2 (line 3), column 'u': 'abc' is not a number"),
        ("t,x,y,u,w\n0.1,0.5,0.5,1,2\n", "unknown column 'w'"),
        ("t,x,u\n0.1,0.5,1\n", "missing column 'y'"),
        ("t,x,y\n0.1,0.5,0.5\n", "no field column"),
        ("t,x,y,u\n", "no observations"),
        ("t,x,y,u\n0.1,0.5,0.5,1\n0.1,1.5,0.5,1\n", "row 2 (line 3): x = 1.5 is outside the domain [0, 1]"),
        ("t,x,y,u\n0.1,0.5,-0.2,1\n", "row 1 (line 2): y = -0.2 is outside the domain"),
        ("t,x,y,u\n0.1,0.5,0.5,1\n0.5,0.5,0.5,1\n", "row 2 (line 3): t = 0.5 is outside the time window [0, 0.2]"),
        ("t,x,y,u,U\n0.1,0.5,0.5,1,1\n", "column 'u' appears twice"),
    ],
)
def test_bad_observations_name_the_row_or_column(tmp_path, heat, rows, message):
    path = write_csv(tmp_path / "bad.csv", rows)
    with pytest.raises(DataError) as info:
        read_observations(path, heat)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file_is_a_data_error(tmp_path, heat):
    with pytest.raises(DataError, match="no such observation file"):
        read_observations(tmp_path / "absent.csv", heat)


def test_fewer_points_than_learnable_parameters_is_rejected(tmp_path, periodic_heat_spec):
    spec = dict(periodic_heat_spec, parameters={"k": {"init": 0.02, "learn": True}, "c": {"init": 1.0, "learn": True}})
    spec["equations"] = {"u": "k*laplace(u) + 0*c"}
    path = write_csv(tmp_path / "one.csv", "t,x,y,u\n0.1,0.5,0.5,1\n")
    with pytest.raises(DataError, match="1 observation\\(s\\) for 2 learnable parameter"):
        read_observations(path, load_spec(spec))


def test_drop_outside_time_keeps_the_window(tmp_path, heat):
    path = write_csv(tmp_path / "late.csv", "t,x,y,u\n0.1,0.5,0.5,1\n0.2,0.5,0.5,2\n0.4,0.5,0.5,3\n")
    obs = read_observations(path, heat, drop_outside_time=True)
    np.testing.assert_allclose(obs.values["u"], [1, 2])


@pytest.mark.skipif(not (PAPER_DATA / "burgers_update1_20%_training.csv").exists(), reason="paper data not beside the checkout")
def test_the_papers_sparse_files_are_accepted():
    problem = load_spec("burgers_mixed")
    long = read_observations(PAPER_DATA / "burgers_update1_20%_training.csv", problem, drop_outside_time=True)
    wide = read_observations(PAPER_DATA / "burgers_update1_20%.csv", problem, drop_outside_time=True)
    assert long.fields == ["u", "v"] and wide.fields == ["u", "v"]
    assert len(long) == len(wide) == 218 * 21
    assert long.t.max() == pytest.approx(1.0)


def test_write_then_read_round_trips(tmp_path, heat):
    obs = Observations(np.array([0.05, 0.1]), np.array([0.1, 0.2]), np.array([0.3, 0.4]), {"u": np.array([1.0 / 3, -2.0])})
    back = read_observations(write_observations(obs, tmp_path / "o.csv"), heat)
    np.testing.assert_array_equal(back.values["u"], obs.values["u"])
    np.testing.assert_array_equal(back.x, obs.x)


def test_sample_draws_distinct_grid_nodes_with_the_asked_noise(heat):
    ds = exact_dataset(heat)
    total = ds["u"].size
    obs = sample_observations(ds, fraction=0.25, noise=0.0, seed=3)
    assert len(obs) == round(0.25 * total)
    assert len(set(zip(obs.t, obs.x, obs.y))) == len(obs)
    np.testing.assert_allclose(obs.values["u"], heat_exact(obs.t, obs.x, obs.y), atol=1e-12)

    noisy = sample_observations(ds, fraction=1.0, noise=0.1, seed=3)
    residual = noisy.values["u"] - heat_exact(noisy.t, noisy.x, noisy.y)
    assert np.std(residual) == pytest.approx(0.1 * ds["u"].values.std(), rel=0.1)
    again = sample_observations(ds, fraction=1.0, noise=0.1, seed=3)
    np.testing.assert_array_equal(again.values["u"], noisy.values["u"])


def test_sample_off_grid_interpolates_accurately(heat):
    obs = sample_observations(exact_dataset(heat), fraction=0.2, seed=0, off_grid=True)
    on_nodes = np.isclose((obs.x * 16) % 1, 0) & np.isclose((obs.y * 16) % 1, 0)
    assert not on_nodes.all()
    np.testing.assert_allclose(obs.values["u"], heat_exact(obs.t, obs.x, obs.y), atol=2e-2)


def test_sample_rejects_bad_options(heat):
    ds = exact_dataset(heat)
    with pytest.raises(OptionsError, match="--fraction"):
        sample_observations(ds, fraction=0.0)
    with pytest.raises(OptionsError, match="--noise"):
        sample_observations(ds, fraction=0.5, noise=-1)
    with pytest.raises(OptionsError, match="--fields: w not in the solution"):
        sample_observations(ds, fraction=0.5, fields=["w"])


def test_cli_bad_observations_exit_2_with_one_line(tmp_path, heat, capsys):
    spec_path = tmp_path / "heat.yaml"
    spec_path.write_text(heat.to_yaml())
    bad = write_csv(tmp_path / "bad.csv", "t,x,y,u\n0.1,0.5,0.5,1\n0.1,0.5,0.5,\n")
    code = main(["solve", str(spec_path), "--out", str(tmp_path / "p.nc"), "--iterations", "2", "--data", str(bad), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.count("\n") == 0 and "row 2 (line 3), column 'u'" in err
    assert not (tmp_path / "p.nc").exists()


def test_cli_sample_missing_file(tmp_path, capsys):
    code = main(["sample", str(tmp_path / "none.nc"), "--fraction", "0.1", "--out", str(tmp_path / "o.csv")])
    assert code == 2 and "not found" in capsys.readouterr().err
