"""The spec's boundary conditions as py-pde boundary conditions (ghost cells).

A side ``a*u + b*du/dn = value`` becomes py-pde's ``value`` (Dirichlet, ``b = 0``; ghost
``u_g = 2*g - u_1``), ``derivative`` (Neumann, ``a = 0``; ``u_g = u_1 + h*g``) or ``mixed``
condition ``du/dn + gamma*u = beta`` with ``gamma = a/b`` and ``beta = value/b`` (Robin).
py-pde's ``derivative`` is the outward normal derivative, like the spec's ``du/dn``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from phycrnet.errors import PhycrnetError
from phycrnet.reference.grid import RefinedAxis, refined_axes
from phycrnet.reference.static import freeze_static
from phycrnet.spec.expressions import evaluate, substitute, to_pypde

if TYPE_CHECKING:
    from phycrnet.spec.problem import BoundaryCondition, Problem

__all__ = ["pypde_boundary_conditions"]

_PYPDE_SIDES = {"left": "x-", "right": "x+", "bottom": "y-", "top": "y+"}


def pypde_boundary_conditions(problem: Problem, field_name: str, refinement: int | None = None) -> dict[str, Any]:
    """The boundary conditions of one field in py-pde's dictionary format.

    Parameters are substituted by their values. Constant conditions become py-pde's
    ``value``, ``derivative`` and ``mixed`` conditions; conditions that depend on ``x``,
    ``y`` or ``t`` become py-pde expression conditions (``value_expression``, ...), given as
    expression text, or, when ``refinement`` is given, as numpy functions
    ``(adjacent, dx, x, y, t)`` bound to the walls of that refined grid (py-pde then skips its
    ``sympy.simplify`` of the text, ~0.7 s per side, and the coordinate-only parts are
    precomputed; the ghost cells follow the same py-pde formulas).
    """
    sides = problem.boundary[field_name]
    values = problem.parameter_values()
    axes = None if refinement is None else refined_axes(problem.grid, refinement)
    result: dict[str, Any] = {}
    for axis_name, periodic, (low, high) in (
        ("x", problem.grid.x.periodic, ("left", "right")),
        ("y", problem.grid.y.periodic, ("bottom", "top")),
    ):
        if periodic:
            result[axis_name] = "periodic"
            continue
        for side in (low, high):
            wall = None if axes is None else _wall_coordinates(axes, side)
            result[_PYPDE_SIDES[side]] = _pypde_side(sides[side], values, wall)
    return result


def _wall_coordinates(axes: tuple[RefinedAxis, RefinedAxis], side: str) -> dict[str, np.ndarray]:
    """Coordinates of the wall points py-pde passes to boundary functions on ``side``."""
    x_axis, y_axis = axes
    if side in ("left", "right"):
        x = x_axis.axis.start if side == "left" else x_axis.axis.end
        return {"x": np.full(y_axis.cells, x), "y": y_axis.centres}
    y = y_axis.axis.start if side == "bottom" else y_axis.axis.end
    return {"x": x_axis.centres, "y": np.full(x_axis.cells, y)}


def _pypde_side(
    condition: BoundaryCondition, parameters: Mapping[str, float], wall: dict[str, np.ndarray] | None
) -> dict[str, Any]:
    """One side ``a*u + b*du/dn = value`` as a py-pde condition (functions when ``wall`` is given)."""
    value = substitute(condition.value, parameters)
    if condition.b == 0.0:  # Dirichlet, also robin with b = 0
        return _constant_or_expression("value", value / condition.a, wall)
    if condition.a == 0.0:  # Neumann, also robin with a = 0
        return _constant_or_expression("derivative", value / condition.b, wall)
    gamma = condition.a / condition.b  # py-pde mixed: du/dn + gamma*u = beta
    beta = value / condition.b
    if not beta.free_symbols:
        return {"type": "mixed", "value": gamma, "const": float(beta)}
    if wall is not None:
        functions = (_BoundaryFunction(sympy.Float(gamma), wall), _BoundaryFunction(beta, wall))
        return {"type": "mixed_expression", "value": functions[0], "const": functions[1]}
    return {"type": "mixed_expression", "value": gamma, "const": to_pypde(beta)}


def _constant_or_expression(kind: str, value: sympy.Expr, wall: dict[str, np.ndarray] | None) -> dict[str, Any]:
    if not value.free_symbols:
        return {kind: float(value)}
    if wall is not None:
        return {"type": f"{kind}_expression", "value": _BoundaryFunction(value, wall)}
    return {f"{kind}_expression": to_pypde(value)}


class _BoundaryFunction:
    """An expression in ``x, y, t`` on one wall, with py-pde's boundary-function signature.

    py-pde calls it as ``f(adjacent_value, dx, x, y, t)``; ``x`` and ``y`` are always the
    wall's points, so the parts depending on them only are evaluated once, on ``wall``.
    """

    def __init__(self, expr: sympy.Expr, wall: dict[str, np.ndarray]) -> None:
        self.environment: dict[str, Any] = dict(wall)
        self.expr = freeze_static(expr, self.environment)
        self.shape = np.shape(wall["x"])

    def __call__(self, adjacent: Any, dx: float, x: Any, y: Any, t: float) -> np.ndarray:
        if np.shape(x) != self.shape:
            raise PhycrnetError("reference solver: boundary function called on unexpected wall points")
        values = evaluate(self.expr, {**self.environment, "t": t})
        return np.broadcast_to(np.asarray(values, dtype=np.float64), self.shape)
