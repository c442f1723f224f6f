"""Tests of phycrnet.spec (and phycrnet.initial): loading, grid convention, validation.

Every invalid spec listed in DESIGN.md must end in a :class:`~phycrnet.errors.SpecError`
with a one-line message that names the offending key.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from phycrnet.errors import SpecError
from phycrnet.spec.problem import Problem, load_spec

BASE: dict[str, Any] = {
    "name": "advection_diffusion",
    "parameters": {"nu": 0.1, "c": {"init": 0.5, "learn": True, "bounds": [0.0, 1.0]}},
    "domain": {"x": [-1.0, 2.0], "y": [0.0, 0.5]},
    "grid": {"nx": 12, "ny": 8},
    "time": {"t_end": 1.0, "dt": 0.25},
    "equations": {"u": "nu*laplace(u) - c*d_dx(u)"},
    "initial": {"u": "sin(pi*x)*cos(2*pi*y) + nu"},
    "boundary": {
        "u": {
            "left": {"type": "dirichlet", "value": "0.5*sin(pi*y)*exp(-t)"},
            "right": {"type": "neumann", "value": 0.1},
            "bottom": {"type": "robin", "a": 1.0, "b": 0.5, "value": 0.0},
            "top": {"type": "neumann", "value": 0},
        }
    },
}


#: Marker for :func:`spec`: remove the key.
DELETE = object()


def spec(**changes: Any) -> dict[str, Any]:
    """BASE with changes; keys are dotted paths, a value of ``DELETE`` removes the key."""
    data = copy.deepcopy(BASE)
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return data


def expect_spec_error(source: Any, *fragments: str, **kwargs: Any) -> str:
    """Load ``source``; assert a one-line SpecError containing every fragment."""
    with pytest.raises(SpecError) as info:
        load_spec(source, **kwargs)
    message = str(info.value)
    assert "\n" not in message and message.strip() == message and message, repr(message)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert info.value.exit_code == 2
    return message


# --------------------------------------------------------------------------- valid specs


def _check_base(problem: Problem) -> None:
    assert problem.name == "advection_diffusion"
    assert problem.fields == ["u"]
    assert problem.parameter_values() == {"nu": 0.1, "c": 0.5}
    assert problem.parameters["c"].learn and problem.parameters["c"].bounds == (0.0, 1.0)
    assert not problem.parameters["nu"].learn
    assert problem.grid.shape == (8, 12)
    assert problem.periodic == (False, False)
    assert problem.n_steps == 4
    assert set(problem.boundary["u"]) == {"left", "right", "bottom", "top"}
    robin = problem.boundary["u"]["bottom"]
    assert (robin.kind, robin.a, robin.b) == ("robin", 1.0, 0.5)
    assert (problem.boundary["u"]["left"].a, problem.boundary["u"]["left"].b) == (1.0, 0.0)
    assert (problem.boundary["u"]["right"].a, problem.boundary["u"]["right"].b) == (0.0, 1.0)
    assert problem.boundary["u"]["left"].time_dependent and not problem.boundary["u"]["right"].time_dependent
    x, y = problem.grid.mesh()
    np.testing.assert_allclose(problem.initial["u"], np.sin(np.pi * x) * np.cos(2 * np.pi * y) + 0.1, atol=1e-14)
    assert problem.initial_values().shape == (1, 8, 12)


def test_valid_spec_from_dict() -> None:
    _check_base(load_spec(spec()))


def test_valid_spec_from_yaml_text_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = yaml.safe_dump(BASE, sort_keys=False)
    _check_base(load_spec(text))
    path = tmp_path / "case.yaml"
    path.write_text(text)
    monkeypatch.chdir(tmp_path.parent)
    _check_base(load_spec(path))
    _check_base(load_spec(str(path)))
    # A problem passes through unchanged, and its YAML form loads back to the same problem.
    problem = load_spec(str(path))
    assert load_spec(problem) is problem
    again = load_spec(problem.to_yaml())
    _check_base(again)
    assert again.equations == problem.equations


def test_yaml_numbers_in_exponent_form() -> None:
    """YAML 1.1 reads ``1e-3`` (no dot) as a string; numeric fields must still accept it."""
    text = yaml.safe_dump(BASE, sort_keys=False).replace("nu: 0.1", "nu: 1e-1").replace("dt: 0.25", "dt: 25e-2")
    problem = load_spec(text)
    assert problem.parameter_values()["nu"] == pytest.approx(0.1)
    assert problem.dt == pytest.approx(0.25)


def test_grid_convention() -> None:
    """Periodic: x_i = x0 + i*L/N, no endpoint; non-periodic: N nodes including both ends."""
    non_periodic = load_spec(spec())
    np.testing.assert_allclose(non_periodic.grid.x.points, np.linspace(-1.0, 2.0, 12), atol=1e-14)
    np.testing.assert_allclose(non_periodic.grid.y.points, np.linspace(0.0, 0.5, 8), atol=1e-14)
    assert non_periodic.grid.x.points[0] == -1.0 and non_periodic.grid.x.points[-1] == pytest.approx(2.0, abs=1e-14)
    periodic = load_spec(spec(boundary="periodic"))
    assert periodic.periodic == (True, True)
    np.testing.assert_allclose(periodic.grid.x.points, -1.0 + 3.0 * np.arange(12) / 12, atol=1e-14)
    np.testing.assert_allclose(periodic.grid.y.points, 0.5 * np.arange(8) / 8, atol=1e-14)
    assert periodic.grid.spacing == pytest.approx((0.25, 0.0625))
    # Mixed: x periodic, y not.
    sides = {"left": {"type": "periodic"}, "right": {"type": "periodic"},
             "bottom": {"type": "neumann"}, "top": {"type": "dirichlet", "value": 1}}
    mixed = load_spec(spec(**{"boundary.u": sides}))
    assert mixed.periodic == (True, False)
    assert set(mixed.boundary["u"]) == {"bottom", "top"}
    np.testing.assert_allclose(mixed.grid.x.points, -1.0 + 0.25 * np.arange(12), atol=1e-14)
    np.testing.assert_allclose(mixed.grid.y.points, np.linspace(0.0, 0.5, 8), atol=1e-14)
    # Arrays are (ny, nx): rows are y, columns are x, row 0 is y0.
    x, y = mixed.grid.mesh()
    assert x.shape == (8, 12)
    assert np.all(x[0] == mixed.grid.x.points) and np.all(y[:, 0] == mixed.grid.y.points)


@pytest.mark.parametrize("t_end, dt, n", [(1.0, 0.25, 4), (1.0, 0.1, 10), (0.3, 0.1, 3), (2.0, 2.0, 1)])
def test_times_are_multiples_of_dt(t_end: float, dt: float, n: int) -> None:
    problem = load_spec(spec(**{"time.t_end": t_end, "time.dt": dt}))
    assert problem.n_steps == n
    assert problem.times.shape == (n + 1,)
    np.testing.assert_allclose(problem.times, dt * np.arange(n + 1), rtol=0, atol=1e-15)
    assert problem.times[-1] == pytest.approx(t_end, rel=1e-12)


def test_multiple_fields_and_periodic_per_field() -> None:
    data = spec(
        equations={"u": "laplace(u) - u*v", "v": "0.5*laplace(v) + u*v"},
        initial={"u": "1 + 0*x", "v": 0.25},
        boundary={"u": "periodic", "v": "periodic"},
    )
    problem = load_spec(data)
    assert problem.fields == ["u", "v"] and problem.periodic == (True, True)
    assert problem.initial_values().shape == (2, 8, 12)
    assert np.all(problem.initial["v"] == 0.25)


# --------------------------------------------------------------------------- invalid specs

INVALID = {
    # name: (spec, fragments that must appear in the message)
    "unknown key (top level)": (spec(colour="red"), ("colour", "unknown key")),
    "unknown key (nested grid)": (spec(**{"grid.nz": 4}), ("grid.nz", "unknown key")),
    "unknown key (nested side)": (spec(**{"boundary.u.left.slope": 1}), ("boundary.u.left.slope", "unknown key")),
    "unknown key (random initial)": (
        spec(**{"initial.u": {"random": {"seed": 1, "sigma": 2}}}),
        ("initial.u.random.sigma", "unknown key"),
    ),
    "unknown operator": (spec(**{"equations.u": "nu*grad(u)"}), ("equations.u", "grad")),
    "unknown symbol": (spec(**{"equations.u": "nu*laplace(u) + q"}), ("equations.u", "'q'")),
    "unknown symbol in boundary value": (spec(**{"boundary.u.left.value": "u + 1"}), ("boundary.u.left.value", "'u'")),
    "unknown symbol in initial value": (spec(**{"initial.u": "sin(z)"}), ("initial.u", "'z'")),
    "operator in initial value": (spec(**{"initial.u": "laplace(x)"}), ("initial.u", "laplace")),
    "expression syntax": (spec(**{"equations.u": "u +* 2"}), ("equations.u",)),
    "field without equation": (spec(**{"initial.v": 0.0}), ("initial.v", "equation")),
    "boundary of a field without equation": (
        spec(**{"boundary.v": "periodic", "boundary.u": "periodic"}),
        ("boundary.v",),
    ),
    "field without initial value": (
        spec(**{"equations.v": "laplace(v)", "boundary.v": copy.deepcopy(BASE["boundary"]["u"])}),
        ("initial.v",),
    ),
    "field without boundary": (spec(**{"equations.v": "laplace(v)", "initial.v": 0}), ("boundary.v",)),
    "no equations": (spec(equations={}, initial={}, boundary={}), ("equations",)),
    "missing side": (spec(**{"boundary.u.top": DELETE}), ("boundary.u.top", "missing")),
    "unknown side": (spec(**{"boundary.u.middle": {"type": "neumann"}}), ("boundary.u.middle",)),
    "unknown boundary type": (spec(**{"boundary.u.left.type": "outflow"}), ("boundary.u.left.type",)),
    "periodic on left only": (spec(**{"boundary.u.left": {"type": "periodic"}}), ("boundary.u.left", "periodic")),
    "periodic on top only": (spec(**{"boundary.u.top": {"type": "periodic"}}), ("boundary.u.top", "periodic")),
    "robin with a = b = 0": (
        spec(**{"boundary.u.bottom": {"type": "robin", "a": 0, "b": 0.0, "value": 1}}),
        ("boundary.u.bottom", "a = b = 0"),
    ),
    "robin without b": (spec(**{"boundary.u.bottom": {"type": "robin", "a": 1.0}}), ("boundary.u.bottom", "'b'")),
    "robin without a": (spec(**{"boundary.u.bottom": {"type": "robin", "b": 1.0}}), ("boundary.u.bottom", "'a'")),
    "a on a dirichlet side": (spec(**{"boundary.u.left.a": 2.0}), ("boundary.u.left", "robin")),
    "dt = 0": (spec(**{"time.dt": 0}), ("time.dt", "positive")),
    "dt < 0": (spec(**{"time.dt": -0.25}), ("time.dt", "positive")),
    "dt not finite": (spec(**{"time.dt": float("nan")}), ("time.dt",)),
    "t_end <= 0": (spec(**{"time.t_end": 0.0}), ("time.t_end",)),
    "dt > t_end": (spec(**{"time.dt": 2.0}), ("time.dt", "t_end")),
    "t_end not a multiple of dt": (spec(**{"time.dt": 0.3}), ("time", "dt", "t_end")),
    "grid too small (nx)": (spec(**{"grid.nx": 5}), ("grid.nx",)),
    "grid too small (ny)": (spec(**{"grid.ny": 3}), ("grid.ny",)),
    "grid too small (periodic)": (spec(**{"grid.nx": 4}, boundary="periodic"), ("grid.nx",)),
    "missing grid": (spec(grid=DELETE), ("grid", "missing")),
    "missing time.dt": (spec(**{"time.dt": DELETE}), ("time.dt", "missing")),
    "non-numeric dt": (spec(**{"time.dt": "abc"}), ("time.dt", "abc")),
    "non-numeric t_end": (spec(**{"time.t_end": "soon"}), ("time.t_end",)),
    "non-integer nx": (spec(**{"grid.nx": 3.5}), ("grid.nx", "3.5")),
    "string nx": (spec(**{"grid.nx": "ten"}), ("grid.nx",)),
    "boolean nx": (spec(**{"grid.nx": True}), ("grid.nx",)),
    "list value": (spec(**{"boundary.u.left.value": [1, 2]}), ("boundary.u.left.value",)),
    "non-numeric robin a": (spec(**{"boundary.u.bottom.a": "one"}), ("boundary.u.bottom.a",)),
    "non-numeric parameter": (spec(**{"parameters.nu": "abc"}), ("parameters.nu",)),
    "parameter bounds exclude init": (
        spec(**{"parameters.c": {"init": 2.0, "bounds": [0.0, 1.0]}}),
        ("parameters.c", "bounds"),
    ),
    "domain reversed": (spec(**{"domain.x": [2.0, -1.0]}), ("domain.x",)),
    "parameter named like a function": (spec(**{"parameters.sin": 1.0}), ("parameters.sin",)),
    "parameter named like a coordinate": (spec(**{"parameters.t": 1.0}), ("parameters.t",)),
    "parameter named pi": (spec(**{"parameters.pi": 3.0}), ("parameters.pi",)),
    "parameter named like an operator": (spec(**{"parameters.laplace": 1.0}), ("parameters.laplace",)),
    "parameter named like a field": (spec(**{"parameters.u": 1.0}), ("parameters.u",)),
    "field named like a coordinate": (
        spec(equations={"x": "laplace(u)"}, initial={"x": 0}, boundary="periodic"),
        ("equations.x",),
    ),
    "import in an expression": (spec(**{"equations.u": "__import__('os').getcwd()"}), ("equations.u",)),
    "attribute access": (spec(**{"equations.u": "u.real"}), ("equations.u",)),
    "dunder attribute in initial value": (spec(**{"initial.u": "x.__class__"}), ("initial.u",)),
    "lambda": (spec(**{"equations.u": "(lambda: u)()"}), ("equations.u",)),
    "subscript": (spec(**{"equations.u": "u[0]"}), ("equations.u",)),
    "comparison": (spec(**{"equations.u": "u > 0"}), ("equations.u",)),
    "string constant": (spec(**{"initial.u": "'abc'"}), ("initial.u",)),
    "keyword argument": (spec(**{"equations.u": "sin(x=u)"}), ("equations.u",)),
    "two arguments": (spec(**{"equations.u": "laplace(u, u)"}), ("equations.u",)),
    "operator on coordinates only": (spec(**{"equations.u": "laplace(x*y) + u"}), ("equations.u",)),
    "boundary not a mapping": (spec(boundary="dirichlet"), ("boundary",)),
    "periodic for one field only": (
        spec(
            equations={"u": "laplace(u)", "v": "laplace(v)"},
            initial={"u": 0, "v": 0},
            boundary={"u": "periodic", "v": copy.deepcopy(BASE["boundary"]["u"])},
        ),
        ("boundary",),
    ),
    "initial value not finite": (spec(**{"initial.u": "log(x)"}), ("initial.u",)),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_spec_raises_one_line_error_naming_the_key(name: str) -> None:
    data, fragments = INVALID[name]
    expect_spec_error(data, *fragments)


def test_yaml_syntax_error() -> None:
    expect_spec_error("name: [unclosed\ngrid: {nx: 3\n", "YAML", "line")


def test_yaml_that_is_not_a_mapping() -> None:
    expect_spec_error("- a\n- b\n", "mapping")


def test_spec_file_not_found(tmp_path: Path) -> None:
    expect_spec_error(str(tmp_path / "missing.yaml"), "missing.yaml")


def test_invalid_yaml_file_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(spec(**{"time.dt": "abc"})))
    expect_spec_error(path, "time.dt")


def test_expressions_are_never_executed(tmp_path: Path) -> None:
    """Parsing walks the syntax tree: code in an expression must not run."""
    sentinel = tmp_path / "executed"
    payloads = [
        f"__import__('pathlib').Path({str(sentinel)!r}).touch()",
        f"open({str(sentinel)!r}, 'w')",
        f"u + __import__('os').system('touch {sentinel}')",
        f"[open({str(sentinel)!r}, 'w') for _ in 'a']",
        f"exec(\"open({str(sentinel)!r}, 'w')\")",
    ]
    for payload in payloads:
        for key in ("equations.u", "initial.u", "boundary.u.left.value"):
            expect_spec_error(spec(**{key: payload}), key)
            assert not sentinel.exists(), payload


def test_numeric_equation_right_hand_side_is_accepted() -> None:
    """``equations: {u: 0}`` (YAML reads a number) is a valid expression of the language
    ("numbers", DESIGN.md), just as ``initial: {u: 0}`` is."""
    problem = load_spec(spec(**{"equations.u": 0}))
    assert float(problem.equations["u"]) == 0.0
    problem = load_spec(spec(**{"equations.u": 1.5}))
    assert float(problem.equations["u"]) == 1.5


# --------------------------------------------------------------------------- initial values


def _random(seed: int, scale: float = 0.1, length: float = 0.2, **kwargs: Any) -> np.ndarray:
    entry = {"random": {"seed": seed, "scale": scale, "length": length, **kwargs}}
    data = spec(**{"initial.u": entry, "grid.nx": 64, "grid.ny": 48, "domain.y": [0.0, 1.0]})
    return load_spec(data).initial["u"]


def test_random_initial_value_reproducible_with_scale() -> None:
    a, b, c = _random(1), _random(1), _random(2)
    assert a.shape == (48, 64) and a.dtype == np.float64
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    for field in (a, c):
        assert field.std() == pytest.approx(0.1, rel=1e-6)
        assert abs(field.mean()) < 1e-10
    assert _random(1, scale=0.3).std() == pytest.approx(0.3, rel=1e-6)
    assert _random(1, mean=2.0).mean() == pytest.approx(2.0, abs=1e-10)


def test_random_initial_value_is_smooth_on_its_length_scale() -> None:
    """Neighbour differences of white noise with std s have mean |.| = 2s/sqrt(pi) ~ 1.13 s;
    a field correlated over 0.2 (x spacing 3/63, y spacing 1/47) varies much less."""
    smooth, smoother = _random(1, length=0.2), _random(1, length=0.5)
    rough = np.abs(np.diff(smooth, axis=1)).mean()
    assert rough < 0.5 * 1.13 * 0.1
    assert np.abs(np.diff(smoother, axis=1)).mean() < 0.7 * rough


def test_random_initial_value_periodic_wraps_smoothly() -> None:
    entry = {"random": {"seed": 3, "scale": 1.0, "length": 0.3}}
    problem = load_spec(spec(**{"initial.u": entry, "grid.nx": 48, "grid.ny": 48}, boundary="periodic",
                             domain={"x": [0.0, 1.0], "y": [0.0, 1.0]}))
    u = problem.initial["u"]
    interior = np.abs(np.diff(u, axis=1)).max()
    wrap = np.abs(u[:, 0] - u[:, -1]).max()
    assert wrap <= 1.5 * interior


def test_random_initial_value_rejects_bad_length() -> None:
    expect_spec_error(spec(**{"initial.u": {"random": {"seed": 0, "length": 0.0}}}), "initial.u", "length")


def test_initial_value_from_npy_relative_to_spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    case_dir = tmp_path / "cases"
    case_dir.mkdir()
    values = np.arange(8 * 12, dtype=np.float64).reshape(8, 12) / 7.0
    np.save(case_dir / "init.npy", values)
    path = case_dir / "spec.yaml"
    path.write_text(yaml.safe_dump(spec(**{"initial.u": {"file": "init.npy"}})))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # relative to the spec file, not to the working directory
    problem = load_spec(str(path))
    np.testing.assert_array_equal(problem.initial["u"], values)
    # A dict spec resolves relative paths against source_dir.
    problem = load_spec(spec(**{"initial.u": {"file": "init.npy"}}), source_dir=case_dir)
    np.testing.assert_array_equal(problem.initial["u"], values)
    # A stack of all fields (n_fields, ny, nx) is accepted too.
    np.save(case_dir / "stack.npy", values[None])
    problem = load_spec(spec(**{"initial.u": {"file": "stack.npy"}}), source_dir=case_dir)
    np.testing.assert_array_equal(problem.initial["u"], values)


def test_initial_value_file_errors(tmp_path: Path) -> None:
    np.save(tmp_path / "transposed.npy", np.zeros((12, 8)))
    expect_spec_error(spec(**{"initial.u": {"file": "transposed.npy"}}), "initial.u.file", "shape", source_dir=tmp_path)
    expect_spec_error(spec(**{"initial.u": {"file": "absent.npy"}}), "initial.u.file", "not found", source_dir=tmp_path)
    (tmp_path / "values.txt").write_text("1 2 3")
    expect_spec_error(spec(**{"initial.u": {"file": "values.txt"}}), "initial.u.file", source_dir=tmp_path)
    np.save(tmp_path / "nan.npy", np.full((8, 12), np.nan))
    expect_spec_error(spec(**{"initial.u": {"file": "nan.npy"}}), "initial.u", source_dir=tmp_path)
