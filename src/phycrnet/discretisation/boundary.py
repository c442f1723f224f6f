"""Boundary conditions as finite differences: residuals (soft) and ghost nodes (hard).

Every non-periodic side of a field carries ``a*u + b*du/dn = g(x, y, t)`` with ``n`` the
outward normal (Dirichlet: a=1, b=0; Neumann: a=0, b=1; Robin: both).

* **Soft constraint** (the paper's method): :func:`boundary_residuals` returns
  ``a*u + b*du/dn - g`` at the boundary nodes of each side, with ``du/dn`` from a one-sided
  stencil; a loss term per field and side drives these to zero.
* **Hard constraint**: :class:`GhostPadding` adds ghost nodes outside a side whose values
  make the condition hold exactly. The ghosts are the values at the ghost positions of the
  polynomial that interpolates the boundary node and the first interior nodes and satisfies
  the condition; its degree (``accuracy + 1``) keeps second derivatives at the boundary node
  at the operators' accuracy. On Dirichlet sides the caller also overwrites the boundary
  nodes with ``g`` (:func:`apply_dirichlet`).

Tensors: fields ``(T, ny, nx)`` or ``(T, C, ny, nx)``; boundary data ``(T, n_along)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

import numpy as np
import torch

from phycrnet.discretisation.operators import Derivatives
from phycrnet.spec.grid import SIDE_AXIS, SIDES, Grid
from phycrnet.spec.problem import BoundaryCondition, Problem

#: Sides at the low end of their axis.
LOW_SIDES = ("left", "bottom")


def boundary_data(
    condition: BoundaryCondition,
    grid: Grid,
    side: str,
    times: torch.Tensor,
    parameters: Mapping[str, Any],
) -> torch.Tensor:
    """The condition's right-hand side ``g`` at the nodes of ``side``, shape ``(T, n_along)``."""
    x, y = grid.side_coordinates(side)
    like = times
    xs = torch.as_tensor(x, dtype=like.dtype, device=like.device).unsqueeze(0)
    ys = torch.as_tensor(y, dtype=like.dtype, device=like.device).unsqueeze(0)
    value = condition.evaluate_value(xs, ys, times.view(-1, 1), parameters)
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    return value.expand(times.shape[0], xs.shape[1]).to(dtype=like.dtype)


def side_values(u: torch.Tensor, side: str) -> torch.Tensor:
    """Values at the boundary nodes of ``side``: ``(..., ny, nx) -> (..., n_along)``."""
    if side == "left":
        return u[..., :, 0]
    if side == "right":
        return u[..., :, -1]
    if side == "bottom":
        return u[..., 0, :]
    return u[..., -1, :]


def boundary_residual(
    u: torch.Tensor,
    condition: BoundaryCondition,
    side: str,
    g: torch.Tensor,
    derivatives: Derivatives,
    accuracy: int | None = None,
) -> torch.Tensor:
    """``a*u + b*du/dn - g`` at the boundary nodes of ``side``; ``u`` is ``(T, ny, nx)``."""
    residual = -g
    if condition.a:
        residual = residual + condition.a * side_values(u, side)
    if condition.b:
        residual = residual + condition.b * derivatives.normal_derivative(u, side, accuracy)
    return residual


def apply_dirichlet(u: torch.Tensor, side: str, g: torch.Tensor) -> torch.Tensor:
    """``u`` ``(T, ny, nx)`` with the boundary nodes of ``side`` replaced by ``g`` (T, n_along)."""
    mask = torch.zeros(u.shape[-2:], dtype=torch.bool, device=u.device)
    if side == "left":
        mask[:, 0] = True
        full = g.unsqueeze(-1).expand_as(u)
    elif side == "right":
        mask[:, -1] = True
        full = g.unsqueeze(-1).expand_as(u)
    elif side == "bottom":
        mask[0, :] = True
        full = g.unsqueeze(-2).expand_as(u)
    else:
        mask[-1, :] = True
        full = g.unsqueeze(-2).expand_as(u)
    return torch.where(mask, full, u)


