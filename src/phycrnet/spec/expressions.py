"""The expression language of a spec: parsing with sympy, evaluation on arrays and tensors.

Expressions are strings such as ``"eps*laplace(u) + u - u**3"``. They are parsed by walking
Python's abstract syntax tree and building the sympy expression node by node, so no user
text is ever executed. The language (see docs/design.md) is:

* names: the fields, ``x``, ``y``, ``t``, the parameters and ``pi``;
* numbers, ``+ - * / **`` (``^`` is accepted as a power too), parentheses;
* functions ``sin cos tan exp log sqrt tanh abs``;
* spatial operators ``laplace d_dx d_dy d2_dx2 d2_dy2`` (only where operators are allowed),
  applied to a field or to any expression of the fields.

The parsed expression is evaluated by :func:`evaluate`, a small tree walker that works on
numpy arrays, torch tensors and plain floats alike, and delegates every spatial operator to a
callback supplied by the caller (finite differences, spectral derivatives, ...). The same
sympy expression is printed for py-pde by :func:`to_pypde`.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import sympy

from phycrnet.errors import SpecError

#: Spatial operators of the language, as undefined sympy functions.
OPERATORS: dict[str, type[sympy.Function]] = {
    name: sympy.Function(name) for name in ("laplace", "d_dx", "d_dy", "d2_dx2", "d2_dy2")
}

#: Elementary functions of the language and their sympy counterparts.
FUNCTIONS: dict[str, Callable[..., sympy.Expr]] = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "exp": sympy.exp,
    "log": sympy.log,
    "sqrt": sympy.sqrt,
    "tanh": sympy.tanh,
    "abs": sympy.Abs,
}

#: Names that neither fields nor parameters may take.
RESERVED_NAMES: frozenset[str] = frozenset(
    {"x", "y", "t", "pi", "e", "E", "I"} | set(OPERATORS) | set(FUNCTIONS)
)

_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}


def parse_expression(
    source: str | float | int,
    *,
    where: str,
    names: Iterable[str],
    allow_operators: bool,
) -> sympy.Expr:
    """Parse ``source`` into a sympy expression.

    Args:
        source: the expression text (a bare number is accepted too).
        where: the spec key the expression sits at, used in error messages
            (for example ``"equations.u"``).
        names: the symbol names allowed besides ``pi``.
        allow_operators: whether the spatial operators may appear.

    Raises:
        SpecError: on a syntax error, an unknown name, function or operator, or a misuse
            of an operator; the message names ``where``.
    """
    if isinstance(source, bool):
        raise SpecError(f"{where}: expected a number or an expression, got {source!r}")
    if isinstance(source, (int, float)):
        if not math.isfinite(source):
            raise SpecError(f"{where}: value {source!r} is not finite")
        return sympy.Float(source) if isinstance(source, float) else sympy.Integer(source)
    if not isinstance(source, str) or not source.strip():
        raise SpecError(f"{where}: expected a number or an expression, got {source!r}")
    try:
        tree = ast.parse(source.strip().replace("^", "**"), mode="eval")
    except SyntaxError as exc:
        raise SpecError(f"{where}: cannot parse expression {source!r} ({exc.msg})") from None
    builder = _SympyBuilder(where=where, names=set(names), allow_operators=allow_operators)
    return builder.build(tree.body)


class _SympyBuilder:
    """Turns a Python AST of the expression language into sympy, node by node."""

    def __init__(self, *, where: str, names: set[str], allow_operators: bool) -> None:
        self.where = where
        self.names = names
        self.allow_operators = allow_operators

    def fail(self, message: str) -> SpecError:
        return SpecError(f"{self.where}: {message}")

    def build(self, node: ast.AST) -> sympy.Expr:
        if isinstance(node, ast.Constant):
            return self._constant(node.value)
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            return _BINARY[type(node.op)](self.build(node.left), self.build(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.build(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.Call):
            return self._call(node)
        raise self.fail(f"unsupported syntax {ast.unparse(node)!r}")

    def _constant(self, value: Any) -> sympy.Expr:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(f"unsupported constant {value!r}")
        return sympy.Integer(value) if isinstance(value, int) else sympy.Float(value)

    def _name(self, name: str) -> sympy.Expr:
        if name == "pi":
            return sympy.pi
        if name in self.names:
            return sympy.Symbol(name)
        if name in OPERATORS or name in FUNCTIONS:
            raise self.fail(f"{name!r} is a function; call it like {name}(...)")
        allowed = ", ".join(sorted(self.names | {"pi"}))
        raise self.fail(f"unknown symbol {name!r} (allowed: {allowed})")

    def _call(self, node: ast.Call) -> sympy.Expr:
        if not isinstance(node.func, ast.Name):
            raise self.fail(f"unsupported call {ast.unparse(node)!r}")
        name = node.func.id
        if node.keywords or len(node.args) != 1:
            raise self.fail(f"{name}() takes exactly one argument")
        if name in OPERATORS:
            if not self.allow_operators:
                raise self.fail(f"operator {name!r} is not allowed here")
            argument = self.build(node.args[0])
            if not argument.free_symbols - {sympy.Symbol(s) for s in ("x", "y", "t")}:
                raise self.fail(f"{name}() must be applied to an expression of the fields")
            return OPERATORS[name](argument)
        if name in FUNCTIONS:
            return FUNCTIONS[name](self.build(node.args[0]))
        known = ", ".join(sorted(set(FUNCTIONS) | (set(OPERATORS) if self.allow_operators else set())))
        raise self.fail(f"unknown function or operator {name!r} (known: {known})")


def operator_calls(expr: sympy.Expr) -> list[sympy.Expr]:
    """All spatial-operator applications in ``expr`` (innermost first, no duplicates)."""
    calls = [node for node in sympy.postorder_traversal(expr) if _operator_name(node)]
    return list(dict.fromkeys(calls))


def transport_coefficients(expr: sympy.Expr, field: str) -> dict[str, sympy.Expr]:
    """The linearised advection and diffusion coefficients of ``field`` in ``expr``.

    ``expr`` is read as a function of its operator calls: a call ``d_dx(g)`` contributes
    ``dE/d[d_dx(g)] * dg/d field`` to the advection coefficient along x (so
    ``-u*d_dx(u)`` gives ``-u`` and ``-d_dx(u**2/2)`` gives ``-u``), a call ``laplace(g)``
    or ``d2_dx2(g)`` likewise to the diffusion coefficient along x. The coefficients may
    contain fields, coordinates, parameters and other operator calls.

    Returns:
        ``{"advection_x", "advection_y", "diffusion_x", "diffusion_y"}`` as expressions.
    """
    calls = operator_calls(expr)
    placeholders = {call: sympy.Dummy(f"op{i}") for i, call in enumerate(calls)}
    restore = {symbol: call for call, symbol in placeholders.items()}
    flat = expr.xreplace(placeholders)
    symbol = sympy.Symbol(field)
    axes = {"x": ("d_dx", ("laplace", "d2_dx2")), "y": ("d_dy", ("laplace", "d2_dy2"))}
    coefficients: dict[str, sympy.Expr] = {}
    for axis, (first, seconds) in axes.items():
        advection, diffusion = sympy.Integer(0), sympy.Integer(0)
        for call, placeholder in placeholders.items():
            name = _operator_name(call)
            if name != first and name not in seconds:
                continue
            weight = sympy.diff(flat, placeholder) * sympy.diff(call.args[0], symbol)
            if name == first:
                advection += weight
            else:
                diffusion += weight
        coefficients[f"advection_{axis}"] = sympy.simplify(advection.xreplace(restore))
        coefficients[f"diffusion_{axis}"] = sympy.simplify(diffusion.xreplace(restore))
    return coefficients


def _operator_name(node: sympy.Basic) -> str | None:
    name = getattr(getattr(node, "func", None), "__name__", None)
    return name if name in OPERATORS and isinstance(node, sympy.Function) else None


OperatorCallback = Callable[[str, sympy.Expr, Callable[[sympy.Expr], Any]], Any]


def evaluate(
    expr: sympy.Expr,
    env: Mapping[str, Any],
    apply_operator: OperatorCallback | None = None,
) -> Any:
    """Evaluate ``expr`` on arrays, tensors or floats.

    Args:
        expr: a parsed expression.
        env: values for every free symbol (fields, coordinates, time, parameters); numpy
            arrays, torch tensors and floats may be mixed as long as they broadcast.
        apply_operator: called as ``apply_operator(name, argument, evaluate_sub)`` for each
            spatial operator, where ``evaluate_sub(e)`` evaluates a sub-expression in the same
            environment (with memoisation). Required when ``expr`` contains operators.

    Returns:
        The value, of the type the inputs broadcast to.
    """
    return _Walk(env, apply_operator)(expr)


class _Walk:
    """Evaluates sub-expressions in one environment, each once (memoised). A class, not a
    closure that refers to itself: such a reference cycle is freed only by the cyclic
    garbage collector, and would keep every intermediate array of a long rollout's
    residual alive until the next collection."""

    def __init__(self, env: Mapping[str, Any], apply_operator: OperatorCallback | None) -> None:
        self.env, self.apply_operator = env, apply_operator
        self.memo: dict[sympy.Expr, Any] = {}

    def __call__(self, node: sympy.Expr) -> Any:
        if node not in self.memo:
            self.memo[node] = _evaluate_node(node, self.env, self, self.apply_operator)
        return self.memo[node]


def _evaluate_node(node, env, walk, apply_operator) -> Any:
    if node.is_Symbol:
        try:
            return env[node.name]
        except KeyError:
            raise KeyError(f"no value for symbol {node.name!r}") from None
    if node.is_Number or node is sympy.pi or node.is_NumberSymbol:
        return float(node)
    if isinstance(node, sympy.Add):
        return _fold(walk, node.args, lambda a, b: a + b)
    if isinstance(node, sympy.Mul):
        return _fold(walk, node.args, lambda a, b: a * b)
    if isinstance(node, sympy.Pow):
        return _power(walk(node.args[0]), node.args[1], walk)
    operator = _operator_name(node)
    if operator:
        if apply_operator is None:
            raise ValueError(f"operator {operator} needs an apply_operator callback")
        return apply_operator(operator, node.args[0], walk)
    return _elementary(type(node).__name__, walk(node.args[0]))


def _fold(walk, args, combine) -> Any:
    # Numbers first so that a float times a tensor keeps the tensor's dtype and device.
    ordered = sorted(args, key=lambda a: not a.is_Number)
    result = walk(ordered[0])
    for arg in ordered[1:]:
        result = combine(result, walk(arg))
    return result


def _power(base: Any, exponent: sympy.Expr, walk) -> Any:
    if exponent.is_Integer and 1 <= int(exponent) <= 4:
        result = base
        for _ in range(int(exponent) - 1):
            result = result * base
        return result
    if exponent == sympy.Rational(1, 2):
        return _elementary("sqrt", base)
    if exponent.is_Integer and -4 <= int(exponent) <= -1:
        return 1.0 / _power(base, -exponent, walk)
    return base ** walk(exponent)


_NUMPY_FUNCTIONS = {
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "tanh": np.tanh,
    "Abs": np.abs,
}


def _elementary(name: str, value: Any) -> Any:
    if name not in _NUMPY_FUNCTIONS:
        raise ValueError(f"cannot evaluate function {name}")
    if type(value).__module__.startswith("torch"):
        import torch

        return getattr(torch, "abs" if name == "Abs" else name)(value)
    return _NUMPY_FUNCTIONS[name](value)


def substitute(expr: sympy.Expr, values: Mapping[str, float]) -> sympy.Expr:
    """Replace the named symbols by numbers."""
    return expr.xreplace({sympy.Symbol(k): sympy.Float(v) for k, v in values.items()})


def to_pypde(expr: sympy.Expr) -> str:
    """Print ``expr`` in the expression syntax py-pde accepts (same operator names)."""
    return sympy.sstr(expr, full_prec=False, order="none")


def free_names(expr: sympy.Expr) -> set[str]:
    """Names of the free symbols of ``expr``."""
    return {s.name for s in expr.free_symbols}


def constant_diffusivities(equations: Mapping[str, sympy.Expr], values: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """Each field's own diffusion coefficients ``(D_x, D_y)`` in its equation (``equations``:
    field -> right-hand side), where both are non-negative constants once the parameters take
    ``values``; fields without constant diffusion are left out."""
    found: dict[str, tuple[float, float]] = {}
    for field, expression in equations.items():
        coefficients = transport_coefficients(expression, field)
        pair = []
        for axis in ("x", "y"):
            value = substitute(coefficients[f"diffusion_{axis}"], values)
            pair.append(float(value) if isinstance(value, sympy.Number) and value.is_real else math.nan)
        if all(math.isfinite(d) and d >= 0 for d in pair) and any(d > 0 for d in pair):
            found[field] = (pair[0], pair[1])
    return found
