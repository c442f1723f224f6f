"""Classical reference solver: py-pde finite volumes on a refined grid, with self-convergence.

The problem is discretised with py-pde's cell-centred :class:`pde.CartesianGrid` on a grid
``refinement`` times finer than the spec grid, its boundary conditions are py-pde boundary
conditions (ghost cells), and the method of lines is integrated in time with an adaptive
Dormand-Prince 5(4) scheme whose tolerance is far below the spatial error. The solution is
sampled back onto the spec grid at the frame times ``problem.times``.

Grid mapping (spec convention, see :mod:`phycrnet.grid`):

* periodic axis with ``N`` points ``x_i = x0 + i*L/N``: ``M = r*N`` cells on the domain shifted
  by half a cell, ``[x0 - L/(2M), x1 - L/(2M)]``, so that cell centre ``i*r`` lies exactly on
  spec point ``i`` (sampling is a plain copy);
* non-periodic axis with ``N`` nodes from ``x0`` to ``x1``: ``M = r*(N-1)`` cells on
  ``[x0, x1]``; spec node ``i`` lies on cell face ``i*r``. Interior nodes are sampled with
  4-point cubic (Lagrange) interpolation across the face, boundary nodes by the cubic through
  the three cells next to the wall that satisfies the boundary condition exactly
  (``a*u + b*du/dn = value`` at the wall). Both are 4th-order accurate, well below the
  2nd-order error of the scheme. Where two non-periodic axes meet, the bottom/top condition
  decides the corner node.

Discretisation (identical to py-pde's numba operators, checked in the tests): 5-point
Laplacian, central first and second differences, ghost cells from py-pde's boundary classes
(Dirichlet ``u_g = 2*g - u_1``, Neumann ``u_g = u_1 + h*g``, Robin via py-pde's ``mixed``
condition ``du/dn + gamma*u = beta`` with ``gamma = a/b`` and ``beta = value/b``). All of it
is 2nd-order accurate, which makes Richardson extrapolation ``(4*u_2r - u_r)/3`` meaningful.

Two backends evaluate the right-hand side:

``"numpy"`` (default)
    py-pde grid and boundary objects set the ghost cells, numpy applies the stencils and
    evaluates the equation (:func:`phycrnet.expressions.evaluate`). No compilation; a spatial
    operator acts on the ghost-padded values of its argument, so ``laplace(u**3)`` or
    ``d_dx(v)`` in the equation for ``u`` use the boundary conditions of the fields they
    contain.
``"numba"``
    ``pde.PDE(..., bc_ops={"<field>:*": ...})`` compiled by py-pde with numba. Faster per
    step, but every new grid costs 10-40 s of compilation on a small machine (reported as
    ``jit_seconds``). py-pde chooses boundary conditions per *equation*, not per operand, so
    this backend only accepts operators applied to a bare field whose conditions equal those
    of the equation's field.

Time integration runs without BLAS calls (multithreaded BLAS in ``scipy.integrate`` slowed the
integration down 10-20 times on a loaded 2-core machine).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import sympy

from phycrnet.errors import OptionsError, PhycrnetError
from phycrnet.spec.expressions import OPERATORS, evaluate, operator_calls, parse_expression, substitute, to_pypde
from phycrnet.spec.grid import Axis, Grid

if TYPE_CHECKING:
    import pde
    import xarray as xr

    from phycrnet.spec.problem import BoundaryCondition, Problem

__all__ = [
    "SOLVER_NAME",
    "IntegrationStats",
    "LevelSolution",
    "NumpyRightHandSide",
    "RefinedAxis",
    "apply_stencil",
    "initial_state",
    "integrate",
    "numba_right_hand_side",
    "pypde_boundary_conditions",
    "refined_axes",
    "refined_grid",
    "relative_l2",
    "simulate",
    "solve_reference",
]

#: Value of the ``solver`` attribute of the returned dataset.
SOLVER_NAME = "py-pde reference"
#: First refinement of the automatic search (cells per spec grid spacing).
AUTO_START_REFINEMENT = 2
#: A further level starts only if its predicted cost is below this share of the time left
#: (predictions are good to about 20 % on an idle machine, worse on a busy one).
_SAFETY = 0.8

Backend = Literal["numpy", "numba"]
#: A right-hand side ``f(t, state) -> d state/dt`` on arrays of shape ``(n_fields, Mx, My)``.
RightHandSide = Callable[[float, np.ndarray], np.ndarray]

_PYPDE_SIDES = {"left": "x-", "right": "x+", "bottom": "y-", "top": "y+"}


# =========================================================================== geometry


@dataclass(frozen=True)
class RefinedAxis:
    """One axis of the refined, cell-centred py-pde grid.

    Attributes:
        axis: the spec axis.
        refinement: cells per spec grid spacing, ``r >= 1``.
    """

    axis: Axis
    refinement: int

    @property
    def cells(self) -> int:
        """Number of cells ``M``: ``r*N`` on a periodic axis, ``r*(N-1)`` otherwise."""
        n = self.axis.n if self.axis.periodic else self.axis.n - 1
        return self.refinement * n

    @property
    def spacing(self) -> float:
        """Cell width ``h = L/M`` (domain units)."""
        return self.axis.length / self.cells

    @property
    def bounds(self) -> tuple[float, float]:
        """Domain of the py-pde axis; shifted by half a cell on a periodic axis."""
        shift = 0.5 * self.spacing if self.axis.periodic else 0.0
        return (self.axis.start - shift, self.axis.end - shift)

    @property
    def centres(self) -> np.ndarray:
        """Cell centres, shape ``(M,)``."""
        return self.bounds[0] + self.spacing * (np.arange(self.cells) + 0.5)

    @property
    def padded_centres(self) -> np.ndarray:
        """Cell centres including one ghost cell on each side, shape ``(M + 2,)``."""
        return self.bounds[0] + self.spacing * (np.arange(-1, self.cells + 1) + 0.5)


def refined_axes(grid: Grid, refinement: int) -> tuple[RefinedAxis, RefinedAxis]:
    """The refined ``(x, y)`` axes for a spec grid."""
    return (RefinedAxis(grid.x, refinement), RefinedAxis(grid.y, refinement))


def refined_grid(grid: Grid, refinement: int) -> pde.CartesianGrid:
    """The py-pde grid ``refinement`` times finer than ``grid`` (see the module docstring).

    py-pde stores data with axis 0 = x and axis 1 = y, i.e. arrays of shape ``(Mx, My)``,
    the transpose of the spec's ``(ny, nx)`` layout.
    """
    import pde

    axes = refined_axes(grid, refinement)
    return pde.CartesianGrid(
        [list(a.bounds) for a in axes], [a.cells for a in axes], periodic=list(grid.periodic)
    )


# =========================================================================== boundary conditions


def pypde_boundary_conditions(problem: Problem, field_name: str, refinement: int | None = None) -> dict[str, Any]:
    """The boundary conditions of one field in py-pde's dictionary format.

    Parameters are substituted by their values. Constant conditions become py-pde's
    ``value``, ``derivative`` and ``mixed`` conditions; conditions that depend on ``x``,
    ``y`` or ``t`` become py-pde expression conditions (``value_expression``, ...), given as
    expression text, or, when ``refinement`` is given, as numpy functions
    ``(adjacent, dx, x, y, t)`` bound to the walls of that refined grid (py-pde then skips its
    ``sympy.simplify`` of the text, ~0.7 s per side, and the coordinate-only parts are
    precomputed; the ghost cells follow the same py-pde formulas). py-pde's ``derivative``
    is the outward normal derivative, like the spec's ``du/dn``.
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
        self.expr = _freeze_static(expr, self.environment)
        self.shape = np.shape(wall["x"])

    def __call__(self, adjacent: Any, dx: float, x: Any, y: Any, t: float) -> np.ndarray:
        if np.shape(x) != self.shape:
            raise PhycrnetError("reference solver: boundary function called on unexpected wall points")
        values = evaluate(self.expr, {**self.environment, "t": t})
        return np.broadcast_to(np.asarray(values, dtype=np.float64), self.shape)


