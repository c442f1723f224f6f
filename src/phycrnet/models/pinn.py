"""The network of the PINN baseline: input embedding, tanh MLP, and derivatives in one pass.

A PINN represents every field as a function of the continuous coordinates ``(x, y, t)``.
This module builds that function and, alongside its value, the derivatives the physics
needs (``u_x, u_y, u_t, u_xx, u_yy``), propagated forward through the layers together
with the value ("jets"): for a layer ``a = s(W h + b)`` the first derivative along a
direction d is ``s'(z) W h_d`` and the second ``s''(z) (W h_d)^2 + s'(z) W h_dd``. One
batched matrix product per layer carries all of them, so the residual costs a single
forward and a single backward pass instead of nested automatic differentiation.

Conventions:

* coordinates are tensors of shape ``(N,)`` in the spec's units; outputs ``(N, C)`` with
  the fields in the order of ``problem.fields``;
* a periodic axis of length L enters only through ``sin``/``cos`` of
  ``2 pi k (x - x0) / L`` for the chosen harmonics k, so the output is exactly periodic;
  a non-periodic axis enters as ``2 (x - x0) / L - 1`` in [-1, 1]; time as
  ``2 t / t_end - 1``;
* derivative names: first ``"x" "y" "t"``, second ``"xx" "yy"``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import sympy
import torch
from scipy.interpolate import CubicSpline
from torch import nn

from phycrnet.options import PinnOptions
from phycrnet.spec.expressions import evaluate, parse_expression
from phycrnet.spec.problem import Problem

#: First- and second-derivative directions a jet may carry.
FIRST = ("x", "y", "t")
SECOND = ("xx", "yy")

ACTIVATIONS = ("tanh", "sin")


@dataclass
class Jet:
    """A function's value and derivatives at N points: every tensor is ``(N, C)``."""

    value: torch.Tensor
    first: dict[str, torch.Tensor] = field(default_factory=dict)
    second: dict[str, torch.Tensor] = field(default_factory=dict)

    def derivative(self, name: str) -> torch.Tensor:
        """The derivative called ``name`` (``"x"``, ..., ``"yy"``)."""
        return self.first[name] if name in self.first else self.second[name]


