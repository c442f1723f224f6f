"""Right-hand sides of the py-pde reference: the semi-discrete equations on a refined grid.

The discretisation is identical to py-pde's numba operators (checked in the tests): 5-point
Laplacian, central first and second differences, ghost cells from py-pde's boundary classes
(:mod:`phycrnet.reference.boundary`). All of it is 2nd-order accurate.

Two backends evaluate the right-hand side:

``"numpy"`` (default)
    py-pde grid and boundary objects set the ghost cells, numpy applies the stencils and
    evaluates the equation (:func:`phycrnet.spec.expressions.evaluate`). No compilation; a
    spatial operator acts on the ghost-padded values of its argument, so ``laplace(u**3)`` or
    ``d_dx(v)`` in the equation for ``u`` use the boundary conditions of the fields they
    contain.
``"numba"``
    ``pde.PDE(..., bc_ops={"<field>:*": ...})`` compiled by py-pde with numba. Faster per
    step, but every new grid costs 10-40 s of compilation on a small machine (reported as
    ``jit_seconds``). py-pde chooses boundary conditions per *equation*, not per operand, so
    this backend only accepts operators applied to a bare field whose conditions equal those
    of the equation's field.

States have py-pde's layout ``(n_fields, Mx, My)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import sympy

from phycrnet.errors import OptionsError, PhycrnetError
from phycrnet.reference.boundary import pypde_boundary_conditions
from phycrnet.reference.grid import refined_axes, refined_grid
from phycrnet.reference.integrate import RightHandSide
from phycrnet.reference.static import freeze_static
from phycrnet.spec.expressions import evaluate, operator_calls, substitute, to_pypde

if TYPE_CHECKING:
    from phycrnet.spec.problem import Problem

__all__ = ["Backend", "NumpyRightHandSide", "apply_stencil", "make_rhs", "numba_right_hand_side"]

Backend = Literal["numpy", "numba"]


def make_rhs(problem: Problem, refinement: int, backend: str) -> RightHandSide:
    """The right-hand side of ``backend`` on the grid refined ``refinement`` times."""
    if backend == "numpy":
        return NumpyRightHandSide(problem, refinement)
    if backend == "numba":
        return numba_right_hand_side(problem, refinement)
    raise OptionsError(f"backend: unknown reference backend {backend!r} (use 'numpy' or 'numba')")


class NumpyRightHandSide:
    """The semi-discrete equations evaluated with numpy stencils and py-pde ghost cells.

    Call as ``rhs(t, state)`` with ``state`` of shape ``(n_fields, Mx, My)``.
    """

    def __init__(self, problem: Problem, refinement: int) -> None:
        import pde  # noqa: F401  (py-pde must be importable)

        self.fields = list(problem.fields)
        self.axes = refined_axes(problem.grid, refinement)
        self.spacing = (self.axes[0].spacing, self.axes[1].spacing)
        grid = refined_grid(problem.grid, refinement)
        self.boundaries = [
            grid.get_boundary_conditions(pypde_boundary_conditions(problem, f, refinement)) for f in self.fields
        ]
        parameters = problem.parameter_values()
        equations = [substitute(problem.equations[f], parameters) for f in self.fields]
        _check_operator_arguments(equations, self.fields)
        self.set_corners = any(
            not (call.args[0].is_Symbol and call.args[0].name in self.fields)
            for expr in equations
            for call in operator_calls(expr)
        )
        shape = (len(self.fields), self.axes[0].cells + 2, self.axes[1].cells + 2)
        self.padded = np.zeros(shape)
        x, y = np.meshgrid(self.axes[0].padded_centres, self.axes[1].padded_centres, indexing="ij")
        self.padded_coordinates = {"x": x, "y": y}
        self.coordinates: dict[str, Any] = {"x": x[1:-1, 1:-1], "y": y[1:-1, 1:-1]}
        self.equations = [freeze_static(expr, self.coordinates) for expr in equations]

    def __call__(self, t: float, state: np.ndarray) -> np.ndarray:
        self._fill(t, state)
        interior = {f: self.padded[i, 1:-1, 1:-1] for i, f in enumerate(self.fields)}
        env = {**interior, **self.coordinates, "t": t}
        out = np.empty_like(state)
        for i, expr in enumerate(self.equations):
            out[i] = evaluate(expr, env, lambda name, argument, _walk: self._operator(name, argument, t))
        return out

    def _fill(self, t: float, state: np.ndarray) -> None:
        """Copy the state into the padded arrays and set their ghost cells (py-pde)."""
        self.padded[:, 1:-1, 1:-1] = state
        args = {"t": float(t)}
        for i, boundaries in enumerate(self.boundaries):
            boundaries.set_ghost_cells(self.padded[i], set_corners=self.set_corners, args=args)  # type: ignore[call-arg]

    def _operator(self, name: str, argument: sympy.Expr, t: float) -> np.ndarray:
        if argument.is_Symbol and argument.name in self.fields:
            padded = self.padded[self.fields.index(argument.name)]
        else:
            env = {f: self.padded[i] for i, f in enumerate(self.fields)}
            padded = evaluate(argument, {**env, **self.padded_coordinates, "t": t})
        return apply_stencil(name, padded, self.spacing)


def apply_stencil(name: str, padded: np.ndarray, spacing: tuple[float, float]) -> np.ndarray:
    """A 2nd-order finite-difference operator on ghost-padded data (py-pde's stencils).

    Args:
        name: ``laplace``, ``d_dx``, ``d_dy``, ``d2_dx2`` or ``d2_dy2``.
        padded: values with one ghost cell on every side, shape ``(Mx + 2, My + 2)``.
        spacing: cell widths ``(hx, hy)``.

    Returns:
        The operator on the cells, shape ``(Mx, My)``.
    """
    hx, hy = spacing
    if name == "d_dx":
        return _difference(padded[2:, 1:-1], padded[:-2, 1:-1], 0.5 / hx)
    if name == "d_dy":
        return _difference(padded[1:-1, 2:], padded[1:-1, :-2], 0.5 / hy)
    if name == "d2_dx2":
        return _second_difference(padded[2:, 1:-1], padded[:-2, 1:-1], padded[1:-1, 1:-1], hx)
    if name == "d2_dy2":
        return _second_difference(padded[1:-1, 2:], padded[1:-1, :-2], padded[1:-1, 1:-1], hy)
    if name == "laplace":
        return _laplace(padded, hx, hy)
    raise PhycrnetError(f"reference solver: unknown operator {name!r}")


# The stencils avoid large temporaries, which are expensive (page faults on every allocation).


def _laplace(padded: np.ndarray, hx: float, hy: float) -> np.ndarray:
    """5-point Laplacian in one C pass (``scipy.ndimage``, about twice as fast as slicing)."""
    from scipy import ndimage

    kernel = np.array([[0.0, hx**-2, 0.0], [hy**-2, -2.0 * (hx**-2 + hy**-2), hy**-2], [0.0, hx**-2, 0.0]])
    return ndimage.correlate(padded, kernel, mode="constant")[1:-1, 1:-1]


def _difference(upper: np.ndarray, lower: np.ndarray, scale: float) -> np.ndarray:
    result = np.subtract(upper, lower)
    result *= scale
    return result


def _second_difference(upper: np.ndarray, lower: np.ndarray, centre: np.ndarray, spacing: float) -> np.ndarray:
    result = np.add(upper, lower)
    result -= centre
    result -= centre
    result *= 1.0 / spacing**2
    return result


def _check_operator_arguments(equations: Sequence[sympy.Expr], fields: Sequence[str]) -> None:
    """Reject nested operators: their inner result has no ghost cells to differentiate."""
    for expr in equations:
        for call in operator_calls(expr):
            if operator_calls(call.args[0]):
                raise PhycrnetError(
                    f"reference solver: nested spatial operators are not supported ({sympy.sstr(call)})"
                )


def numba_right_hand_side(problem: Problem, refinement: int) -> RightHandSide:
    """The semi-discrete equations compiled by py-pde (``pde.PDE``) with numba.

    Raises:
        OptionsError: an operator is applied to something other than a field whose boundary
            conditions equal those of the equation's field (py-pde picks conditions per
            equation, so it would silently use the wrong ones).
    """
    import pde

    grid = refined_grid(problem.grid, refinement)
    parameters = problem.parameter_values()
    conditions = {f: pypde_boundary_conditions(problem, f) for f in problem.fields}
    equations = {f: substitute(problem.equations[f], parameters) for f in problem.fields}
    for name, expr in equations.items():
        _check_numba_operands(name, expr, conditions)
    rhs_text = {f: to_pypde(expr) for f, expr in equations.items()}
    eq = pde.PDE(rhs_text, bc_ops={f"{f}:*": conditions[f] for f in problem.fields})
    fields = [pde.ScalarField(grid, label=f) for f in problem.fields]
    state = fields[0] if len(fields) == 1 else pde.FieldCollection(fields)
    compiled = eq.make_pde_rhs(state, backend="numba")  # type: ignore[type-var]
    shape = (len(fields), *grid.shape)

    def rhs(t: float, values: np.ndarray) -> np.ndarray:
        data = values[0] if len(fields) == 1 else values
        return np.asarray(compiled(data, t)).reshape(shape)

    return rhs


def _check_numba_operands(name: str, expr: sympy.Expr, conditions: Mapping[str, Any]) -> None:
    for call in operator_calls(expr):
        argument = call.args[0]
        if not (argument.is_Symbol and argument.name in conditions):
            raise OptionsError(
                f"backend 'numba': {sympy.sstr(call)} in equations.{name} applies an operator to an "
                "expression; use backend='numpy'"
            )
        if conditions[argument.name] != conditions[name]:
            raise OptionsError(
                f"backend 'numba': {sympy.sstr(call)} in equations.{name} needs the boundary "
                f"conditions of {argument.name!r}, but py-pde would use those of {name!r}; "
                "use backend='numpy'"
            )