# =========================================================================== initial state


def initial_state(problem: Problem, axes: tuple[RefinedAxis, RefinedAxis]) -> np.ndarray:
    """Initial values on the refined cell centres, shape ``(n_fields, Mx, My)``.

    Expression initial values are evaluated on the cell centres. Values given only on the spec
    grid (files, random fields) are interpolated: Fourier interpolation on periodic axes,
    not-a-knot cubic splines through the nodes on the others.
    """
    return np.stack([_initial_field(problem, name, axes) for name in problem.fields])


def _initial_field(problem: Problem, name: str, axes: tuple[RefinedAxis, RefinedAxis]) -> np.ndarray:
    from phycrnet.spec.schema import FileInitialModel, RandomInitialModel

    raw = problem.model.initial[name]
    if isinstance(raw, (FileInitialModel, RandomInitialModel)):
        values = problem.initial[name].T  # (nx, ny), py-pde layout
        for axis_index, axis in enumerate(axes):
            values = _upsample(values, axis, axis_index)
        return values
    names = set(problem.parameters) | {"x", "y", "t"}
    expr = parse_expression(raw, where=f"initial.{name}", names=names, allow_operators=False)
    x, y = np.meshgrid(axes[0].centres, axes[1].centres, indexing="ij")
    with np.errstate(all="ignore"):
        values = evaluate(expr, {"x": x, "y": y, "t": 0.0, **problem.parameter_values()})
    return np.broadcast_to(np.asarray(values, dtype=np.float64), x.shape).copy()


def _upsample(values: np.ndarray, axis: RefinedAxis, axis_index: int) -> np.ndarray:
    """Interpolate node values along one array axis onto the refined cell centres."""
    if axis.axis.periodic:
        return _fourier_upsample(values, axis.refinement, axis_index)
    from scipy.interpolate import CubicSpline

    spline = CubicSpline(axis.axis.points, values, axis=axis_index, bc_type="not-a-knot")
    return spline(axis.centres)