def normalise_orders(first: Iterable[str], second: Iterable[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Ordered, complete derivative sets: a second derivative needs its first one."""
    second = tuple(d for d in SECOND if d in set(second))
    wanted = set(first) | {d[0] for d in second}
    return tuple(d for d in FIRST if d in wanted), second


# --------------------------------------------------------------------------- embedding


class Embedding(nn.Module):
    """Maps ``(x, y, t)`` to network input features (no trainable weights).

    Args:
        domain: ``((x0, x1), (y0, y1))``.
        periodic: ``(periodic_x, periodic_y)``.
        t_end: end of the time window.
        harmonics: the wave numbers k of the Fourier features on periodic axes.
    """

    harmonics: torch.Tensor

    def __init__(
        self,
        domain: tuple[tuple[float, float], tuple[float, float]],
        periodic: tuple[bool, bool],
        t_end: float,
        harmonics: Sequence[int],
    ) -> None:
        super().__init__()
        self.starts = (float(domain[0][0]), float(domain[1][0]))
        self.lengths = (float(domain[0][1] - domain[0][0]), float(domain[1][1] - domain[1][0]))
        self.periodic = tuple(bool(p) for p in periodic)
        self.t_end = float(t_end)
        self.register_buffer("harmonics", torch.tensor([float(k) for k in harmonics], dtype=torch.float64))

    @property
    def width(self) -> int:
        """Number of features."""
        per_axis = [2 * len(self.harmonics) if p else 1 for p in self.periodic]
        return sum(per_axis) + 1

    def _axis(self, s: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Features of one spatial axis and their first and second derivatives: ``(N, m)`` each."""
        start, length = self.starts[axis], self.lengths[axis]
        if not self.periodic[axis]:
            value = (2.0 / length) * (s - start) - 1.0
            value = value.unsqueeze(-1)
            return value, torch.full_like(value, 2.0 / length), torch.zeros_like(value)
        omega = (2.0 * math.pi / length) * self.harmonics.to(s.dtype)
        phase = (s - start).unsqueeze(-1) * omega
        sin, cos = torch.sin(phase), torch.cos(phase)
        value = torch.cat([sin, cos], dim=-1)
        first = torch.cat([omega * cos, -omega * sin], dim=-1)
        second = -torch.cat([omega**2 * sin, omega**2 * cos], dim=-1)
        return value, first, second

    def forward(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Features ``(N, width)``."""
        fx = self._axis(x, 0)[0]
        fy = self._axis(y, 1)[0]
        ft = ((2.0 / self.t_end) * t - 1.0).unsqueeze(-1)
        return torch.cat([fx, fy, ft], dim=-1)

    def jet(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, first: Sequence[str], second: Sequence[str]) -> torch.Tensor:
        """Features and their derivatives stacked: ``(1 + len(first) + len(second), N, width)``.

        Slot 0 is the value, then the ``first`` directions, then the ``second`` ones.
        """
        fx, fy = self._axis(x, 0), self._axis(y, 1)
        ft = ((2.0 / self.t_end) * t - 1.0).unsqueeze(-1)
        zx, zy, zt = torch.zeros_like(fx[0]), torch.zeros_like(fy[0]), torch.zeros_like(ft)
        slots = [torch.cat([fx[0], fy[0], ft], dim=-1)]
        blocks = {
            "x": (fx[1], zy, zt),
            "y": (zx, fy[1], zt),
            "t": (zx, zy, torch.full_like(ft, 2.0 / self.t_end)),
            "xx": (fx[2], zy, zt),
            "yy": (zx, fy[2], zt),
        }
        for name in (*first, *second):
            slots.append(torch.cat(blocks[name], dim=-1))
        return torch.stack(slots)


# --------------------------------------------------------------------------- network


class MLP(nn.Module):
    """A fully connected network with a smooth activation and a linear output layer.

    Weights are Xavier-normal, biases zero (the usual PINN initialisation).
    """

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, activation: str = "tanh") -> None:
        super().__init__()
        widths = [n_in, *hidden, n_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = activation
        for layer in self.linear:
            nn.init.xavier_normal_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def linear(self) -> list[nn.Linear]:
        """The layers, typed."""
        return [cast(nn.Linear, layer) for layer in self.layers]

    def _activate(self, z: torch.Tensor) -> tuple[torch.Tensor, Callable[[], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]:
        """``s(z)``, a thunk for ``s'(z)``, and ``s''(z)`` as a function of ``s'(z)``."""
        if self.activation == "sin":
            a = torch.sin(z)
            return a, lambda: torch.cos(z), lambda _: -a
        a = torch.tanh(z)
        return a, lambda: 1.0 - a * a, lambda d1: -2.0 * a * d1

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        h = features
        for layer in self.layers[:-1]:
            h = self._activate(layer(h))[0]
        return self.layers[-1](h)

    def jet(self, stacked: torch.Tensor, n_first: int, second_of: Sequence[int]) -> torch.Tensor:
        """Propagate stacked features and derivatives (see :meth:`Embedding.jet`).

        Args:
            stacked: ``(S, N, n_in)``: value, ``n_first`` first derivatives, then second ones.
            n_first: number of first-derivative slots.
            second_of: for each second-derivative slot, the index (1-based slot) of the first
                derivative along the same direction.

        Returns:
            ``(S, N, n_out)`` in the same slot order.
        """
        # Slots travel as a list with one product each: indexing a stacked tensor would make
        # autograd fill a full-size zero gradient per index in the backward pass.
        h = list(stacked.unbind(0))
        for layer in self.linear[:-1]:
            z = [torch.matmul(slot, layer.weight.T) for slot in h]
            a, slope, curvature = self._activate(z[0] + layer.bias)
            h = [a]
            if len(z) > 1:
                d1 = slope()
                h.extend(d1 * z[1 + i] for i in range(n_first))
                if second_of:
                    d2 = curvature(d1)
                    h.extend(d2 * z[j] * z[j] + d1 * z[1 + n_first + k] for k, j in enumerate(second_of))
        last = self.linear[-1]
        out = [torch.matmul(slot, last.weight.T) for slot in h]
        return torch.stack([out[0] + last.bias, *out[1:]])


class PinnNetwork(nn.Module):
    """Embedding followed by an MLP: ``(x, y, t) -> (N, C)`` raw network output."""

    def __init__(self, embedding: Embedding, hidden: Sequence[int], n_fields: int, activation: str = "tanh") -> None:
        super().__init__()
        self.embedding = embedding
        self.mlp = MLP(embedding.width, hidden, n_fields, activation)

    def forward(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.embedding(x, y, t))

    def jet(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor, first: Sequence[str] = (), second: Sequence[str] = ()) -> Jet:
        """Value and the requested derivatives (directions as in :data:`FIRST`, :data:`SECOND`)."""
        first, second = normalise_orders(first, second)
        if not first and not second:
            return Jet(self(x, y, t))
        stacked = self.embedding.jet(x, y, t, first, second)
        second_of = [1 + first.index(d[0]) for d in second]
        out = self.mlp.jet(stacked, len(first), second_of)
        return Jet(
            out[0],
            {d: out[1 + i] for i, d in enumerate(first)},
            {d: out[1 + len(first) + i] for i, d in enumerate(second)},
        )


# --------------------------------------------------------------------------- jets by autograd


def autograd_jet(
    function: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    t: torch.Tensor,
    first: Sequence[str] = (),
    second: Sequence[str] = (),
    *,
    create_graph: bool = False,
) -> Jet:
    """The jet of any differentiable ``function(x, y, t) -> (N, C)`` by automatic differentiation.

    Used for analytic functions (initial values, tests) and as an independent check of
    :meth:`PinnNetwork.jet`. With ``create_graph=False`` the results are detached.
    """
    first, second = normalise_orders(first, second)
    coords = {
        "x": x.detach().clone().requires_grad_(True),
        "y": y.detach().clone().requires_grad_(True),
        "t": t.detach().clone().requires_grad_(True),
    }
    with torch.enable_grad():
        value = function(coords["x"], coords["y"], coords["t"])
        if value.dim() == 1:
            value = value.unsqueeze(-1)
        value = value.expand(x.shape[0], value.shape[-1]) if value.shape[0] == 1 else value
        jet = Jet(value)
        keep = create_graph or bool(second)
        for d in first:
            jet.first[d] = _column_grads(value, coords[d], create_graph=keep)
        for d in second:
            jet.second[d] = _column_grads(jet.first[d[0]], coords[d[0]], create_graph=create_graph)
    if not create_graph:
        jet = Jet(jet.value.detach(), {k: v.detach() for k, v in jet.first.items()}, {k: v.detach() for k, v in jet.second.items()})
    return jet


def _column_grads(value: torch.Tensor, wrt: torch.Tensor, *, create_graph: bool) -> torch.Tensor:
    """d value[:, c] / d wrt for each column c (points are independent): ``(N, C)``."""
    columns = []
    for c in range(value.shape[1]):
        column = value[:, c]
        if not column.requires_grad:
            columns.append(torch.zeros_like(column))
            continue
        (grad,) = torch.autograd.grad(column.sum(), wrt, create_graph=create_graph, retain_graph=True, allow_unused=True)
        columns.append(torch.zeros_like(column) if grad is None else grad)
    return torch.stack(columns, dim=1)


# --------------------------------------------------------------------------- initial values on points


def spline_basis(nodes: np.ndarray, start: float, length: float, periodic: bool) -> Callable[[torch.Tensor], torch.Tensor]:
    """Cubic-spline cardinal functions of a grid axis: ``s -> (N, n_nodes)``.

    Row i of the result holds the weights that interpolate grid values at ``s[i]`` (a
    periodic spline on periodic axes, not-a-knot otherwise); the weights are twice
    differentiable in ``s`` under autograd.
    """
    n = nodes.size
    if periodic:
        breaks = np.append(nodes, start + length)
        identity = np.vstack([np.eye(n), np.eye(n)[:1]])
        spline = CubicSpline(breaks, identity, bc_type="periodic")
    else:
        breaks = nodes
        spline = CubicSpline(breaks, np.eye(n), bc_type="not-a-knot")
    coefficients = torch.as_tensor(spline.c, dtype=torch.float64)  # (4, n_intervals, n)
    knots = torch.as_tensor(breaks, dtype=torch.float64)

    def basis(s: torch.Tensor) -> torch.Tensor:
        c = coefficients.to(device=s.device, dtype=s.dtype)
        k = knots.to(device=s.device, dtype=s.dtype)
        if periodic:
            s = start + torch.remainder(s - start, length)
        index = (torch.searchsorted(k, s.detach().contiguous(), right=True) - 1).clamp(0, k.numel() - 2)
        local = (s - k[index]).unsqueeze(-1)
        return ((c[0][index] * local + c[1][index]) * local + c[2][index]) * local + c[3][index]

    return basis


# --------------------------------------------------------------------------- the solution ansatz
# The fields of a problem at points off the grid, initial condition built in.


@dataclass
class Points:
    """Collocation points, each coordinate ``(N,)``; ``cache`` holds per-set constants."""

    x: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor
    cache: dict[Any, Any] = field(default_factory=dict)


class InitialValues:
    """u0(x, y) of every field at arbitrary points: ``(N,), (N,) -> (N, C)``, differentiable.

    Expression initial values are evaluated directly; file and random ones are cubic
    splines of their grid values.
    """

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        self.parameters = problem.parameter_values()
        names = set(problem.parameters) | {"x", "y", "t"}
        self.expressions: dict[str, sympy.Expr] = {}
        for name in problem.fields:
            raw = problem.model.initial[name]
            if isinstance(raw, (int, float, str)):
                self.expressions[name] = parse_expression(raw, where=f"initial.{name}", names=names, allow_operators=False)
        grid = problem.grid
        self.basis_x = spline_basis(grid.x.points, grid.x.start, grid.x.length, grid.x.periodic)
        self.basis_y = spline_basis(grid.y.points, grid.y.start, grid.y.length, grid.y.periodic)
        self.values = torch.as_tensor(problem.initial_values(), dtype=torch.float64)  # (C, ny, nx)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        columns = [self._field(c, name, x, y) for c, name in enumerate(self.problem.fields)]
        return torch.stack(columns, dim=1)

    def _field(self, c: int, name: str, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if name in self.expressions:
            value = evaluate(self.expressions[name], {"x": x, "y": y, "t": 0.0, **self.parameters})
            if not isinstance(value, torch.Tensor):
                value = torch.full_like(x, float(value))
            return value.expand_as(x)
        grid_values = self.values[c].to(device=x.device, dtype=x.dtype)
        return ((self.basis_y(y) @ grid_values) * self.basis_x(x)).sum(dim=-1)


class FieldModel(torch.nn.Module):
    """The fields as functions of ``(x, y, t)``: the network, with the initial value built in.

    Hard initial condition: ``u = u0(x, y) + phi(t) * N(x, y, t)`` with ``phi(0) = 0``;
    soft: ``u = N``.
    """

    def __init__(self, problem: Problem, config: PinnOptions) -> None:
        super().__init__()
        grid = problem.grid
        domain = ((grid.x.start, grid.x.end), (grid.y.start, grid.y.end))
        embedding = Embedding(domain, problem.periodic, problem.t_end, config.harmonics)
        self.network = PinnNetwork(embedding, config.hidden, len(problem.fields), config.activation)
        self.hard = config.hard_initial
        self.ramp = config.initial_ramp
        self.t_end = problem.t_end
        self.initial = InitialValues(problem)

    def phi(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ramp ``phi(t)`` and ``phi'(t)``, each ``(N, 1)``."""
        t = t.unsqueeze(-1)
        if self.ramp == "exp":
            decay = torch.exp(-t / self.t_end)
            return 1.0 - decay, decay / self.t_end
        return t / self.t_end, torch.full_like(t, 1.0 / self.t_end)

    def forward(self, x: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Field values ``(N, C)``, differentiable in the coordinates."""
        out = self.network(x, y, t)
        if not self.hard:
            return out
        return self.initial(x, y) + self.phi(t)[0] * out

    def jet(self, points: Points, first: Sequence[str] = (), second: Sequence[str] = ()) -> Jet:
        """Values and derivatives at ``points`` by forward propagation (see :class:`Jet`)."""
        raw = self.network.jet(points.x, points.y, points.t, first, second)
        if not self.hard:
            return raw
        key = ("u0", tuple(raw.first), tuple(raw.second))
        if key not in points.cache:
            spatial = [d for d in raw.first if d != "t"]
            points.cache[key] = autograd_jet(lambda x, y, t: self.initial(x, y), points.x, points.y, points.t, spatial, list(raw.second))
        u0 = points.cache[key]
        phi, slope = self.phi(points.t)
        jet = Jet(u0.value + phi * raw.value)
        for d, value in raw.first.items():
            jet.first[d] = slope * raw.value + phi * value if d == "t" else u0.first[d] + phi * value
        for d, value in raw.second.items():
            jet.second[d] = u0.second[d] + phi * value
        return jet
