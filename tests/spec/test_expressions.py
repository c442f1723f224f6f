"""Tests of phycrnet.expressions: parsing with sympy, evaluation on numpy and torch, printing
for py-pde."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
import torch

from phycrnet.errors import SpecError
from phycrnet.spec.expressions import (
    OPERATORS,
    RESERVED_NAMES,
    evaluate,
    free_names,
    operator_calls,
    parse_expression,
    substitute,
    to_pypde,
    transport_coefficients,
)

NAMES = {"u", "v", "x", "y", "t", "eps", "k"}
u, v, x, y, t, eps, k = sympy.symbols("u v x y t eps k")


def parse(source, *, allow_operators: bool = True, names=NAMES) -> sympy.Expr:
    return parse_expression(source, where="equations.u", names=names, allow_operators=allow_operators)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "source, expected",
    [
        ("eps*laplace(u) + u - u**3", eps * OPERATORS["laplace"](u) + u - u**3),
        ("d_dx(u*v) - 2.5*d2_dy2(v)", OPERATORS["d_dx"](u * v) - 2.5 * OPERATORS["d2_dy2"](v)),
        ("sin(pi*x)*exp(-t)", sympy.sin(sympy.pi * x) * sympy.exp(-t)),
        ("sqrt(abs(u)) + tanh(v)/log(2 + y)", sympy.sqrt(sympy.Abs(u)) + sympy.tanh(v) / sympy.log(2 + y)),
        ("cos(x) + tan(y)", sympy.cos(x) + sympy.tan(y)),
        ("-u", -u),
        ("+u", u),
        ("(u + v)/2", (u + v) / 2),
        ("1/3", sympy.Rational(1, 3)),
        ("1e-3*u", sympy.Float(0.001) * u),
        ("u**-2", u**-2),
        ("d2_dx2(d_dy(u))", OPERATORS["d2_dx2"](OPERATORS["d_dy"](u))),
    ],
)
def test_parse_builds_the_sympy_expression(source: str, expected: sympy.Expr) -> None:
    assert parse(source) == expected


def test_parse_numbers() -> None:
    assert parse(3) == sympy.Integer(3)
    assert parse(0.25) == sympy.Float(0.25)
    assert parse("  u  ") == u


@pytest.mark.parametrize(
    "source, expected",
    [
        ("u^2", u**2),
        ("u + v^2", u + v**2),  # ^ binds tighter than +, like **
        ("2*x^2", 2 * x**2),
        ("-x^2", -(x**2)),
        ("x^2*y", x**2 * y),
    ],
)
def test_caret_is_a_power_with_the_precedence_of_power(source: str, expected: sympy.Expr) -> None:
    """DESIGN.md's language is sympy's/py-pde's: ``^`` means ``**`` (sympify('u + v^2') is
    u + v**2). Python's ``^`` is XOR with a precedence *below* + and *, so mapping the
    operator node (not the token) gives (u + v)**2, 4*x**2, x**2 and x**(2*y)."""
    assert parse(source) == expected
    assert sympy.sympify(source) == expected


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("grad(u)", "grad"),
        ("q + u", "'q'"),
        ("sin", "sin"),
        ("laplace", "laplace"),
        ("sin(u, v)", "one argument"),
        ("sin(x=u)", "one argument"),
        ("laplace(x*y)", "fields"),
        ("u.real", "u.real"),
        ("u[0]", "u[0]"),
        ("u if v else 1", "unsupported"),
        ("u > 1", "unsupported"),
        ("'text'", "constant"),
        ("True", "constant"),
        ("1j*u", "constant"),
        ("u +", "parse"),
        ("u & v", "unsupported"),
        ("(lambda: 1)()", "unsupported"),
        ("__import__('os')", "__import__"),
        ("E*u", "'E'"),
    ],
)
def test_parse_errors_name_the_key(source: str, fragment: str) -> None:
    with pytest.raises(SpecError) as info:
        parse(source)
    message = str(info.value)
    assert message.startswith("equations.u: ") and "\n" not in message
    assert fragment in message


@pytest.mark.parametrize("source", [True, None, [1, 2], "", "   ", float("nan"), float("inf")])
def test_parse_rejects_non_expressions(source) -> None:
    with pytest.raises(SpecError, match="equations.u"):
        parse(source)


def test_operators_only_where_allowed() -> None:
    with pytest.raises(SpecError, match="not allowed"):
        parse("laplace(u)", allow_operators=False)
    assert parse("sin(x) + u", allow_operators=False) == sympy.sin(x) + u


def test_reserved_names() -> None:
    for name in ("x", "y", "t", "pi", "laplace", "d_dx", "sin", "abs", "E", "I"):
        assert name in RESERVED_NAMES
    assert "u" not in RESERVED_NAMES and "eps" not in RESERVED_NAMES


def test_operator_calls_innermost_first_without_duplicates() -> None:
    expr = parse("laplace(u) + d_dx(laplace(u)) + laplace(u)**2 + d_dy(v)")
    calls = operator_calls(expr)
    laplace_u = OPERATORS["laplace"](u)
    assert len(calls) == 3 and len(set(calls)) == 3
    assert set(calls) == {laplace_u, OPERATORS["d_dx"](laplace_u), OPERATORS["d_dy"](v)}
    assert calls.index(laplace_u) < calls.index(OPERATORS["d_dx"](laplace_u))
    assert operator_calls(parse("u + x")) == []


def test_free_names_and_substitute() -> None:
    expr = parse("eps*laplace(u) + k*sin(x) + t")
    assert free_names(expr) == {"eps", "u", "k", "x", "t"}
    replaced = substitute(expr, {"eps": 0.5, "k": 2})
    assert free_names(replaced) == {"u", "x", "t"}
    assert replaced == 0.5 * OPERATORS["laplace"](u) + 2.0 * sympy.sin(x) + t


# --------------------------------------------------------------------------- evaluation


def test_evaluate_numpy_against_direct_formula() -> None:
    rng = np.random.default_rng(0)
    xs, ys = np.meshgrid(np.linspace(0.1, 1, 7), np.linspace(0.2, 2, 5))
    uu, vv = rng.uniform(0.1, 1.0, (2, 5, 7))
    env = {"x": xs, "y": ys, "t": 0.3, "u": uu, "v": vv, "eps": 0.01, "k": 3.0}
    source = "sin(pi*x)*exp(-t) + u**3 - abs(v - 0.5)/sqrt(u) + log(1 + y)*tanh(k*v) + cos(u)**2 + tan(0.1*y) + u**1.5 + u**-2 + 2**v"
    expected = (
        np.sin(np.pi * xs) * np.exp(-0.3) + uu**3 - np.abs(vv - 0.5) / np.sqrt(uu) + np.log(1 + ys) * np.tanh(3 * vv)
        + np.cos(uu) ** 2 + np.tan(0.1 * ys) + uu**1.5 + uu**-2 + 2**vv
    )
    value = evaluate(parse(source), env)
    assert isinstance(value, np.ndarray) and value.shape == (5, 7)
    np.testing.assert_allclose(value, expected, rtol=1e-12)


def test_evaluate_scalars_and_constants() -> None:
    assert evaluate(parse("2*pi"), {}) == pytest.approx(2 * math.pi)
    assert evaluate(parse("exp(1)*x"), {"x": 2.0}) == pytest.approx(2 * math.e)
    assert evaluate(parse("1/3 + x"), {"x": 1.0}) == pytest.approx(4 / 3)
    with pytest.raises(KeyError, match="'u'"):
        evaluate(parse("u + 1"), {})


def test_evaluate_torch_keeps_dtype_and_device() -> None:
    generator = torch.Generator().manual_seed(0)
    for dtype in (torch.float32, torch.float64):
        uu = torch.rand(2, 4, 6, generator=generator, dtype=dtype) + 0.1
        env = {"u": uu, "x": torch.linspace(0, 1, 6, dtype=dtype), "t": torch.tensor([0.0, 0.5], dtype=dtype).view(-1, 1, 1)}
        value = evaluate(parse("2.5*u + u**2 - sqrt(u)*exp(-t) + abs(sin(pi*x)) + u**0.7 + 1/u"), env)
        assert isinstance(value, torch.Tensor) and value.dtype == dtype and value.shape == (2, 4, 6)
        expected = (
            2.5 * uu + uu**2 - torch.sqrt(uu) * torch.exp(-env["t"]) + torch.abs(torch.sin(math.pi * env["x"]))
            + uu**0.7 + 1 / uu
        )
        torch.testing.assert_close(value, expected)


def test_gradients_flow_through_torch_parameters() -> None:
    """d/d(eps) of sum(eps*u**2 + sin(eps*x)) = sum(u**2 + x*cos(eps*x))."""
    eps_value = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    uu = torch.linspace(-1, 1, 11, dtype=torch.float64, requires_grad=True)
    xs = torch.linspace(0, 2, 11, dtype=torch.float64)
    value = evaluate(parse("eps*u**2 + sin(eps*x)"), {"eps": eps_value, "u": uu, "x": xs})
    value.sum().backward()
    expected = (uu.detach() ** 2 + xs * torch.cos(0.7 * xs)).sum()
    torch.testing.assert_close(eps_value.grad, expected)
    torch.testing.assert_close(uu.grad, 2 * 0.7 * uu.detach())


def test_operator_callback_receives_the_argument_and_evaluates_it() -> None:
    """The callback gets (name, sympy argument, evaluate_sub); evaluate_sub(argument) gives
    the argument's values in the same environment; repeated applications are memoised."""
    calls: list[tuple[str, sympy.Expr]] = []
    uu = np.array([1.0, 2.0, 3.0])
    vv = np.array([0.5, -1.0, 4.0])

    def apply(name, argument, evaluate_sub):
        calls.append((name, argument))
        values = evaluate_sub(argument)
        # A stand-in operator that is easy to check: laplace -> 10*arg, d_dx -> 100*arg, ...
        return {"laplace": 10.0, "d_dx": 100.0, "d_dy": 1000.0, "d2_dx2": 2.0, "d2_dy2": 3.0}[name] * values

    expr = parse("laplace(u**2) + d_dx(u*v) + eps*laplace(u**2)**2 + d2_dx2(d_dy(v))")
    value = evaluate(expr, {"u": uu, "v": vv, "eps": 0.5}, apply)
    expected = 10 * uu**2 + 100 * uu * vv + 0.5 * (10 * uu**2) ** 2 + 2 * 1000 * vv
    np.testing.assert_allclose(value, expected)
    names = [name for name, _ in calls]
    assert sorted(names) == ["d2_dx2", "d_dx", "d_dy", "laplace"]  # laplace(u**2) once
    arguments = dict(calls)
    assert arguments["laplace"] == u**2
    assert arguments["d_dx"] == u * v
    assert arguments["d2_dx2"] == OPERATORS["d_dy"](v)
    assert arguments["d_dy"] == v