def _fourier_upsample(values: np.ndarray, factor: int, axis_index: int) -> np.ndarray:
    """Band-limited interpolation of ``N`` periodic samples onto ``factor*N`` points.

    The new points include the old ones (every ``factor``-th); the Nyquist mode of an even
    ``N`` is split symmetrically so that the interpolant is real.
    """
    n = values.shape[axis_index]
    spectrum = np.fft.rfft(values, axis=axis_index)
    if n % 2 == 0:
        nyquist = [slice(None)] * values.ndim
        nyquist[axis_index] = n // 2
        spectrum[tuple(nyquist)] *= 0.5
    return np.fft.irfft(spectrum, n=factor * n, axis=axis_index) * factor


# =========================================================================== right-hand sides


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
        self.equations = [_freeze_static(expr, self.coordinates) for expr in equations]

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
            boundaries.set_ghost_cells(self.padded[i], set_corners=self.set_corners, args=args)

    def _operator(self, name: str, argument: sympy.Expr, t: float) -> np.ndarray:
        if argument.is_Symbol and argument.name in self.fields:
            padded = self.padded[self.fields.index(argument.name)]
        else:
            env = {f: self.padded[i] for i, f in enumerate(self.fields)}
            padded = evaluate(argument, {**env, **self.padded_coordinates, "t": t})
        return apply_stencil(name, padded, self.spacing)


def _freeze_static(expr: sympy.Expr, coordinates: dict[str, Any]) -> sympy.Expr:
    """Replace the parts of ``expr`` that depend on ``x`` and ``y`` only by precomputed arrays.

    Each such part becomes a symbol ``<static i>`` whose values are added to ``coordinates``
    (the cell-centre environment), so that source terms are not recomputed at every step.
    Coordinate-only factors of a product and terms of a sum are merged first. Operator
    arguments (evaluated on ghost-padded arrays) are left alone.
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
            dynamic = [_freeze_static(a, coordinates) for a in expr.args if a not in static]
            return expr.func(_freeze_static(expr.func(*static), coordinates), *dynamic)
    if not expr.args:
        return expr
    return expr.func(*[_freeze_static(a, coordinates) for a in expr.args])


def _is_static(expr: sympy.Expr) -> bool:
    names = {s.name for s in expr.free_symbols}
    return bool(names) and names <= {"x", "y"}


def _is_operator(expr: sympy.Expr) -> bool:
    return isinstance(expr, sympy.Function) and type(expr).__name__ in OPERATORS


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
    compiled = eq.make_pde_rhs(state, backend="numba")
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


# =========================================================================== time integration

# Dormand-Prince 5(4) tableau (Hairer, Norsett & Wanner, "Solving ODEs I", table 5.2).
_DP_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0)
_DP_A = (
    (),
    (1 / 5,),
    (3 / 40, 9 / 40),
    (44 / 45, -56 / 15, 32 / 9),
    (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
    (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
)
_DP_B = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)
#: 5th- minus 4th-order weights; the last entry multiplies f(t + dt, y_new) (FSAL).
_DP_E = (71 / 57600, 0.0, -71 / 16695, 71 / 1920, -17253 / 339200, 22 / 525, -1 / 40)


@dataclass
class IntegrationStats:
    """Work done by :func:`integrate`."""

    steps: int = 0
    rejected: int = 0
    evaluations: int = 0


class _OutOfTime(Exception):
    """An optional refinement level ran past its deadline."""


def integrate(
    rhs: RightHandSide,
    state: np.ndarray,
    times: np.ndarray,
    on_frame: Callable[[int, float, np.ndarray], None],
    *,
    rtol: float,
    atol: np.ndarray | float,
    deadline: float | None = None,
    progress: Any = None,
) -> IntegrationStats:
    """Integrate ``d state/dt = rhs(t, state)`` with adaptive Dormand-Prince 5(4) steps.

    Steps land exactly on every frame time, where ``on_frame(k, t_k, state)`` is called
    (also for ``k = 0``). The local error is kept below ``atol + rtol*|state|`` in the RMS
    norm, with Hairer's PI step-size control. ``deadline`` is a ``time.perf_counter()``
    value after which :class:`_OutOfTime` is raised; ``progress`` is updated once per frame.

    Raises:
        PhycrnetError: the solution became NaN or infinite, or the step size underflowed.
    """
    stepper = _Stepper(rhs, rtol, atol, deadline)
    y = np.array(state, dtype=np.float64)
    t = float(times[0])
    on_frame(0, t, y)
    derivative = stepper.evaluate(t, y)
    _require_finite(derivative, t)
    dt = _initial_step(stepper.evaluate, t, y, derivative, rtol, atol, float(times[-1] - times[0]))
    for k in range(1, len(times)):
        t, y, derivative, dt = stepper.advance(t, y, derivative, dt, float(times[k]))
        on_frame(k, t, y)
        if progress is not None:
            progress.update(1)
    return stepper.stats


class _Stepper:
    """Adaptive Dormand-Prince stepping of one right-hand side (see :func:`integrate`)."""

    def __init__(self, rhs: RightHandSide, rtol: float, atol: np.ndarray | float, deadline: float | None) -> None:
        self.rhs = rhs
        self.rtol = rtol
        self.atol = atol
        self.deadline = deadline
        self.controller = _StepController()
        self.stats = IntegrationStats()

    def evaluate(self, t: float, y: np.ndarray) -> np.ndarray:
        self.stats.evaluations += 1
        return self.rhs(t, y)

    def advance(
        self, t: float, y: np.ndarray, derivative: np.ndarray, dt: float, t_target: float
    ) -> tuple[float, np.ndarray, np.ndarray, float]:
        """Step from ``t`` exactly to ``t_target``; returns ``(t, y, f(t, y), next dt)``.

        The last step before the target lands on it; a remainder between one and two steps
        is split in halves instead of leaving a sliver.
        """
        while t < t_target:
            if self.deadline is not None and time.perf_counter() > self.deadline:
                raise _OutOfTime
            remaining = t_target - t
            landing = dt >= remaining * (1 - 1e-12)
            step = remaining if landing else (0.5 * remaining if dt > 0.5 * remaining else dt)
            y_new, f_new, error = _dormand_prince_step(self.evaluate, t, y, derivative, step)
            norm = self._error_norm(error, y, y_new)
            proposal = self._next_step(t, t_target, step, norm)
            if not norm <= 1.0:  # rejected (NaN included)
                self.stats.rejected += 1
                dt = proposal
                continue
            self.stats.steps += 1
            t = t_target if landing else t + step
            y, derivative = y_new, f_new
            dt = max(proposal, dt) if step < dt else proposal
        return t, y, derivative, dt

    def _error_norm(self, error: np.ndarray, y: np.ndarray, y_new: np.ndarray) -> float:
        scale = np.maximum(np.abs(y), np.abs(y_new))
        scale *= self.rtol
        scale += self.atol
        error /= scale
        return float(np.sqrt(np.mean(np.square(error))))

    def _next_step(self, t: float, t_target: float, step: float, norm: float) -> float:
        smallest = 1e-12 * max(1.0, abs(t_target))
        if not math.isfinite(norm):
            if 0.1 * step < smallest:
                raise PhycrnetError(f"py-pde reference solution became NaN or infinite at t={t:.6g}")
            return 0.1 * step
        proposal = self.controller.propose(step, norm)
        if norm > 1.0 and proposal < smallest:
            raise PhycrnetError(
                f"py-pde reference: time step underflow at t={t:.6g} (the solution blows up or is too stiff)"
            )
        return proposal


def _dormand_prince_step(
    f: RightHandSide, t: float, y: np.ndarray, f0: np.ndarray, dt: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Dormand-Prince step: ``(y_new, f(t + dt, y_new), error estimate)``."""
    stages = [f0]
    for c, row in zip(_DP_C[1:], _DP_A[1:]):
        stages.append(f(t + c * dt, _combine(y, dt, row, stages)))
    y_new = _combine(y, dt, _DP_B, stages)
    f_new = f(t + dt, y_new)
    error = _combine(None, dt, _DP_E, [*stages, f_new])
    return y_new, f_new, error