@cache
def ghost_weights(a: float, b_over_h: float, accuracy: int, n_ghost: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the ghost nodes outside one side.

    In the inward coordinate xi (unit spacing, boundary node at 0, ghosts at -1, -2, ...),
    the polynomial p of degree ``q = accuracy + 1`` interpolates the nodes and satisfies
    ``a*p(0) - (b/h)*p'(0) = g`` (the outward derivative is ``-p'/h``). For Dirichlet
    (``b = 0``) the condition is dropped and p interpolates nodes ``0..q`` (the boundary node
    already holds g).

    Returns ``(W, w_g)``: ghost ``j`` (at xi = -(j+1)) is ``W[j] @ u[0:m] + w_g[j] * g``;
    ``W`` has shape ``(n_ghost, m)``.
    """
    q = accuracy + 1
    if b_over_h == 0.0:
        nodes = np.arange(q + 1, dtype=np.float64)
        vandermonde = nodes[:, None] ** np.arange(q + 1)[None, :]
        system = vandermonde
        m = q + 1
    else:
        nodes = np.arange(q, dtype=np.float64)
        rows = nodes[:, None] ** np.arange(q + 1)[None, :]
        condition = np.zeros(q + 1)
        condition[0] = a
        condition[1] = -b_over_h
        system = np.vstack([rows, condition])
        m = q
    inverse = np.linalg.inv(system)
    ghosts = -np.arange(1, n_ghost + 1, dtype=np.float64)
    evaluation = ghosts[:, None] ** np.arange(q + 1)[None, :]
    weights = evaluation @ inverse
    if b_over_h == 0.0:
        return weights, np.zeros(n_ghost)
    return weights[:, :m], weights[:, m]


class GhostPadding:
    """Pads one field along one axis with ghost nodes that carry its boundary conditions.

    Args:
        conditions: the field's conditions by side (no entry on periodic sides).
        grid: the grid.
        accuracy: accuracy of the derivative operators the padding feeds.
        n_ghost: ghost nodes per side (the operators' halo).
    """

    def __init__(self, conditions: Mapping[str, BoundaryCondition], grid: Grid, accuracy: int, n_ghost: int) -> None:
        self.conditions = dict(conditions)
        self.grid = grid
        self.n_ghost = n_ghost
        self.weights = {
            side: ghost_weights(c.a, c.b / grid.axis(SIDE_AXIS[side]).spacing, accuracy, n_ghost)
            for side, c in self.conditions.items()
        }

    def pad(self, u: torch.Tensor, axis: int, data: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """``u`` ``(T, ny, nx)`` padded along ``axis`` (0 = x, 1 = y) on both sides.

        ``data`` maps each side to its ``g`` of shape ``(T, n_along)``.
        """
        low, high = ("left", "right") if axis == 0 else ("bottom", "top")
        dim = -1 if axis == 0 else -2
        pieces = [self._ghosts(u, low, axis, data[low]).flip(dim), u, self._ghosts(u, high, axis, data[high])]
        return torch.cat(pieces, dim=dim)

    def _ghosts(self, u: torch.Tensor, side: str, axis: int, g: torch.Tensor) -> torch.Tensor:
        """Ghost nodes of ``side``, ordered outward, as a slab along the axis' dimension."""
        dim = -1 if axis == 0 else -2
        weights, weights_g = self.weights[side]
        m = weights.shape[1]
        n = u.shape[dim]
        nodes = u.narrow(u.dim() + dim, 0, m) if side in LOW_SIDES else u.narrow(u.dim() + dim, n - m, m).flip(dim)
        w = torch.as_tensor(weights, dtype=u.dtype, device=u.device)
        wg = torch.as_tensor(weights_g, dtype=u.dtype, device=u.device)
        ghosts = torch.matmul(nodes.movedim(dim, -1), w.T)  # (..., n_along, n_ghost)
        ghosts = ghosts + g.unsqueeze(-1) * wg
        return ghosts.movedim(-1, dim)


def field_sides(problem: Problem, field: str) -> dict[str, BoundaryCondition]:
    """The non-periodic conditions of ``field`` by side, in the order of :data:`SIDES`."""
    conditions = problem.boundary.get(field, {})
    return {side: conditions[side] for side in SIDES if side in conditions}