def test_operators_need_a_callback() -> None:
    with pytest.raises(ValueError, match="laplace"):
        evaluate(parse("laplace(u)"), {"u": np.ones(3)})


# --------------------------------------------------------------------------- py-pde


PYPDE_CASES = [
    "eps*laplace(u) + u - u**3",
    "d_dx(u*v) - 2.5e-7*d2_dy2(v) + exp(-t)*sin(pi*x)",
    "0.001*laplace(u) - k*d_dy(u)",
    "u/(1 + v)**2 - sqrt(u) + u**(1/3) + u**0.5 + u**-2",
    "tanh(u)/log(2 + y) + cos(u)**2 + tan(v) + abs(u)",
    "d2_dx2(d_dy(u)) + 1e20*v",
    "-u",
    "3.0",
    "exp(1)*u",
]


def _pypde_parse(text: str) -> sympy.Expr:
    """Parse like py-pde does (sympy's parser with the names declared)."""
    from pde.tools.expressions import parse_expr_guarded

    return parse_expr_guarded(text, symbols=sorted(NAMES), functions=sorted(OPERATORS))


@pytest.mark.parametrize("source", PYPDE_CASES)
def test_to_pypde_parses_back_to_the_same_expression(source: str) -> None:
    pytest.importorskip("pde")
    expr = parse(source)
    text = to_pypde(expr)
    assert isinstance(text, str) and "\n" not in text
    assert _pypde_parse(text) == expr
    # Operators keep their names, which py-pde knows.
    for call in operator_calls(expr):
        assert type(call).__name__ in text