def _combine(base: np.ndarray | None, dt: float, weights: Sequence[float], stages: Sequence[np.ndarray]) -> np.ndarray:
    """``base + dt * sum(w_i * k_i)`` with a single scratch array (no large temporaries)."""
    result = np.zeros_like(stages[0]) if base is None else base.copy()
    scratch = np.empty_like(stages[0])
    for weight, stage in zip(weights, stages):
        if weight != 0.0:
            np.multiply(stage, dt * weight, out=scratch)
            result += scratch
    return result


class _StepController:
    """Hairer's PI step-size controller for a 5th-order pair (beta = 0.04, safety 0.9)."""

    beta = 0.04
    safety = 0.9
    max_growth = 5.0
    max_shrink = 10.0

    def __init__(self) -> None:
        self.previous_error = 1e-4

    def propose(self, dt: float, error: float) -> float:
        """The next step after a step of ``dt`` with normalised error ``error``."""
        factor = max(error, 1e-10) ** (0.2 - 0.75 * self.beta)
        if error <= 1.0:
            factor /= self.previous_error**self.beta
            self.previous_error = max(error, 1e-4)
            factor = min(self.max_shrink, max(1.0 / self.max_growth, factor / self.safety))
            return dt / factor
        return dt / min(self.max_shrink, factor / self.safety)


def _initial_step(
    f: RightHandSide, t: float, y: np.ndarray, f0: np.ndarray, rtol: float, atol: np.ndarray | float, span: float
) -> float:
    """Hairer's starting step estimate, at most a tenth of the time span."""
    scale = atol + rtol * np.abs(y)
    d0 = float(np.sqrt(np.mean(np.square(y / scale))))
    d1 = float(np.sqrt(np.mean(np.square(f0 / scale))))
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    h0 = min(h0, 0.1 * span)
    f1 = f(t + h0, y + h0 * f0)
    d2 = float(np.sqrt(np.mean(np.square((f1 - f0) / scale)))) / h0
    h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** 0.2
    return min(100 * h0, h1, 0.1 * span)


def _require_finite(values: np.ndarray, t: float) -> None:
    if not np.all(np.isfinite(values)):
        raise PhycrnetError(f"py-pde reference solution became NaN or infinite at t={t:.6g}")


# =========================================================================== sampling


