"""Refined grids of the reference solvers and the initial state on them.

A reference level is ``r`` times finer than the spec grid (:mod:`phycrnet.spec.grid`):

* periodic axis with ``N`` points ``x_i = x0 + i*L/N``: ``M = r*N`` cells on the domain shifted
  by half a cell, ``[x0 - L/(2M), x1 - L/(2M)]``, so that cell centre ``i*r`` lies exactly on
  spec point ``i`` (the cell centres are the fine periodic lattice ``x0 + j*L/M``);
* non-periodic axis with ``N`` nodes from ``x0`` to ``x1``: ``M = r*(N-1)`` cells on
  ``[x0, x1]``; spec node ``i`` lies on cell face ``i*r``.

Arrays on a refined grid use py-pde's layout, axis 0 = x and axis 1 = y, i.e. shape
``(Mx, My)``: the transpose of the spec's ``(ny, nx)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from phycrnet.spec.expressions import evaluate, parse_expression
from phycrnet.spec.grid import Axis, Grid
from phycrnet.spec.schema import FileInitialModel, RandomInitialModel

if TYPE_CHECKING:
    import pde

    from phycrnet.spec.problem import Problem

__all__ = ["RefinedAxis", "fourier_upsample", "initial_state", "refined_axes", "refined_grid"]


@dataclass(frozen=True)
class RefinedAxis:
    """One axis of the refined, cell-centred grid.

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
        [a.bounds for a in axes], [a.cells for a in axes], periodic=list(grid.periodic)
    )


def initial_state(problem: Problem, axes: tuple[RefinedAxis, RefinedAxis]) -> np.ndarray:
    """Initial values on the refined cell centres, shape ``(n_fields, Mx, My)``.

    Expression initial values are evaluated on the cell centres. Values given only on the spec
    grid (files, random fields) are interpolated: Fourier interpolation on periodic axes,
    not-a-knot cubic splines through the nodes on the others.
    """
    return np.stack([_initial_field(problem, name, axes) for name in problem.fields])


def _initial_field(problem: Problem, name: str, axes: tuple[RefinedAxis, RefinedAxis]) -> np.ndarray:
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
        return fourier_upsample(values, axis.refinement, axis_index)
    from scipy.interpolate import CubicSpline

    spline = CubicSpline(axis.axis.points, values, axis=axis_index, bc_type="not-a-knot")
    return spline(axis.centres)


def fourier_upsample(values: np.ndarray, factor: int, axis_index: int) -> np.ndarray:
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
