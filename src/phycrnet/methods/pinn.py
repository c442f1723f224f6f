"""A physics-informed neural network (PINN) baseline on the same compiled spec as PhyCRNet.

``pinn_solve(spec, ...)`` mirrors :func:`phycrnet.solve`: it trains a multilayer perceptron
u(x, y, t) on the residual of the spec's equations at random collocation points and
returns the solution on the spec's grid and frame times as an :class:`xarray.Dataset`
(solver name ``"pinn"``, same format as every other solver).

The method (see :class:`PinnConfig` for every option):

* **Network** (:mod:`phycrnet.pinn_network`): tanh MLP on ``(x, y, t)``; periodic axes enter
  through Fourier features, so periodicity holds exactly; derivatives are propagated
  forward with the value (one pass) when every operator acts on a field, and taken by
  automatic differentiation otherwise (for example ``laplace(u**2)``).
* **Initial condition**: built in (``u = u0(x, y) + phi(t) N(x, y, t)`` with ``phi(0) = 0``)
  or a loss term ``ic_<field>``. u0 off the grid is the spec's expression when it has one,
  else a cubic spline of the grid values (periodic spline on periodic axes).
* **Boundary conditions**: every non-periodic side of every field is a loss term
  ``bc_<field>_<side>`` on the residual ``a*u + b*du/dn - g(x, y, t)`` (``n`` outward).
* **Loss terms** ``pde_<field>`` (mean squared residual of ``u_t - F``), combined by the
  same weighting schemes as PhyCRNet (:mod:`phycrnet.weighting`); optional causal weighting
  of the PDE residual over time bins (Wang, Sankaran, Perdikaris 2022).
* **Optimisation**: Adam with a learning-rate schedule over the run's progress, fresh
  collocation points every ``resample_every`` iterations, then optionally L-BFGS on a
  fixed set of points for the last ``lbfgs_fraction`` of the budget.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy
import torch
import xarray as xr

from phycrnet.errors import DivergenceError, OptionsError
from phycrnet.spec.expressions import evaluate, operator_calls, parse_expression
from phycrnet.spec.grid import SIDE_AXIS, SIDE_SIGN, SIDES
from phycrnet.io.solution import trained_solution, write_solution
from phycrnet.models.pinn import ACTIVATIONS, Embedding, Jet, PinnNetwork, autograd_jet, spline_basis
from phycrnet.spec.problem import BoundaryCondition, Problem, load_spec
from phycrnet.training.trainer import Coefficients, _ProgressBar, configure_threads, schedule_factor, select_device
from phycrnet.losses.weighting import WEIGHTINGS, make_weighting

#: Iterations when neither an iteration count nor a time budget is given.
DEFAULT_ITERATIONS = 20_000

SCHEDULES = ("cosine", "exponential", "step", "constant")
INITIAL_RAMPS = ("linear", "exp")

#: Spatial derivatives each operator of the expression language needs.
OPERATOR_DERIVATIVES: dict[str, tuple[str, ...]] = {
    "laplace": ("xx", "yy"),
    "d_dx": ("x",),
    "d_dy": ("y",),
    "d2_dx2": ("xx",),
    "d2_dy2": ("yy",),
}


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class PinnConfig:
    """Options of the PINN baseline (``pinn_solve(**options)``).

    Sizes are counts of points per collocation set; times in seconds of training;
    ``lr`` is Adam's initial learning rate.
    """

    hidden: tuple[int, ...] = (64, 64, 64)  #: widths of the hidden layers
    activation: str = "tanh"  #: tanh or sin
    harmonics: tuple[int, ...] = (1, 2)  #: Fourier wave numbers k on periodic axes (an int K means 1..K)
    hard_initial: bool = True  #: build the initial condition into the network
    initial_ramp: str = "linear"  #: phi(t): linear (t/t_end) or exp (1 - exp(-t/t_end))
    n_interior: int = 4000  #: space-time collocation points for the PDE residual
    n_boundary: int = 256  #: points per non-periodic side (over space and time)
    n_initial: int = 1024  #: points at t = 0 (soft initial condition only)
    resample_every: int = 100  #: Adam iterations between fresh collocation points (0: never)
    lr: float = 2e-3
    schedule: str = "exponential"  #: learning-rate decay over the Adam phase
    final_lr_ratio: float = 0.05  #: lr at the end of Adam / lr (cosine, exponential)
    lr_decay: float = 0.5  #: factor per step (step schedule)
    decay_every: float = 0.25  #: fraction of the Adam phase between steps (step schedule)
    lbfgs_fraction: float = 0.85  #: share of the budget (time or iterations) for L-BFGS
    lbfgs_interior: int | None = None  #: interior points for the L-BFGS phase (None: n_interior)
    lbfgs_history: int = 100
    lbfgs_max_iter: int = 20  #: L-BFGS iterations between budget checks
    causal: float = 0.0  #: causal weighting strength epsilon (0: off)
    causal_bins: int = 20  #: time bins of the causal weighting
    weighting: str = "fixed"  #: loss weighting scheme (phycrnet.weighting)
    weighting_options: Mapping[str, Any] = field(default_factory=dict)
    dtype: str = "float32"
    threads: int | None = None  #: torch intra-op threads (None: all cores)
    log_every: int = 50

    def __post_init__(self) -> None:
        harmonics = self.harmonics
        if isinstance(harmonics, int) and not isinstance(harmonics, bool):
            harmonics = tuple(range(1, harmonics + 1))
        object.__setattr__(self, "harmonics", tuple(harmonics))
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "weighting_options", dict(self.weighting_options))
        for check in (self._check_choices, self._check_sizes, self._check_rates):
            check()

    def _check_choices(self) -> None:
        for name, value, allowed in (
            ("activation", self.activation, ACTIVATIONS),
            ("initial_ramp", self.initial_ramp, INITIAL_RAMPS),
            ("schedule", self.schedule, SCHEDULES),
            ("weighting", self.weighting, tuple(WEIGHTINGS)),
            ("dtype", self.dtype, ("float32", "float64")),
        ):
            if value not in allowed:
                raise OptionsError(f"pinn.{name}: unknown value {value!r} (choose from {', '.join(allowed)})")

    def _check_sizes(self) -> None:
        if not self.hidden or any(not _positive_int(w) for w in self.hidden):
            raise OptionsError(f"pinn.hidden: needs at least one positive layer width, got {list(self.hidden)}")
        if not self.harmonics or any(not _positive_int(k) for k in self.harmonics):
            raise OptionsError(f"pinn.harmonics: needs positive integer wave numbers, got {list(self.harmonics)}")
        for name in ("n_interior", "n_boundary", "n_initial", "lbfgs_history", "lbfgs_max_iter", "causal_bins", "log_every"):
            if not _positive_int(getattr(self, name)):
                raise OptionsError(f"pinn.{name}: must be a positive integer, got {getattr(self, name)!r}")
        if not (isinstance(self.resample_every, int) and self.resample_every >= 0):
            raise OptionsError(f"pinn.resample_every: must be an integer >= 0, got {self.resample_every!r}")
        if self.lbfgs_interior is not None and not _positive_int(self.lbfgs_interior):
            raise OptionsError(f"pinn.lbfgs_interior: must be a positive integer, got {self.lbfgs_interior!r}")
        if self.threads is not None and not _positive_int(self.threads):
            raise OptionsError(f"pinn.threads: must be a positive integer, got {self.threads!r}")

    def _check_rates(self) -> None:
        for name, low, high in (("lr", 0, math.inf), ("final_lr_ratio", 0, 1), ("lr_decay", 0, 1), ("decay_every", 0, 1)):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and low < value <= high):
                raise OptionsError(f"pinn.{name}: must be in ({low}, {high}], got {value!r}")
        if not (isinstance(self.lbfgs_fraction, (int, float)) and 0 <= self.lbfgs_fraction < 1):
            raise OptionsError(f"pinn.lbfgs_fraction: must be in [0, 1), got {self.lbfgs_fraction!r}")
        if not (isinstance(self.causal, (int, float)) and self.causal >= 0):
            raise OptionsError(f"pinn.causal: must be >= 0, got {self.causal!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def pinn_config(options: Mapping[str, Any]) -> PinnConfig:
    """A :class:`PinnConfig` from keyword options (``None`` values mean the default)."""
    known = {f.name for f in dataclasses.fields(PinnConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise OptionsError(f"pinn: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return PinnConfig(**{k: v for k, v in options.items() if v is not None})


# --------------------------------------------------------------------------- initial values off the grid


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


# --------------------------------------------------------------------------- collocation points


@dataclass
class Points:
    """Collocation points, each coordinate ``(N,)``; ``cache`` holds per-set constants."""

    x: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor
    cache: dict[Any, Any] = field(default_factory=dict)


@dataclass
class Collocation:
    """One draw of collocation points: interior, per non-periodic side, and at t = 0."""

    interior: Points
    sides: dict[str, Points]
    initial: Points | None


class Sampler:
    """Draws uniformly random collocation points in the space-time domain."""

    def __init__(self, problem: Problem, config: PinnConfig, *, dtype: torch.dtype, device: torch.device, seed: int) -> None:
        self.grid = problem.grid
        self.t_end = problem.t_end
        self.config = config
        self.dtype, self.device = dtype, device
        self.sides = [s for s in SIDES if any(s in problem.boundary[f] for f in problem.fields)]
        self.generator = torch.Generator().manual_seed(seed)

    def _uniform(self, n: int, low: float, high: float) -> torch.Tensor:
        u = torch.rand(n, generator=self.generator, dtype=torch.float64)
        return (low + (high - low) * u).to(device=self.device, dtype=self.dtype)

    def _constant(self, n: int, value: float) -> torch.Tensor:
        return torch.full((n,), value, dtype=self.dtype, device=self.device)

    def interior(self, n: int) -> Points:
        x, y = self.grid.x, self.grid.y
        return Points(self._uniform(n, x.start, x.end), self._uniform(n, y.start, y.end), self._uniform(n, 0.0, self.t_end))

    def side(self, side: str, n: int) -> Points:
        x, y = self.grid.x, self.grid.y
        t = self._uniform(n, 0.0, self.t_end)
        if SIDE_AXIS[side] == 0:
            return Points(self._constant(n, x.start if side == "left" else x.end), self._uniform(n, y.start, y.end), t)
        return Points(self._uniform(n, x.start, x.end), self._constant(n, y.start if side == "bottom" else y.end), t)

    def draw(self, n_interior: int | None = None) -> Collocation:
        c = self.config
        initial = None
        if not c.hard_initial:
            x, y = self.grid.x, self.grid.y
            initial = Points(self._uniform(c.n_initial, x.start, x.end), self._uniform(c.n_initial, y.start, y.end), self._constant(c.n_initial, 0.0))
        return Collocation(self.interior(n_interior or c.n_interior), {s: self.side(s, c.n_boundary) for s in self.sides}, initial)


# --------------------------------------------------------------------------- the solution ansatz


class FieldModel(torch.nn.Module):
    """The fields as functions of ``(x, y, t)``: the network, with the initial value built in.

    Hard initial condition: ``u = u0(x, y) + phi(t) * N(x, y, t)`` with ``phi(0) = 0``;
    soft: ``u = N``.
    """

    def __init__(self, problem: Problem, config: PinnConfig) -> None:
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
            points.cache[key] = autograd_jet(lambda x, y, t: self.initial(x, y), points.x, points.y, points.t, spatial, raw.second)
        u0 = points.cache[key]
        phi, slope = self.phi(points.t)
        jet = Jet(u0.value + phi * raw.value)
        for d, value in raw.first.items():
            jet.first[d] = slope * raw.value + phi * value if d == "t" else u0.first[d] + phi * value
        for d, value in raw.second.items():
            jet.second[d] = u0.second[d] + phi * value
        return jet


# --------------------------------------------------------------------------- residuals


def equation_derivatives(problem: Problem) -> tuple[tuple[str, ...], bool]:
    """Spatial derivatives the equations take of the fields, and whether jets suffice.

    Jets suffice when every operator is applied to a bare field; otherwise (for example
    ``laplace(u**2)``) the residual is differentiated by autograd.
    """
    needed: set[str] = set()
    jets = True
    for expr in problem.equations.values():
        for call in operator_calls(expr):
            argument = call.args[0]
            if not (argument.is_Symbol and argument.name in problem.fields):
                jets = False
            needed.update(OPERATOR_DERIVATIVES[call.func.__name__])
    return tuple(sorted(needed)), jets


def _jet_operator(jet: Jet, fields: Sequence[str]) -> Callable:
    def apply(name: str, argument: sympy.Expr, walk) -> torch.Tensor:
        c = fields.index(argument.name)
        return sum(jet.derivative(d)[:, c] for d in OPERATOR_DERIVATIVES[name])

    return apply


def _autograd_operator(coords: Mapping[str, torch.Tensor]) -> Callable:
    def derivative(value: torch.Tensor, direction: str) -> torch.Tensor:
        for axis in direction:
            if not (isinstance(value, torch.Tensor) and value.requires_grad):
                return torch.zeros_like(coords["x"])
            (value,) = torch.autograd.grad(value.sum(), coords[axis], create_graph=True, allow_unused=True)
            if value is None:
                return torch.zeros_like(coords["x"])
        return value

    def apply(name: str, argument: sympy.Expr, walk) -> torch.Tensor:
        value = walk(argument)
        return sum(derivative(value, d) for d in OPERATOR_DERIVATIVES[name])

    return apply


def pde_residuals(model: FieldModel, problem: Problem, points: Points, parameters: Mapping[str, Any]) -> torch.Tensor:
    """``u_t - F(u, x, y, t)`` for every field at ``points``: ``(N, C)``."""
    derivatives, jets = equation_derivatives(problem)
    fields = problem.fields
    if jets:
        jet = model.jet(points, ("t", *[d for d in derivatives if len(d) == 1]), [d for d in derivatives if len(d) == 2])
        env: dict[str, Any] = {"x": points.x, "y": points.y, "t": points.t, **parameters}
        return _residual_columns(problem, jet.value, jet.first["t"], env, _jet_operator(jet, fields))
    # Operators of expressions: differentiate by autograd, also under no_grad (evaluation).
    with torch.enable_grad():
        coords, u, u_t = _autograd_fields(model, points, len(fields))
        return _residual_columns(problem, u, u_t, {**coords, **parameters}, _autograd_operator(coords))


def _residual_columns(problem: Problem, u: torch.Tensor, u_t: torch.Tensor, env: dict[str, Any], operator: Callable) -> torch.Tensor:
    env = {**env, **{name: u[:, c] for c, name in enumerate(problem.fields)}}
    columns = [u_t[:, c] - evaluate(problem.equations[name], env, operator) for c, name in enumerate(problem.fields)]
    return torch.stack(columns, dim=1)


def _autograd_fields(model: FieldModel, points: Points, n_fields: int) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
    """Coordinates as leaves, the fields on them and their time derivatives (graph kept)."""
    coords = {k: getattr(points, k).detach().requires_grad_(True) for k in ("x", "y", "t")}
    u = model(coords["x"], coords["y"], coords["t"])
    u_t = torch.stack([torch.autograd.grad(u[:, c].sum(), coords["t"], create_graph=True)[0] for c in range(n_fields)], dim=1)
    return coords, u, u_t


def boundary_residual(jet: Jet, c: int, condition: BoundaryCondition, side: str, points: Points, parameters: Mapping[str, Any]) -> torch.Tensor:
    """``a*u + b*du/dn - g`` of field column ``c`` on ``side`` at ``points``: ``(N,)``.

    ``jet`` holds the fields at the points and, for Neumann/Robin conditions, their first
    derivative along the side's normal axis; ``n`` is the outward normal.
    """
    g = condition.evaluate_value(points.x, points.y, points.t, parameters)
    residual = -g if isinstance(g, torch.Tensor) else torch.full_like(points.x, -float(g))
    if condition.a:
        residual = residual + condition.a * jet.value[:, c]
    if condition.b:
        axis = "x" if SIDE_AXIS[side] == 0 else "y"
        residual = residual + condition.b * SIDE_SIGN[side] * jet.first[axis][:, c]
    return residual


def causal_mean(squares: torch.Tensor, t: torch.Tensor, t_end: float, bins: int, epsilon: float) -> torch.Tensor:
    """Causally weighted mean of ``squares`` ``(N,)`` at times ``t`` ``(N,)``.

    The mean over time bin i gets the weight ``exp(-epsilon * sum_{j<i} L_j)`` (held constant
    in the gradient), so later times count once earlier ones are resolved.
    """
    index = (t.detach() / t_end * bins).long().clamp(0, bins - 1)
    sums = torch.zeros(bins, dtype=squares.dtype, device=squares.device).index_add(0, index, squares)
    counts = torch.bincount(index, minlength=bins).to(squares.dtype)
    present = counts > 0
    means = sums[present] / counts[present]
    history = torch.cumsum(means.detach(), 0) - means.detach()
    return (torch.exp(-epsilon * history) * means).mean()


def loss_terms(
    model: FieldModel,
    problem: Problem,
    batch: Collocation,
    parameters: Mapping[str, Any],
    *,
    causal: float = 0.0,
    causal_bins: int = 20,
) -> dict[str, torch.Tensor]:
    """Named mean-square loss terms: ``pde_<field>``, ``bc_<field>_<side>``, ``ic_<field>``."""
    terms: dict[str, torch.Tensor] = {}
    residual = pde_residuals(model, problem, batch.interior, parameters)
    for c, name in enumerate(problem.fields):
        squares = residual[:, c].pow(2)
        if causal > 0:
            terms[f"pde_{name}"] = causal_mean(squares, batch.interior.t, problem.t_end, causal_bins, causal)
        else:
            terms[f"pde_{name}"] = squares.mean()
    for side, points in batch.sides.items():
        conditions = {c: problem.boundary[f][side] for c, f in enumerate(problem.fields) if side in problem.boundary[f]}
        needs_slope = any(cond.b for cond in conditions.values())
        jet = model.jet(points, ("x" if SIDE_AXIS[side] == 0 else "y",) if needs_slope else ())
        for c, condition in conditions.items():
            terms[f"bc_{problem.fields[c]}_{side}"] = boundary_residual(jet, c, condition, side, points, parameters).pow(2).mean()
    if batch.initial is not None:
        key = "u0"
        if key not in batch.initial.cache:
            batch.initial.cache[key] = model.initial(batch.initial.x, batch.initial.y).detach()
        misfit = model(batch.initial.x, batch.initial.y, batch.initial.t) - batch.initial.cache[key]
        for c, name in enumerate(problem.fields):
            terms[f"ic_{name}"] = misfit[:, c].pow(2).mean()
    return terms


# --------------------------------------------------------------------------- training


@dataclass
class PinnResult:
    """What a finished PINN run reports."""

    iterations: int
    adam_iterations: int
    seconds: float
    loss_terms: dict[str, float]
    parameters: dict[str, float] = field(default_factory=dict)
    stopped_by: str = "iterations"


class PinnTrainer:
    """Trains the PINN of one problem: Adam with resampling, then optionally L-BFGS.

    Args:
        problem: the compiled spec.
        config: the PINN options.
        iterations, time_budget: stop after this many iterations / seconds of training
            (whichever comes first; neither: :data:`DEFAULT_ITERATIONS`).
        seed: seeds the network's initial weights and the collocation points.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        log_path: CSV log (iteration, seconds, lr, loss, terms, weights).
        progress: show a progress bar.
    """

    def __init__(
        self,
        problem: Problem,
        config: PinnConfig,
        *,
        iterations: int | None = None,
        time_budget: float | None = None,
        seed: int = 0,
        device: str | None = None,
        log_path: Path | None = None,
        progress: bool = False,
    ) -> None:
        if iterations is not None and (not isinstance(iterations, int) or iterations < 0):
            raise OptionsError(f"iterations: must be a non-negative integer, got {iterations!r}")
        if time_budget is not None and not time_budget > 0:
            raise OptionsError(f"time_budget: must be positive, got {time_budget!r}")
        self.problem, self.config = problem, config
        self.cap = iterations if iterations is not None else (None if time_budget is not None else DEFAULT_ITERATIONS)
        self.budget = time_budget
        configure_threads(config.threads)
        self.device = select_device(device or "auto")
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        torch.manual_seed(seed)
        self.model = FieldModel(problem, config).to(device=self.device, dtype=self.dtype)
        self.coefficients = Coefficients(problem, self.dtype).to(self.device)
        self.sampler = Sampler(problem, config, dtype=self.dtype, device=self.device, seed=seed)
        self.weighting = make_weighting(config.weighting, **config.weighting_options).to(self.device)
        self.weighting.attach(self._gradient_norms)
        self.batch = self.sampler.draw()
        self._create_weighting_parameters()
        self.optimizer = torch.optim.Adam(self._trainable(), lr=config.lr)
        self.iteration = 0
        self.adam_iterations = 0
        self.phase = "adam"
        self.seconds = 0.0
        self.current_lr = config.lr
        self.last_terms: dict[str, float] = {}
        self.log_path = log_path
        self.progress = progress
        self._log_rows: list[dict[str, Any]] = []

    # -- pieces ----------------------------------------------------------------------------
    def _trainable(self) -> list[torch.nn.Parameter]:
        return [*self.model.parameters(), *self.coefficients.parameters(), *self.weighting.parameters()]

    def _create_weighting_parameters(self) -> None:
        """Schemes with lazily created parameters (``uncertainty``) must have them before Adam."""
        if hasattr(self.weighting, "log_variances"):
            self.weighting.combine({k: v.detach() for k, v in self.losses(self.batch).items()}, 0)

    def losses(self, batch: Collocation, *, causal: bool = True) -> dict[str, torch.Tensor]:
        c = self.config
        return loss_terms(
            self.model, self.problem, batch, self.coefficients.values(), causal=c.causal if causal else 0.0, causal_bins=c.causal_bins
        )

    def _gradient_norms(self, losses) -> dict[str, tuple[float, float]]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        norms = {}
        for name, value in losses.items():
            grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
            flat = torch.cat([g.abs().flatten() for g in grads if g is not None])
            norms[name] = (float(flat.max()), float(flat.mean()))
        return norms

    # -- schedule --------------------------------------------------------------------------
    def adam_progress(self) -> float:
        """Fraction of the Adam phase done (by iterations or by seconds, the larger)."""
        share = 1.0 - self.config.lbfgs_fraction
        fractions = [0.0]
        if self.cap:
            fractions.append(self.iteration / max(self.cap * share, 1e-12))
        if self.budget:
            fractions.append(self.seconds / (self.budget * share))
        return min(1.0, max(fractions))

    def progress_fraction(self) -> float:
        """Fraction of the whole run done (for the progress bar)."""
        fractions = [0.0]
        if self.cap:
            fractions.append(self.iteration / self.cap)
        if self.budget:
            fractions.append(self.seconds / self.budget)
        return min(1.0, max(fractions))

    def learning_rate(self, p: float) -> float:
        c = self.config
        factor = schedule_factor(c.schedule, p, lr_decay=c.lr_decay, decay_every=c.decay_every, final_lr_ratio=c.final_lr_ratio)
        return c.lr * factor

    def _adam_done(self) -> bool:
        share = 1.0 - self.config.lbfgs_fraction
        if self.cap is not None and self.iteration >= round(self.cap * share):
            return True
        return self.budget is not None and self.seconds >= self.budget * share

    def _all_done(self) -> bool:
        if self.cap is not None and self.iteration >= self.cap:
            return True
        return self.budget is not None and self.seconds >= self.budget

    # -- the loop --------------------------------------------------------------------------
    def train(self) -> PinnResult:
        """Adam until its share of the budget, then L-BFGS until the end."""
        bar = _ProgressBar(self.progress)
        try:
            while not self._adam_done():
                start = time.perf_counter()
                terms, total = self._adam_step()
                self.seconds += time.perf_counter() - start
                self.iteration += 1
                self._record(terms, total)
                bar.update(self, terms)
            self.adam_iterations = self.iteration
            if self.config.lbfgs_fraction > 0:
                self._lbfgs(bar)
        finally:
            bar.close()
            self._flush_log()
        return self._result()

    def _adam_step(self) -> tuple[dict[str, float], float]:
        c = self.config
        if c.resample_every and self.iteration > 0 and self.iteration % c.resample_every == 0:
            self.batch = self.sampler.draw()
        self.current_lr = self.learning_rate(self.adam_progress())
        for group in self.optimizer.param_groups:
            group["lr"] = self.current_lr
        losses = self.losses(self.batch)
        total = self.weighting.combine(losses, self.iteration)
        terms = {k: float(v.detach()) for k, v in losses.items()}
        if not _finite(terms, float(total.detach())):
            raise DivergenceError(
                f"PINN training diverged at iteration {self.iteration} (non-finite loss); no result was written — try a smaller --lr"
            )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        return terms, float(total.detach())

    def _lbfgs(self, bar: _ProgressBar) -> None:
        """L-BFGS on a fixed collocation set with the weights frozen at their last values.

        Each outer step runs up to ``lbfgs_max_iter`` iterations (counted one by one); a step
        that ends with a non-finite loss is undone and ends the phase.
        """
        c = self.config
        self.phase = "lbfgs"
        self.batch = self.sampler.draw(c.lbfgs_interior)
        weights = dict(self.weighting.weights)
        params = [*self.model.parameters(), *self.coefficients.parameters()]
        optimizer = torch.optim.LBFGS(
            params, lr=1.0, max_iter=c.lbfgs_max_iter, history_size=c.lbfgs_history,
            tolerance_grad=1e-12, tolerance_change=1e-14, line_search_fn="strong_wolfe",
        )  # fmt: skip
        record: dict[str, Any] = {}

        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            losses = self.losses(self.batch, causal=False)
            total = sum(weights.get(k, 1.0) * v for k, v in losses.items())
            total.backward()
            record["terms"] = {k: float(v.detach()) for k, v in losses.items()}
            return total.detach()

        self.current_lr = 1.0
        while not self._all_done():
            saved = copy.deepcopy((self.model.state_dict(), self.coefficients.state_dict()))
            before = _lbfgs_iterations(optimizer, params)
            if self.cap is not None:
                optimizer.param_groups[0]["max_iter"] = max(1, min(c.lbfgs_max_iter, self.cap - self.iteration))
            start = time.perf_counter()
            total = float(optimizer.step(closure))
            done = _lbfgs_iterations(optimizer, params) - before
            with torch.no_grad():  # the loss at the parameters the step ended on
                terms = {k: float(v) for k, v in self.losses(self.batch, causal=False).items()}
            self.seconds += time.perf_counter() - start
            if not _finite(terms, total):
                self.model.load_state_dict(saved[0])
                self.coefficients.load_state_dict(saved[1])
                break
            self.iteration += max(done, 1)
            self._record(terms, sum(weights.get(k, 1.0) * v for k, v in terms.items()))
            bar.update(self, terms)
            if done == 0:
                break

    def _record(self, terms: dict[str, float], total: float) -> None:
        self.last_terms = terms
        # Every L-BFGS step is logged: each one spans up to lbfgs_max_iter iterations.
        due = self.phase == "lbfgs" or self.iteration % self.config.log_every == 0 or self.iteration == 1
        if self.log_path is not None and due:
            row: dict[str, Any] = {"iteration": self.iteration, "seconds": round(self.seconds, 4), "lr": self.current_lr, "loss": total}
            row.update(terms)
            row.update({f"w_{k}": v for k, v in self.weighting.weights.items()})
            row.update({f"param_{k}": v for k, v in self.coefficients.learned().items()})
            self._log_rows.append(row)
            if len(self._log_rows) >= 50:
                self._flush_log()

    def _flush_log(self) -> None:
        if self.log_path is None or not self._log_rows:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        new_file = not self.log_path.exists()
        columns = list(self._log_rows[0])
        if not new_file:
            with open(self.log_path, newline="") as handle:
                columns = next(csv.reader(handle), columns)
        with open(self.log_path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
            if new_file:
                writer.writeheader()
            writer.writerows(self._log_rows)
        self._log_rows = []

    def _result(self) -> PinnResult:
        terms = {k: float(v.detach()) for k, v in self.losses(self.batch, causal=False).items()}
        if not _finite(terms, 0.0):
            raise DivergenceError("PINN training ended with a non-finite loss; no result was written")
        stopped = "time budget" if self.budget is not None and self.seconds >= self.budget else "iterations"
        return PinnResult(self.iteration, self.adam_iterations, self.seconds, terms, self.coefficients.learned(), stopped)

    # -- output ----------------------------------------------------------------------------
    @torch.no_grad()
    def predict(self, times: np.ndarray, chunk: int = 65536) -> np.ndarray:
        """The fields on the grid at ``times``: ``(T, C, ny, nx)`` float64."""
        grid = self.problem.grid
        T, Y, X = np.meshgrid(times, grid.y.points, grid.x.points, indexing="ij")
        coords = [torch.as_tensor(a.ravel(), dtype=self.dtype, device=self.device) for a in (X, Y, T)]
        pieces = [self.model(*(c[i : i + chunk] for c in coords)) for i in range(0, coords[0].numel(), chunk)]
        values = torch.cat(pieces).double().cpu().numpy()
        if not np.all(np.isfinite(values)):
            raise DivergenceError("the trained PINN gives non-finite values; no result was written")
        return values.reshape(len(times), *grid.shape, -1).transpose(0, 3, 1, 2)


def _lbfgs_iterations(optimizer: torch.optim.LBFGS, params: list[torch.nn.Parameter]) -> int:
    return int(optimizer.state[params[0]].get("n_iter", 0)) if params[0] in optimizer.state else 0


def _finite(terms: Mapping[str, float], total: float) -> bool:
    return math.isfinite(total) and all(math.isfinite(v) for v in terms.values())


# --------------------------------------------------------------------------- the API


def pinn_solve(
    spec: Any,
    *,
    out: str | Path | None = None,
    iterations: int | None = None,
    time_budget: float | None = None,
    seed: int | None = 0,
    device: str | None = None,
    progress: bool = False,
    log: str | Path | None = None,
    **options: Any,
) -> xr.Dataset:
    """Train the PINN baseline on ``spec`` and return its solution on the spec's grid.

    Args:
        spec: catalog name, YAML path or text, dict, or :class:`~phycrnet.spec.Problem`.
        out: netCDF file to write (atomically).
        iterations, time_budget: stop after this many iterations / seconds of training.
        seed: seeds the initial weights and the collocation points.
        device: ``auto`` (default), ``cpu``, ``cuda`` or ``cuda:N``.
        progress: show a progress bar.
        log: CSV training log (iteration, seconds, lr, loss, each term and weight).
        **options: :class:`PinnConfig` fields (``hidden``, ``harmonics``, ``lr``, ...).

    Returns:
        Dataset with one variable per field, dims ``(t, y, x)``, at the frame times
        ``0, dt, ..., t_end``; attributes as for every solver (``solver = "pinn"``).

    Raises:
        OptionsError: unknown or invalid options.
        DivergenceError: the loss became non-finite during Adam.
    """
    problem = load_spec(spec)
    config = pinn_config(options)
    log_path = Path(log) if log is not None else None
    if log_path is not None and log_path.exists():
        log_path.unlink()
    trainer = PinnTrainer(
        problem, config, iterations=iterations, time_budget=time_budget, seed=0 if seed is None else seed,
        device=device, log_path=log_path, progress=progress,
    )  # fmt: skip
    result = trainer.train()
    frames = trainer.predict(problem.times)
    dataset = _dataset(problem, config, trainer, result, frames)
    if out is not None:
        write_solution(dataset, Path(out))
    return dataset


def _dataset(problem: Problem, config: PinnConfig, trainer: PinnTrainer, result: PinnResult, frames: np.ndarray) -> xr.Dataset:
    attrs = {"adam_iterations": result.adam_iterations, "pinn": config.to_json(), "device": str(trainer.device)}
    return trained_solution(problem, frames, problem.times, solver="pinn", result=result, attrs=attrs)