@dataclass(frozen=True)
class _AxisSampler:
    """Linear map from ``M`` cell values to the ``N`` spec nodes along one axis.

    ``node[i] = sum_k weight[i, k] * cells[index[i, k]] + boundary_weight[j] * value_j`` where
    the boundary terms (``j = 0`` at node 0, ``j = 1`` at node ``N - 1``) carry the boundary
    condition's right-hand side on non-periodic axes.
    """

    index: np.ndarray
    weight: np.ndarray
    boundary_weight: tuple[float, float]

    def apply(self, cells: np.ndarray, low: Any = 0.0, high: Any = 0.0) -> np.ndarray:
        """Sample along the last axis of ``cells``: ``(..., M) -> (..., N)``."""
        nodes = np.einsum("...ik,ik->...i", cells[..., self.index], self.weight)
        nodes[..., 0] += self.boundary_weight[0] * np.asarray(low)
        nodes[..., -1] += self.boundary_weight[1] * np.asarray(high)
        return nodes


def _periodic_sampler(axis: RefinedAxis) -> _AxisSampler:
    index = np.zeros((axis.axis.n, 4), dtype=np.intp)
    index[:, 0] = axis.refinement * np.arange(axis.axis.n)
    weight = np.zeros((axis.axis.n, 4))
    weight[:, 0] = 1.0
    return _AxisSampler(index, weight, (0.0, 0.0))


def _face_sampler(axis: RefinedAxis, low: BoundaryCondition, high: BoundaryCondition) -> _AxisSampler:
    """Sampler onto the cell faces ``i*r`` of a non-periodic axis (module docstring)."""
    n, cells, r = axis.axis.n, axis.cells, axis.refinement
    index = np.zeros((n, 4), dtype=np.intp)
    weight = np.zeros((n, 4))
    for i in range(1, n - 1):
        first = min(max(i * r - 2, 0), cells - 4)
        stencil = np.arange(first, first + 4)
        index[i] = stencil
        weight[i] = _lagrange_weights(stencil + 0.5, float(i * r))
    cell_weights, low_weight = _wall_weights(low, axis.spacing)
    index[0, :3] = [0, 1, 2]
    weight[0, :3] = cell_weights
    cell_weights, high_weight = _wall_weights(high, axis.spacing)
    index[-1, :3] = [cells - 1, cells - 2, cells - 3]
    weight[-1, :3] = cell_weights
    return _AxisSampler(index, weight, (low_weight, high_weight))


def _lagrange_weights(nodes: np.ndarray, target: float) -> np.ndarray:
    """Weights of the polynomial through ``nodes`` evaluated at ``target``."""
    weights = np.ones(len(nodes))
    for j, node in enumerate(nodes):
        for m, other in enumerate(nodes):
            if m != j:
                weights[j] *= (target - other) / (node - other)
    return weights


def _wall_weights(condition: BoundaryCondition, spacing: float) -> tuple[np.ndarray, float]:
    """Wall value of the cubic through the 3 cells next to a wall that meets the condition.

    With ``s`` the inward distance in cell widths (cells at ``s = 0.5, 1.5, 2.5``), the cubic
    ``p(s) = c0 + c1*s + c2*s**2 + c3*s**3`` satisfies ``a*p(0) - (b/h)*p'(0) = value`` (the
    outward derivative is ``-dp/ds / h``). Returns the weights of the three cells (nearest
    first) and of ``value`` in ``c0``.
    """
    s = np.array([0.5, 1.5, 2.5])
    matrix = np.zeros((4, 4))
    matrix[:3] = s[:, None] ** np.arange(4)
    matrix[3, :2] = [condition.a, -condition.b / spacing]
    try:
        weights = np.linalg.solve(matrix.T, np.eye(4)[0])
    except np.linalg.LinAlgError:
        raise PhycrnetError("reference solver: cannot sample a robin boundary with this a/b ratio") from None
    return weights[:3], float(weights[3])


class _Sampler:
    """Samples refined states ``(n_fields, Mx, My)`` onto the spec grid ``(n_fields, ny, nx)``."""

    def __init__(self, problem: Problem, axes: tuple[RefinedAxis, RefinedAxis]) -> None:
        self.problem = problem
        self.axes = axes
        self.parameters = problem.parameter_values()
        self.samplers = [self._field_samplers(name) for name in problem.fields]

    def _field_samplers(self, name: str) -> tuple[_AxisSampler, _AxisSampler]:
        sides = self.problem.boundary[name]
        samplers = []
        for axis, (low, high) in zip(self.axes, (("left", "right"), ("bottom", "top"))):
            if axis.axis.periodic:
                samplers.append(_periodic_sampler(axis))
            else:
                samplers.append(_face_sampler(axis, sides[low], sides[high]))
        return samplers[0], samplers[1]

    def __call__(self, t: float, state: np.ndarray) -> np.ndarray:
        return np.stack([self._sample_field(i, name, t, state[i]) for i, name in enumerate(self.problem.fields)])

    def _sample_field(self, i: int, name: str, t: float, cells: np.ndarray) -> np.ndarray:
        x_sampler, y_sampler = self.samplers[i]
        x_axis, y_axis = self.axes
        sides = self.problem.boundary[name]
        # along x: (My, Mx) -> (My, Nx); walls at the refined y centres
        low, high = self._wall_values(sides, ("left", "right"), x_axis, y_axis.centres, t, along_x=True)
        values = x_sampler.apply(cells.T, low, high)
        # along y: (Nx, My) -> (Nx, Ny); walls at the spec x nodes
        low, high = self._wall_values(sides, ("bottom", "top"), y_axis, x_axis.axis.points, t, along_x=False)
        return y_sampler.apply(values.T, low, high).T

    def _wall_values(
        self,
        sides: Mapping[str, BoundaryCondition],
        names: tuple[str, str],
        axis: RefinedAxis,
        along: np.ndarray,
        t: float,
        *,
        along_x: bool,
    ) -> tuple[Any, Any]:
        """Right-hand sides of the conditions on the two walls of ``axis`` at the points ``along``."""
        if axis.axis.periodic:
            return 0.0, 0.0
        result = []
        for side, position in zip(names, (axis.axis.start, axis.axis.end)):
            coords = (np.full_like(along, position), along) if along_x else (along, np.full_like(along, position))
            value = sides[side].evaluate_value(*coords, t, self.parameters)
            result.append(np.broadcast_to(np.asarray(value, dtype=np.float64), along.shape))
        return result[0], result[1]