@pytest.mark.parametrize("source", [s for s in PYPDE_CASES if "abs" not in s and "exp(1)" not in s])
def test_to_pypde_is_also_our_language(source: str) -> None:
    """Apart from sympy's spellings of abs (``Abs``) and e (``E``), the printed text is
    in the spec language too."""
    expr = parse(source)
    assert parse(to_pypde(expr)) == expr


@pytest.mark.parametrize(
    "source, expected",
    [
        ("-u*d_dx(u) - v*d_dy(u) + k*laplace(u)", {"advection_x": "-u", "advection_y": "-v", "diffusion_x": "k", "diffusion_y": "k"}),
        ("-d_dx(u**2/2) + eps*d2_dx2(u) + d2_dy2(v)", {"advection_x": "-u", "advection_y": "0", "diffusion_x": "eps", "diffusion_y": "0"}),
        ("eps*laplace(u) + u - u**3", {"advection_x": "0", "advection_y": "0", "diffusion_x": "eps", "diffusion_y": "eps"}),
        ("-d_dx(u)*d_dy(u)", {"advection_x": "-d_dy(u)", "advection_y": "-d_dx(u)", "diffusion_x": "0", "diffusion_y": "0"}),
        ("k*laplace(u*v) - 2*x*d_dy(v)", {"advection_x": "0", "advection_y": "0", "diffusion_x": "k*v", "diffusion_y": "k*v"}),
    ],
)
def test_transport_coefficients_linearise_each_operator_call(source, expected):
    """Conservative and product forms give the same coefficients as the advective form; a
    term acting on another field does not count for ``u``."""
    coefficients = transport_coefficients(parse(source), "u")
    for key, value in expected.items():
        assert sympy.simplify(coefficients[key] - parse(value)) == 0, key
