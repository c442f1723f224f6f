"""Tests of the ``phycrnet`` command line (phycrnet.cli.main), in process with capsys, plus
a few runs of ``python -m phycrnet`` in a subprocess for what only a process shows
(exit status of the script, tracebacks with --debug)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import phycrnet
from phycrnet.errors import SpecError
from phycrnet.io.solution import read_solution, solution_dataset, write_solution

#: The directory holding the phycrnet package these tests import (for the subprocesses).
SRC = Path(phycrnet.__file__).resolve().parents[1]


def run_cli(capsys, *args) -> tuple[int, str, str]:
    """``phycrnet ARGS`` in process: (exit code, stdout, stderr)."""
    from phycrnet.cli import main

    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def run_script(*args, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "phycrnet", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def assert_one_line_error(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    assert "Traceback" not in err


def write_spec(directory: Path, spec: dict, model: dict, name: str = "tiny.yaml", **training) -> Path:
    data = dict(spec, training={"threads": 1, **training}, model=model)
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def catalog_module():
    from phycrnet.spec import catalog

    if not hasattr(catalog, "list_cases") or not hasattr(catalog, "case_text"):
        pytest.skip("phycrnet.catalog has no list_cases/case_text (catalog module not written yet)")
    return catalog


@pytest.fixture
def spec_file(tmp_path, periodic_heat_spec, tiny_model) -> Path:
    return write_spec(tmp_path, periodic_heat_spec, tiny_model)


@pytest.fixture(scope="module")
def solved(tmp_path_factory, tiny_cases) -> Path:
    """A solution written by ``phycrnet solve`` (3 iterations on the tiny periodic heat case)."""
    from phycrnet.cli import main

    directory = tmp_path_factory.mktemp("solved")
    spec = write_spec(directory, tiny_cases("periodic_heat"), tiny_cases("model"))
    out = directory / "pred.nc"
    assert main(["solve", str(spec), "--out", str(out), "--iterations", "3", "--quiet"]) == 0
    return out


# --------------------------------------------------------------------------- the entry point


def test_module_runs_as_a_script():
    result = run_script("--help")
    assert result.returncode == 0, result.stderr
    for command in ("cases", "show", "solve", "evaluate", "plot"):
        assert command in result.stdout


def test_help_exits_zero(capsys):
    code, out, err = run_cli(capsys, "--help")
    assert code == 0
    assert "solve" in out


def test_no_arguments_shows_the_commands_not_an_error(capsys):
    code, out, err = run_cli(capsys)
    text = out + err
    assert "solve" in text and "evaluate" in text
    assert not err.startswith("error:"), err


# --------------------------------------------------------------------------- catalog


def test_cases_lists_the_catalog(capsys):
    catalog = catalog_module()
    code, out, err = run_cli(capsys, "cases")
    assert code == 0, err
    lines = out.strip().splitlines()
    names = catalog.list_cases()
    assert len(lines) == len(names)
    for name in names:
        assert any(line.split()[0] == name for line in lines), name
    assert "allen_cahn_periodic" in names
    periodic_line = next(line for line in lines if line.split()[0] == "allen_cahn_periodic")
    assert "periodic" in periodic_line and "32x32" in periodic_line


def test_show_prints_the_case_as_yaml(capsys):
    catalog_module()
    code, out, err = run_cli(capsys, "show", "allen_cahn_periodic")
    assert code == 0, err
    data = yaml.safe_load(out)
    assert data["name"] == "allen_cahn_periodic"
    assert data["boundary"] == "periodic"
    assert "u" in data["equations"]
    from phycrnet.spec.problem import load_spec

    assert load_spec(out).name == "allen_cahn_periodic"


def test_show_unknown_case_is_a_one_line_error(capsys):
    catalog_module()
    code, out, err = run_cli(capsys, "show", "no_such_case")
    assert code != 0
    assert_one_line_error(err)


# --------------------------------------------------------------------------- solve


def test_solve_writes_a_netcdf_with_the_documented_attributes(solved):
    ds = read_solution(solved)
    assert ds["u"].dims == ("t", "y", "x")
    assert ds["u"].shape == (5, 16, 16)
    np.testing.assert_allclose(ds.t.values, [0.0, 0.05, 0.1, 0.15, 0.2])
    for name in ("spec", "solver", "phycrnet_version", "wall_seconds", "iterations", "loss_terms"):
        assert name in ds.attrs, name
    assert ds.attrs["solver"] == "phycrnet"
    assert ds.attrs["phycrnet_version"] == phycrnet.__version__
    assert int(ds.attrs["iterations"]) == 3
    assert float(ds.attrs["wall_seconds"]) >= 0
    assert set(json.loads(ds.attrs["loss_terms"])) == {"pde_u"}
    assert yaml.safe_load(ds.attrs["spec"])["name"] == "tiny_periodic_heat"
    assert (solved.parent / "pred.log.csv").exists()


def test_solve_reports_what_it_wrote(capsys, tmp_path, spec_file):
    out = tmp_path / "p.nc"
    code, stdout, err = run_cli(capsys, "solve", spec_file, "--out", out, "--iterations", "2", "--quiet", "--seed", "1")
    assert code == 0, err
    assert str(out) in stdout and "2 iterations" in stdout and "pde_u" in stdout
    assert err == ""
    assert out.exists()


def test_solve_prints_identified_parameters(capsys, tmp_path, periodic_heat_spec, tiny_model):
    spec = dict(periodic_heat_spec, parameters={"k": {"init": 0.05, "learn": True}})
    path = write_spec(tmp_path, spec, tiny_model)
    out = tmp_path / "inv.nc"
    code, stdout, err = run_cli(capsys, "solve", path, "--out", out, "--iterations", "2", "--quiet")
    assert code == 0, err
    assert "identified parameters: k = " in stdout
    assert "k" in json.loads(read_solution(out).attrs["identified_parameters"])


def test_solve_options_and_extrapolate(capsys, tmp_path, mixed_bc_spec, tiny_model):
    path = write_spec(tmp_path, mixed_bc_spec, tiny_model)
    out = tmp_path / "opt.nc"
    code, stdout, err = run_cli(
        capsys, "solve", path, "--out", out, "--iterations", "3", "--quiet",
        "--boundary", "hard", "--derivatives", "fd2", "--time-scheme", "backward_euler",
        "--schedule", "cosine", "--weighting", "softadapt", "--lr", "1e-3", "--lbfgs-fraction", "0.3",
        "--threads", "1",
    )  # fmt: skip
    assert code == 0, err
    ds = read_solution(out)
    options = json.loads(ds.attrs["options"])
    training, physics = options["training"], options["physics"]
    assert physics["boundary"] == "hard" and training["weighting"] == "softadapt"
    assert training["lr"] == 1e-3 and training["schedule"] == "cosine"
    assert training["lbfgs_fraction"] == 0.3 and physics["time_scheme"] == "backward_euler"
    assert training["threads"] == 1 and options["preset"] == "hybrid"
    assert ds.attrs["derivatives"] == "fd2"


def test_solve_extrapolate(capsys, tmp_path, spec_file):
    out = tmp_path / "ext.nc"
    code, stdout, err = run_cli(capsys, "solve", spec_file, "--out", out, "--iterations", "2", "--quiet", "--extrapolate", "0.3")
    assert code == 0, err
    ds = read_solution(out)
    np.testing.assert_allclose(ds.t.values, [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3], atol=1e-12)
    np.testing.assert_array_equal(ds["extrapolated"].values, [0, 0, 0, 0, 0, 1, 1])


def test_solve_resume(capsys, tmp_path, spec_file):
    out = tmp_path / "r.nc"
    assert run_cli(capsys, "solve", spec_file, "--out", out, "--iterations", "2", "--quiet")[0] == 0
    code, stdout, err = run_cli(capsys, "solve", spec_file, "--out", out, "--iterations", "4", "--resume", "--quiet")
    assert code == 0, err
    assert int(read_solution(out).attrs["iterations"]) == 4


@pytest.mark.parametrize("command", ["solve", "pinn"])
def test_set_reaches_the_training_options_that_also_have_flags(capsys, tmp_path, spec_file, command):
    """``--set training.seed=...`` (and iterations, time_budget, device) is the same option as
    its flag; the flag wins where both are given."""
    out = tmp_path / f"{command}.nc"
    settings = ["--set", "training.seed=2", "--set", "training.iterations=2", "--set", "training.device=cpu", "--set", "training.time_budget=600"]
    code, stdout, err = run_cli(capsys, command, spec_file, "--out", out, "--quiet", "--threads", "1", *settings)
    assert code == 0, err
    attrs = read_solution(out).attrs
    training = json.loads(attrs["options"])["training"]
    assert (training["seed"], training["iterations"], training["time_budget"]) == (2, 2, 600)
    code, stdout, err = run_cli(capsys, command, spec_file, "--out", out, "--quiet", "--threads", "1", *settings, "--seed", "5")
    assert code == 0, err
    assert json.loads(read_solution(out).attrs["options"])["training"]["seed"] == 5


# --------------------------------------------------------------------------- evaluate and plot


def test_evaluate_prints_json(capsys, tmp_path, solved):
    ds = read_solution(solved)
    exact = np.exp(-8 * np.pi**2 * 0.05 * ds.t.values)[:, None, None] * (
        np.sin(2 * np.pi * ds.x.values)[None, None, :] * np.sin(2 * np.pi * ds.y.values)[None, :, None]
    )
    reference = tmp_path / "ref.nc"
    write_solution(solution_dataset({"u": exact}, ds.t.values, ds.x.values, ds.y.values, solver="exact", periodic=(True, True)), reference)
    code, out, err = run_cli(capsys, "evaluate", solved, reference)
    assert code == 0, err
    report = json.loads(out)
    metrics = report["fields"]["u"]
    assert 0 < metrics["rel_l2"] < 10
    assert len(metrics["rel_l2_per_time"]) == 5
    code, out, err = run_cli(capsys, "evaluate", solved, solved)
    assert code == 0, err
    assert json.loads(out)["fields"]["u"]["rel_l2"] == 0.0


def test_plot_writes_pngs_and_a_gif(capsys, tmp_path, solved):
    from PIL import Image

    code, out, err = run_cli(capsys, "plot", solved, "--out-dir", tmp_path / "figures")
    assert code == 0, err
    pngs = sorted((tmp_path / "figures").glob("*.png"))
    gifs = sorted((tmp_path / "figures").glob("*.gif"))
    assert pngs and len(gifs) == 1
    for path in pngs + gifs:
        assert str(path) in out
    with Image.open(gifs[0]) as gif:
        assert gif.n_frames > 1
    code, out, err = run_cli(capsys, "plot", solved, "--out-dir", tmp_path / "still", "--no-animation")
    assert code == 0, err
    assert list((tmp_path / "still").glob("*.png")) and not list((tmp_path / "still").glob("*.gif"))


# --------------------------------------------------------------------------- errors


def test_missing_spec_file(capsys, tmp_path):
    code, out, err = run_cli(capsys, "solve", tmp_path / "absent.yaml", "--out", tmp_path / "x.nc")
    assert code == 2
    assert_one_line_error(err)
    assert "absent.yaml" in err


def test_unknown_spec_key(capsys, tmp_path, periodic_heat_spec, tiny_model):
    path = write_spec(tmp_path, dict(periodic_heat_spec, colour="blue"), tiny_model)
    code, out, err = run_cli(capsys, "solve", path, "--out", tmp_path / "x.nc")
    assert code == 2
    assert_one_line_error(err)
    assert "colour" in err
    assert not (tmp_path / "x.nc").exists()


def test_yaml_syntax_error(capsys, tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\ngrid: {nx: 16\n")
    code, out, err = run_cli(capsys, "solve", path, "--out", tmp_path / "x.nc")
    assert code == 2
    assert_one_line_error(err)


@pytest.mark.parametrize(
    "options, mentions",
    [
        (["--weighting", "nope"], "nope"),
        (["--lr", "-1"], "lr"),
        (["--lr", "0"], "lr"),
        (["--iterations", "abc"], "iterations"),
        (["--iterations", "-3"], "iterations"),
        (["--time-scheme", "leapfrog"], "time-scheme"),
        (["--boundary", "sticky"], "boundary"),
        (["--derivatives", "fd6"], "derivatives"),
        (["--schedule", "linear"], "schedule"),
        (["--lbfgs-fraction", "1.5"], "lbfgs_fraction"),
        (["--refine", "0"], "refine"),
        (["--extrapolate", "0.1"], "extrapolate"),
        (["--device", "tpu"], "device"),
        (["--resume"], "checkpoint"),
        (["--no-such-option"], "no-such-option"),
    ],
    ids=lambda value: "_".join(value) if isinstance(value, list) else None,
)
def test_bad_option_values(capsys, tmp_path, spec_file, options, mentions):
    out = tmp_path / "x.nc"
    code, stdout, err = run_cli(capsys, "solve", spec_file, "--out", out, "--iterations", "2", "--quiet", *options)
    assert code == 2, err
    assert_one_line_error(err)
    assert mentions in err
    assert not out.exists()


def test_evaluate_missing_file(capsys, tmp_path, solved):
    code, out, err = run_cli(capsys, "evaluate", tmp_path / "absent.nc", solved)
    assert code == 2
    assert_one_line_error(err)
    assert "absent.nc" in err
    code, out, err = run_cli(capsys, "evaluate", solved, tmp_path / "absent.nc")
    assert code == 2
    assert_one_line_error(err)


def test_evaluate_not_a_netcdf_file(capsys, tmp_path, solved):
    junk = tmp_path / "junk.nc"
    junk.write_text("not netcdf")
    code, out, err = run_cli(capsys, "evaluate", solved, junk)
    assert code == 2
    assert_one_line_error(err)


def test_plot_missing_file(capsys, tmp_path):
    code, out, err = run_cli(capsys, "plot", tmp_path / "absent.nc")
    assert code == 2
    assert_one_line_error(err)


def test_divergence_exits_3_without_writing(capsys, tmp_path, spec_file):
    out = tmp_path / "div.nc"
    code, stdout, err = run_cli(capsys, "solve", spec_file, "--out", out, "--iterations", "60", "--lr", "1e6", "--schedule", "constant", "--quiet")
    assert code == 3
    assert_one_line_error(err)
    assert "diverged" in err
    assert not out.exists()


def test_debug_raises_the_original_exception(capsys, tmp_path):
    from phycrnet.cli import main

    with pytest.raises(SpecError):
        main(["--debug", "solve", str(tmp_path / "absent.yaml"), "--out", str(tmp_path / "x.nc")])


def test_script_error_is_one_line_without_traceback(tmp_path):
    plain = run_script("evaluate", tmp_path / "absent.nc", tmp_path / "other.nc")
    assert plain.returncode == 2
    assert_one_line_error(plain.stderr)


@pytest.mark.slow
def test_script_shows_a_traceback_with_debug(tmp_path):
    debug = run_script("--debug", "solve", tmp_path / "absent.yaml", "--out", tmp_path / "x.nc")
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr
    assert "SpecError" in debug.stderr


def test_solve_prints_advice_as_one_warning_line(capsys, tmp_path, periodic_heat_spec, tiny_model):
    advected = {**periodic_heat_spec, "equations": {"u": "0.01*laplace(u) - d_dx(u**2/2)"}}
    spec = write_spec(tmp_path, advected, tiny_model)
    code, _, err = run_cli(capsys, "solve", spec, "--out", tmp_path / "a.nc", "--iterations", "1", "--quiet")
    assert code == 0, err
    advice = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(advice) == 1 and "--refine 3" in advice[0], err
    assert "Traceback" not in err and "PhycrnetWarning" not in err


def test_solve_reports_an_automatic_refinement(capsys, tmp_path, periodic_heat_spec, tiny_model):
    advected = {**periodic_heat_spec, "equations": {"u": "0.01*laplace(u) - d_dx(u**2/2)"}}
    spec = write_spec(tmp_path, advected, tiny_model)
    code, out, err = run_cli(capsys, "solve", spec, "--out", tmp_path / "a.nc", "--time-budget", "1", "--quiet")
    assert code == 0, err
    assert "refine 3" in out + err and "warning:" not in err
    code, _, err = run_cli(capsys, "solve", spec, "--out", tmp_path / "b.nc", "--iterations", "1", "--refine", "auto", "--quiet")
    assert code == 0 and "--refine 3" in err
    code, _, err = run_cli(capsys, "solve", spec, "--out", tmp_path / "c.nc", "--iterations", "1", "--refine", "two", "--quiet")
    assert code != 0 and len(err.strip().splitlines()) == 1 and "refine" in err