# =========================================================================== one refinement level


@dataclass
class LevelSolution:
    """The solution at one refinement, sampled onto the spec grid.

    Attributes:
        refinement: cells per spec grid spacing.
        values: sampled fields, shape ``(n_times, n_fields, ny, nx)``.
        seconds: wall-clock seconds of the whole level (setup, compilation, integration).
        setup_seconds: seconds spent before the first step (numba compilation included).
        stats: time-stepping work.
    """

    refinement: int
    values: np.ndarray
    seconds: float
    setup_seconds: float
    stats: IntegrationStats = field(default_factory=IntegrationStats)


def simulate(
    problem: Problem,
    refinement: int,
    *,
    backend: Backend = "numpy",
    rtol: float = 1e-8,
    progress: bool = False,
    deadline: float | None = None,
) -> LevelSolution:
    """Solve on the grid refined ``refinement`` times and sample at ``problem.times``.

    Args:
        problem: the compiled spec.
        refinement: cells per spec grid spacing (``>= 1``).
        backend: ``"numpy"`` or ``"numba"`` (see the module docstring).
        rtol: relative tolerance of the time stepper; the absolute tolerance is ``rtol``
            times the largest initial magnitude of each field (or of all fields).
        progress: show a progress bar over the frames.
        deadline: ``time.perf_counter()`` value after which the run is abandoned (internal).
    """
    start = time.perf_counter()
    axes = refined_axes(problem.grid, refinement)
    if min(a.cells for a in axes) < 4:
        raise OptionsError(f"refinement {refinement}: the refined grid needs at least 4 cells per axis")
    rhs = _make_rhs(problem, refinement, backend)
    state = initial_state(problem, axes)
    if backend == "numba":
        rhs(0.0, state)  # trigger the compilation now, so it is counted as setup
    sampler = _Sampler(problem, axes)
    frames = np.empty((len(problem.times), len(problem.fields), *problem.grid.shape))

    def on_frame(k: int, t: float, values: np.ndarray) -> None:
        _require_finite(values, t)
        # t = 0 is the spec's initial value itself: sampling it with the boundary conditions
        # would alter boundary nodes where the initial value does not satisfy them.
        frames[k] = problem.initial_values() if k == 0 else sampler(t, values)

    setup = time.perf_counter() - start
    bar = _progress_bar(len(problem.times) - 1, f"py-pde r={refinement}", progress)
    try:
        with np.errstate(all="ignore"):  # NaN and overflow end in a PhycrnetError instead
            stats = integrate(rhs, state, problem.times, on_frame, rtol=rtol, atol=_absolute_tolerance(state, rtol), deadline=deadline, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    return LevelSolution(refinement, frames, time.perf_counter() - start, setup, stats)


def _make_rhs(problem: Problem, refinement: int, backend: str) -> RightHandSide:
    if backend == "numpy":
        return NumpyRightHandSide(problem, refinement)
    if backend == "numba":
        return numba_right_hand_side(problem, refinement)
    raise OptionsError(f"backend: unknown reference backend {backend!r} (use 'numpy' or 'numba')")


def _absolute_tolerance(state: np.ndarray, rtol: float) -> np.ndarray:
    """Per-field absolute tolerance ``rtol * scale``, shape ``(n_fields, 1, 1)``."""
    peaks = np.max(np.abs(state), axis=(1, 2))
    overall = float(np.max(peaks)) if peaks.size and np.max(peaks) > 0 else 1.0
    scales = np.where(peaks > 0, peaks, overall)
    return (rtol * scales)[:, None, None]


def _progress_bar(total: int, description: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="frame", leave=False)


# =========================================================================== self-convergence


def relative_l2(approximation: np.ndarray, reference: np.ndarray) -> float:
    """Largest over fields of ``||a - b|| / ||b||`` over all times and nodes.

    Arrays have shape ``(n_times, n_fields, ny, nx)``; a field that is zero in ``reference``
    is compared in absolute terms.
    """
    axes = (0, 2, 3)
    difference = np.sqrt(np.sum(np.square(approximation - reference), axis=axes))
    size = np.sqrt(np.sum(np.square(reference), axis=axes))
    ratios = np.where(size > 0, difference / np.where(size > 0, size, 1.0), difference)
    return float(np.max(ratios))


def _richardson(coarse: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """Richardson extrapolation of a 2nd-order scheme from spacings ``2h`` and ``h``."""
    return (4.0 * fine - coarse) / 3.0


@dataclass
class _Estimate:
    values: np.ndarray
    self_convergence: float
    estimated_error: float
    description: str
    observed_order: float | None


def _estimate(levels: Sequence[LevelSolution], richardson: bool) -> _Estimate:
    """The returned solution and its error estimate from two or more levels."""
    raw = [level.values for level in levels]
    self_convergence = relative_l2(raw[-2], raw[-1])
    order = None
    if len(raw) >= 3:
        previous = relative_l2(raw[-3], raw[-2])
        if previous > 0 and self_convergence > 0:
            order = math.log2(previous / self_convergence)
    r = [level.refinement for level in levels]
    if not richardson:
        text = f"||u_{r[-1]} - u_{r[-2]}||/3: asymptotic error of the finest raw solution (2nd order)"
        return _Estimate(raw[-1], self_convergence, self_convergence / 3.0, text, order)
    extrapolated = _richardson(raw[-2], raw[-1])
    if len(raw) >= 3:
        previous_extrapolation = _richardson(raw[-3], raw[-2])
        error = relative_l2(previous_extrapolation, extrapolated)
        text = (
            f"||R({r[-2]},{r[-1]}) - R({r[-3]},{r[-2]})||: difference of successive Richardson "
            "extrapolations, an upper estimate for the returned R"
        )
        return _Estimate(extrapolated, self_convergence, error, text, order)
    text = (
        f"||u_{r[-1]} - u_{r[-2]}||/3: error estimate of the finer raw solution, an upper estimate "
        "for the extrapolation in the asymptotic range (no third level was affordable)"
    )
    return _Estimate(extrapolated, self_convergence, self_convergence / 3.0, text, order)


def _predicted_seconds(levels: Sequence[LevelSolution]) -> float:
    """Predicted cost of the next, twice finer level.

    Four times the cells, and as many more steps as the last doubling took (between 1x for
    accuracy-limited and 4x for diffusion-limited explicit stepping; 4x when unknown).
    """
    last = levels[-1]
    growth = 4.0
    if len(levels) >= 2 and levels[-2].stats.steps > 0:
        growth = min(4.0, max(1.0, last.stats.steps / levels[-2].stats.steps))
    return last.setup_seconds + 4.0 * growth * (last.seconds - last.setup_seconds)


# =========================================================================== public entry point


def solve_reference(
    problem: Problem | Any,
    *,
    refinement: int | None = None,
    richardson: bool = True,
    tolerance: float = 1e-4,
    time_limit: float = 60.0,
    progress: bool = False,
    backend: Backend = "numpy",
    rtol: float | None = None,
) -> xr.Dataset:
    """Solve a problem with py-pde on refined grids and return it on the spec grid.

    Args:
        problem: a :class:`~phycrnet.spec.Problem` (or anything :func:`~phycrnet.spec.load_spec`
            accepts).
        refinement: cells per spec grid spacing of the coarsest level. Levels ``r`` and ``2r``
            are always solved; with ``richardson`` a third level ``4r`` is added when it is
            predicted to fit into ``time_limit``. ``None`` (automatic): start at
            ``r = 2`` and keep doubling while the estimated error is at least ``tolerance``
            and the next level is predicted to fit into ``time_limit``.
        richardson: return the Richardson extrapolation ``(4*u_2r - u_r)/3`` of the two finest
            levels instead of the finest raw solution.
        tolerance: target of the estimated relative L2 error (automatic refinement only).
        time_limit: wall-clock seconds the whole call should fit into. The first two levels
            always run; a further level starts only when its predicted cost (from the last
            level: 4x the cells times the last doubling's growth in time steps) is below 80 %
            of what is left, and is abandoned (its work discarded) if it runs past 125 % of
            the limit.
        progress: show progress bars.
        backend: ``"numpy"`` (no compilation) or ``"numba"`` (py-pde ``PDE`` compiled with
            numba); see the module docstring.
        rtol: relative tolerance of the time stepper (default ``min(1e-7, tolerance/1000)``,
            so that the spatial error dominates).

    Returns:
        A solution dataset (:func:`phycrnet.io.solution_dataset`) on the spec grid at
        ``problem.times`` with ``solver = "py-pde reference"`` and attributes
        ``refinement`` (finest level), ``refinements``, ``self_convergence`` (max over fields
        of the relative L2 difference between the two finest raw levels),
        ``estimated_error`` (estimate for the returned solution) with its
        ``error_estimate`` description, ``observed_order`` (three or more levels),
        ``richardson`` (0/1), ``tolerance_met`` (0/1), ``stop_reason``, ``method``,
        ``backend``, ``jit_seconds``, ``level_seconds``, ``time_steps``, ``rtol``,
        ``pypde_version`` and ``numba_version``.

    Raises:
        OptionsError: invalid options.
        PhycrnetError: the solution became NaN or infinite, or the problem uses features the
            reference solver does not support (nested operators).
    """
    from phycrnet.spec.problem import load_spec

    problem = load_spec(problem)
    _validate_options(refinement, tolerance, time_limit, backend)
    run = _Run(
        problem=problem,
        automatic=refinement is None,
        richardson=richardson,
        tolerance=tolerance,
        time_limit=time_limit,
        backend=backend,
        rtol=rtol if rtol is not None else min(1e-7, 1e-3 * tolerance),
        progress=progress,
    )
    first = AUTO_START_REFINEMENT if refinement is None else refinement
    for level in (first, 2 * first):
        run.levels.append(run.simulate(level))
    reason = run.refine()
    return run.dataset(reason)


def _validate_options(refinement: int | None, tolerance: float, time_limit: float, backend: str) -> None:
    if refinement is not None and (isinstance(refinement, bool) or not isinstance(refinement, int) or refinement < 1):
        raise OptionsError(f"refinement: must be a positive integer or None, got {refinement!r}")
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise OptionsError(f"tolerance: must be positive, got {tolerance!r}")
    if not (time_limit > 0):
        raise OptionsError(f"time_limit: must be positive, got {time_limit!r}")
    if backend not in ("numpy", "numba"):
        raise OptionsError(f"backend: unknown reference backend {backend!r} (use 'numpy' or 'numba')")


@dataclass
class _Run:
    """One call of :func:`solve_reference`: its options and the levels solved so far."""

    problem: Problem
    automatic: bool
    richardson: bool
    tolerance: float
    time_limit: float
    backend: Backend
    rtol: float
    progress: bool
    levels: list[LevelSolution] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)

    def simulate(self, refinement: int, deadline: float | None = None) -> LevelSolution:
        return simulate(
            self.problem, refinement, backend=self.backend, rtol=self.rtol, progress=self.progress, deadline=deadline
        )

    def refine(self) -> str:
        """Add finer levels while wanted and affordable; returns why it stopped."""
        while True:
            if self.automatic and _estimate(self.levels, self.richardson).estimated_error < self.tolerance:
                return "tolerance reached"
            if not self.automatic and (not self.richardson or len(self.levels) >= 3):
                return "requested refinement solved"
            level = 2 * self.levels[-1].refinement
            remaining = self.time_limit - (time.perf_counter() - self.start)
            predicted = _predicted_seconds(self.levels)
            if predicted > _SAFETY * remaining:
                return f"time limit: refinement {level} predicted to take {predicted:.3g} s, {max(remaining, 0):.3g} s left"
            deadline = time.perf_counter() + remaining + 0.25 * self.time_limit  # 125 % of the limit
            try:
                self.levels.append(self.simulate(level, deadline))
            except _OutOfTime:
                return f"time limit: refinement {level} abandoned after running past 125 % of the limit"

    def dataset(self, reason: str) -> xr.Dataset:
        """The result on the spec grid, with the attributes listed in :func:`solve_reference`."""
        from phycrnet.io.solution import solution_dataset

        estimate = _estimate(self.levels, self.richardson)
        problem = self.problem
        fields = {name: estimate.values[:, i] for i, name in enumerate(problem.fields)}
        return solution_dataset(
            fields,
            problem.times,
            problem.grid.x.points,
            problem.grid.y.points,
            solver=SOLVER_NAME,
            spec_yaml=problem.to_yaml(),
            periodic=problem.periodic,
            wall_seconds=time.perf_counter() - self.start,
            iterations=sum(level.stats.steps for level in self.levels),
            attrs=self._attributes(estimate, reason),
        )

    def _attributes(self, estimate: _Estimate, reason: str) -> dict[str, Any]:
        levels = self.levels
        return {
            "refinement": levels[-1].refinement,
            "refinements": [level.refinement for level in levels],
            "self_convergence": estimate.self_convergence,
            "estimated_error": estimate.estimated_error,
            "error_estimate": estimate.description,
            "observed_order": estimate.observed_order,
            "richardson": self.richardson,
            "tolerance": self.tolerance,
            "tolerance_met": estimate.estimated_error < self.tolerance,
            "stop_reason": reason,
            "method": _method_text(self.backend, self.richardson),
            "backend": self.backend,
            "rtol": self.rtol,
            "jit_seconds": sum(level.setup_seconds for level in levels) if self.backend == "numba" else 0.0,
            "level_seconds": {str(level.refinement): round(level.seconds, 3) for level in levels},
            "time_steps": {str(level.refinement): level.stats.steps for level in levels},
            **_versions(),
        }


def _method_text(backend: str, richardson: bool) -> str:
    rhs = "numpy stencils with py-pde ghost cells" if backend == "numpy" else "py-pde PDE compiled with numba"
    text = (
        "py-pde CartesianGrid (cell-centred finite volumes, 2nd order; " + rhs + "), "
        "adaptive Dormand-Prince 5(4) in time, cubic sampling onto the spec grid"
    )
    return text + (", Richardson extrapolation of the two finest levels" if richardson else "")


def _versions() -> dict[str, str]:
    import numba
    import pde

    return {"pypde_version": pde.__version__, "numba_version": numba.__version__}
