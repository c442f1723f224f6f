"""Coordinate-only parts of expressions, evaluated once instead of at every step.

Source terms such as ``sin(pi*x)*cos(pi*y)*exp(-t)`` contain factors that depend on the
coordinates only; the reference solvers replace them by precomputed arrays before time
stepping starts.
"""

from __future__ import annotations

from typing import Any

import sympy

from phycrnet.spec.expressions import OPERATORS, evaluate

__all__ = ["freeze_static"]


def freeze_static(expr: sympy.Expr, coordinates: dict[str, Any]) -> sympy.Expr:
    """Replace the parts of ``expr`` that depend on ``x`` and ``y`` only by precomputed arrays.

    Each such part becomes a symbol ``<static i>`` whose values are added to ``coordinates``
    (the environment holding ``x`` and ``y``), so that source terms are not recomputed at
    every step. Coordinate-only factors of a product and terms of a sum are merged first.
    Operator arguments (evaluated by the caller's operators, possibly on other points) are
    left alone.
    """
    if _is_operator(expr) or not expr.free_symbols:
        return expr
    if _is_static(expr) and not expr.is_Symbol:
        symbol = sympy.Symbol(f"<static {len(coordinates)}>")
        coordinates[symbol.name] = evaluate(expr, coordinates)
        return symbol
    if isinstance(expr, (sympy.Add, sympy.Mul)):
        static = [a for a in expr.args if _is_static(a) or not a.free_symbols]
        if len(static) >= 2 and any(a.free_symbols for a in static):
            dynamic = [freeze_static(a, coordinates) for a in expr.args if a not in static]
            return expr.func(freeze_static(expr.func(*static), coordinates), *dynamic)
    if not expr.args:
        return expr
    return expr.func(*[freeze_static(a, coordinates) for a in expr.args])


def _is_static(expr: sympy.Expr) -> bool:
    names = {s.name for s in expr.free_symbols}
    return bool(names) and names <= {"x", "y"}


def _is_operator(expr: sympy.Expr) -> bool:
    return isinstance(expr, sympy.Function) and type(expr).__name__ in OPERATORS
