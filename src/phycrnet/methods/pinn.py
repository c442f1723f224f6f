"""The PINN baseline: a physics-informed MLP on the same compiled spec as PhyCRNet.

``pinn_solve(spec, ...)`` mirrors :func:`phycrnet.solve`: it trains a multilayer perceptron
u(x, y, t) (:mod:`phycrnet.models.pinn`) on the residual of the spec's equations at random
collocation points and returns the solution on the spec's grid and frame times, in the
same output format as every other solver (``solver = "pinn"``). It trains on the same
engine as PhyCRNet (:mod:`phycrnet.training`): the same schedules, L-BFGS finish,
divergence policy, checkpoints and log, with its own base values for the learning rate
and schedule (:data:`phycrnet.options.PINN_TRAINING`), so that a gap between the two
methods is the method's, not the plumbing's.

* **Initial condition**: built in (``u = u0(x, y) + phi(t) N(x, y, t)`` with ``phi(0) = 0``)
  or a loss term ``ic_<field>``.
* **Boundary conditions**: every non-periodic side of every field is a loss term
  ``bc_<field>_<side>`` on the residual ``a*u + b*du/dn - g(x, y, t)`` (``n`` outward).
* **Loss terms** ``pde_<field>`` (mean squared residual of ``u_t - F``), combined by the
  same weighting schemes as PhyCRNet; optional causal weighting of the PDE residual over
  time bins (Wang, Sankaran, Perdikaris 2022) in the Adam phase.
* **Collocation**: fresh points every ``resample_every`` Adam iterations; the L-BFGS finish
  works on one fixed set of ``lbfgs_interior`` points.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import sympy
import torch
import xarray as xr

from phycrnet.errors import DivergenceError, OptionsError
from phycrnet.io.solution import trained_solution, write_solution
from phycrnet.methods.run import NetworkTask, as_path, compute_setup, problem_key, start_engine
from phycrnet.models.coefficients import Coefficients
from phycrnet.models.pinn import FieldModel, Jet, Points
from phycrnet.options import PinnOptions, PinnRunOptions, pinn_options
from phycrnet.spec.expressions import evaluate, operator_calls
from phycrnet.spec.grid import SIDE_AXIS, SIDE_SIGN, SIDES
from phycrnet.spec.problem import BoundaryCondition, Problem, load_spec
from phycrnet.training.engine import Engine
from phycrnet.training.task import TrainingResult

#: Spatial derivatives each operator of the expression language needs.
OPERATOR_DERIVATIVES: dict[str, tuple[str, ...]] = {
    "laplace": ("xx", "yy"),
    "d_dx": ("x",),
    "d_dy": ("y",),
    "d2_dx2": ("xx",),
    "d2_dy2": ("yy",),
}


# --------------------------------------------------------------------------- collocation points


@dataclass
class Collocation:
    """One draw of collocation points: interior, per non-periodic side, and at t = 0."""

    interior: Points
    sides: dict[str, Points]
    initial: Points | None


class Sampler:
    """Draws uniformly random collocation points in the space-time domain."""

    def __init__(self, problem: Problem, config: PinnOptions, *, dtype: torch.dtype, device: torch.device, seed: int) -> None:
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
        return cast(torch.Tensor, sum(jet.derivative(d)[:, c] for d in OPERATOR_DERIVATIVES[name]))

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
        return cast(torch.Tensor, sum(derivative(value, d) for d in OPERATOR_DERIVATIVES[name]))

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


# --------------------------------------------------------------------------- the task


class PinnTask(NetworkTask):
    """The PINN of one problem as a training task (:class:`~phycrnet.training.task.Task`)."""

    members = 1
    model: FieldModel

    def __init__(self, problem: Problem, options: PinnRunOptions, *, device: torch.device, dtype: torch.dtype) -> None:
        self.problem, self.options = problem, options
        self.device, self.dtype = device, dtype
        self.key = problem_key(problem, "pinn")
        self.model = FieldModel(problem, options.pinn).to(device=device, dtype=dtype)
        self.coefficients = Coefficients(problem, dtype).to(device)
        self.coefficient_lr_factor = options.training.coefficient_lr_factor
        self.sampler = Sampler(problem, options.pinn, dtype=dtype, device=device, seed=options.training.seed)
        self.batch = self.sampler.draw()
        self.phase = "adam"

    def windows(self, curriculum: tuple[int, ...] | None) -> list[int | None]:
        if curriculum:
            raise OptionsError("training.curriculum: the PINN trains on the whole time window at once")
        return [None]

    def prepare(self, phase: str, iteration: int) -> None:
        """Fresh points every ``resample_every`` Adam iterations; one fixed set for L-BFGS."""
        every = self.options.pinn.resample_every
        if phase == "adam" and every and iteration > 0 and iteration % every == 0:
            self.batch = self.sampler.draw()
        elif phase == "lbfgs" and self.phase != "lbfgs":
            self.batch = self.sampler.draw(self.options.pinn.lbfgs_interior)
        self.phase = phase

    def losses(self, window: int | None, phase: str) -> dict[str, torch.Tensor]:
        causal = self.options.training.causal if phase == "adam" else 0.0
        bins = self.options.pinn.causal_bins
        return loss_terms(self.model, self.problem, self.batch, self.coefficients.values(), causal=causal, causal_bins=bins)

    def standstill_loss(self) -> torch.Tensor:
        """No standing-still reference: blow-ups are judged against the best loss alone."""
        return torch.zeros(1, dtype=torch.float64)

    def extra_state(self) -> dict[str, Any]:
        return {"generator": self.sampler.generator.get_state(), "batch": self.batch, "phase": self.phase}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.sampler.generator.set_state(state["generator"])
        self.batch = state["batch"]
        self.phase = state["phase"]

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


# --------------------------------------------------------------------------- the API


def pinn_solve(
    spec: Any,
    *,
    out: str | Path | None = None,
    iterations: int | None = None,
    time_budget: float | None = None,
    seed: int | None = None,
    device: str | None = None,
    resume: bool = False,
    progress: bool = False,
    log: str | Path | None = None,
    checkpoint: str | Path | None = None,
    callback: Callable[[Engine], Any] | None = None,
    **options: Any,
) -> xr.Dataset:
    """Train the PINN baseline on ``spec`` and return its solution on the spec's grid.

    Args:
        spec: catalog name, YAML path or text, dict, or :class:`~phycrnet.spec.Problem`.
        out: netCDF file to write (atomically); the log and checkpoint go beside it.
        iterations, time_budget: stop after this many iterations / seconds of training.
        seed: seeds the initial weights and the collocation points.
        device: ``auto`` (default), ``cpu``, ``cuda`` or ``cuda:N``.
        resume: continue from the checkpoint.
        progress: show a progress bar.
        log, checkpoint: override the default paths.
        callback: ``callback(engine)`` after every Adam iteration and L-BFGS outer step.
        **options: ``training`` and ``pinn`` options (``lr``, ``hidden``, ``harmonics``, ...),
            over the spec's ``training:`` and ``pinn:`` sections.

    Returns:
        Dataset with one variable per field, dims ``(t, y, x)``, at the frame times.
    """
    problem = load_spec(spec)
    overrides = dict(options, iterations=iterations, time_budget=time_budget, seed=seed, device=device)
    run = pinn_options(problem.option_sections(), overrides)
    device_, dtype = compute_setup(run.training)
    task = PinnTask(problem, run, device=device_, dtype=dtype)
    engine = start_engine(task, run.training, out=as_path(out), log=as_path(log), checkpoint=as_path(checkpoint), resume=resume, progress=progress, callback=callback)
    result = engine.train()
    dataset = _dataset(problem, run, task, result, engine)
    if out is not None:
        write_solution(dataset, Path(out))
    return dataset


def _dataset(problem: Problem, run: PinnRunOptions, task: PinnTask, result: TrainingResult, engine: Engine) -> xr.Dataset:
    attrs = {
        "adam_iterations": engine.adam_iterations if engine.adam_iterations is not None else result.iterations,
        "options": run.to_json(),
        "device": str(task.device),
        "recoveries": result.recoveries,
        "lbfgs_stalls": result.lbfgs_stalls,
    }
    return trained_solution(problem, task.predict(problem.times), problem.times, solver="pinn", result=result, attrs=attrs)
