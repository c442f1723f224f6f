"""Sampling refined py-pde states back onto the spec's nodes.

* periodic axis: cell centre ``i*r`` lies on spec point ``i`` (:mod:`phycrnet.reference.grid`),
  so sampling is a plain copy;
* non-periodic axis: spec node ``i`` lies on cell face ``i*r``. Interior nodes are sampled
  with 4-point cubic (Lagrange) interpolation across the face, boundary nodes by the cubic
  through the three cells next to the wall that satisfies the boundary condition exactly
  (``a*u + b*du/dn = value`` at the wall). Both are 4th-order accurate, well below the
  2nd-order error of the finite-volume scheme. Where two non-periodic axes meet, the
  bottom/top condition decides the corner node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from phycrnet.errors import PhycrnetError
from phycrnet.reference.grid import RefinedAxis

if TYPE_CHECKING:
    from phycrnet.spec.problem import BoundaryCondition, Problem

__all__ = ["Sampler"]


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


class Sampler:
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
