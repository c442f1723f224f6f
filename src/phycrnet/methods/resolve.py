"""Every ``auto`` option of a PhyCRNet run, resolved in one explicit step.

:func:`resolve` maps a problem and its options to a frozen :class:`Resolved` record. It
measures the stiffness (``dt * rho``, the frame step times the spectral radius of the
right-hand side's Jacobian at the initial state) and the cell Peclet number once, applies
the rules below with the thresholds of :data:`phycrnet.options.THRESHOLDS`, and builds
no network. Outputs record the result (:meth:`Resolved.attributes`). The reasons and
measurements behind each rule are in ``docs/method.md``.

* ``refine: auto``: under a time budget alone (whose cost does not grow with the grid)
  and with expression initial values, refine where the spec grid's cell Peclet number
  exceeds ``resolved_peclet``, by ``ceil(Pe / resolved_peclet)``, at most
  ``max_auto_refine``. The rest is resolved on the training grid.
* ``implicit_diffusion: auto``: where a field has constant diffusion and explicit steps
  cannot keep the predictor stable: on a periodic grid where ``max_imex_substeps``
  sub-steps stay above ``stiff_step``; on a bounded grid where ``max_explicit_substeps``
  sub-steps of ``max_predictor_steps`` predictor steps do.
* ``physics_input: auto``: off where the cell Peclet number exceeds ``peclet_limit``;
  off while a coefficient is learned on a problem whose explicit step is stable
  (``dt * rho <= stiff_step``); off where even the most sub-steps leave the step above
  ``physics_input_limit``; on otherwise.
* ``substeps: 0``: without physics input 1; with implicit diffusion
  ``max_imex_substeps`` (the splitting is first order); else the fewest that bring the
  step's ``dt * rho`` to ``stiff_step``, at most ``max_explicit_substeps``.
* ``predictor_steps: auto``: the fewest that bring each one's ``dt * rho`` to
  ``stiff_step``, at most ``max_predictor_steps``; 1 with implicit diffusion. Beyond that
  the predictor's gain is damped to ``0.9 * stiff_step / (dt * rho)``.
* ``step_balance: auto``: on where the untrained network is a classical step (physics
  input, explicit initialisation, no hidden head).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch

from phycrnet.discretisation.implicit import ImplicitDiffusion
from phycrnet.errors import OptionsError, PhycrnetWarning
from phycrnet.options import THRESHOLDS, CrnOptions, ModelOptions
from phycrnet.physics import Physics
from phycrnet.spec.expressions import constant_diffusivities
from phycrnet.spec.problem import Problem
from phycrnet.training.device import dtype_of

T = THRESHOLDS


@dataclass(frozen=True)
class Resolved:
    """The resolved choices of one run (``problem`` is the training problem)."""

    refine: int
    derivatives: str
    physics_input: bool
    implicit_diffusion: bool
    substeps: int
    predictor_steps: int
    input_gain: float
    step_balance: bool
    stiffness: float
    peclet: float | None
    output_scale: float
    problem: Problem = field(repr=False, compare=False)

    def model(self, options: ModelOptions) -> ModelOptions:
        """The architecture with its ``auto`` entries replaced by the resolved choices."""
        return options.model_copy(
            update={"physics_input": self.physics_input, "implicit_diffusion": self.implicit_diffusion, "predictor_steps": self.predictor_steps}
        )

    def attributes(self, model: ModelOptions) -> dict[str, Any]:
        """What an output records of the choices."""
        attrs: dict[str, Any] = {
            "derivatives": self.derivatives,
            "substeps": self.substeps,
            "physics_input": int(self.physics_input),
            "physics_predictor": model.physics_predictor if self.physics_input else "none",
            "implicit_diffusion": int(self.implicit_diffusion),
            "predictor_steps": self.predictor_steps if self.physics_input else 0,
            "refine": self.refine,
            "step_balance": int(self.step_balance),
            "stiffness_dt_rho": round(self.stiffness, 4),
        }
        if self.peclet is not None:
            attrs["cell_peclet"] = round(self.peclet, 4) if math.isfinite(self.peclet) else "inf"
        return attrs


class Probe:
    """The measurements of one problem at its initial state (training dtype, CPU):
    ``stiffness`` is the frame step's ``dt * rho``."""

    def __init__(self, problem: Problem, options: CrnOptions) -> None:
        self.problem = problem
        self.dtype = dtype_of(options.training.dtype)
        self.physics = Physics(problem, options.physics, dtype=self.dtype)
        self.parameters = problem.parameter_values()
        self.t0 = torch.zeros(1, dtype=self.dtype)
        u0 = torch.as_tensor(problem.initial_values(), dtype=self.dtype).unsqueeze(0)
        self.u0 = self.physics.enforce(u0, self.t0, self.parameters)
        self.stiffness = problem.dt * self.physics.spectral_radius(self.u0, self.t0, self.parameters)
        self._imex: dict[int, float] = {}

    def peclet(self) -> float:
        return self.physics.cell_peclet_number(self.u0, self.t0, self.parameters)

    def imex_stiffness(self, substeps: int) -> float:
        """``dt * rho(P J)`` of one IMEX sub-step (``P`` the implicit diffusion filter)."""
        if substeps not in self._imex:
            dt = self.problem.dt / substeps
            transform = ImplicitDiffusion.for_problem(self.problem, self.physics.derivatives, dt, dtype=self.dtype, device=torch.device("cpu"))
            self._imex[substeps] = dt * self.physics.spectral_radius(self.u0, self.t0, self.parameters, transform=transform)
        return self._imex[substeps]


def resolve(problem: Problem, options: CrnOptions) -> Resolved:
    """The resolved choices of a PhyCRNet run on ``problem`` (see the module docstring)."""
    refine = training_refinement(problem, options)
    training_problem = refined(problem, refine)
    probe = Probe(training_problem, options)
    model, training = options.model, options.training
    peclet = probe.peclet() if model.physics_input == "auto" else None
    implicit = _implicit_diffusion(probe, model)
    physics_input = model.physics_input if model.physics_input != "auto" else _automatic_physics_input(probe, implicit, peclet)
    implicit = implicit and bool(physics_input)

    def step_stiffness(substeps: int) -> float:
        return probe.imex_stiffness(substeps) if implicit else probe.stiffness / substeps

    substeps = training.substeps or _automatic_substeps(bool(physics_input), implicit, step_stiffness)
    predictor_steps = 1
    if physics_input:
        predictor_steps = _automatic_predictor_steps(implicit, step_stiffness(substeps)) if model.predictor_steps == "auto" else int(model.predictor_steps)
    per_predictor_step = step_stiffness(substeps * predictor_steps)
    gain = 1.0 if not physics_input or per_predictor_step <= T.stiff_step else 0.9 * T.stiff_step / per_predictor_step
    classical_start = bool(physics_input) and model.physics_init == "explicit" and not model.head_channels
    balance = classical_start if training.step_balance == "auto" else bool(training.step_balance)
    return Resolved(
        refine=refine,
        derivatives=probe.physics.scheme,
        physics_input=bool(physics_input),
        implicit_diffusion=implicit,
        substeps=substeps,
        predictor_steps=predictor_steps,
        input_gain=gain,
        step_balance=balance,
        stiffness=probe.stiffness,
        peclet=peclet,
        output_scale=min(1.0, T.reference_step * substeps / training_problem.dt),
        problem=training_problem,
    )


def _implicit_diffusion(probe: Probe, model: ModelOptions) -> bool:
    choice = model.implicit_diffusion
    diffusing = constant_diffusivities(probe.problem.equations, probe.parameters)
    if choice is False or model.physics_input is False or not diffusing:
        return False
    if choice is True:
        return True
    if all(probe.problem.periodic):
        return probe.stiffness / T.max_imex_substeps > T.stiff_step
    return probe.stiffness / (T.max_explicit_substeps * T.max_predictor_steps) > T.stiff_step


def _automatic_physics_input(probe: Probe, implicit: bool, peclet: float | None) -> bool:
    if peclet is not None and peclet > T.peclet_limit:
        return False
    learned = any(p.learn for p in probe.problem.parameters.values())
    if learned and probe.stiffness <= T.stiff_step:  # the explicit step's, whatever the network gets
        return False
    if implicit:
        return probe.imex_stiffness(T.max_imex_substeps) <= T.physics_input_limit
    return probe.stiffness / (T.max_explicit_substeps * T.max_predictor_steps) <= T.physics_input_limit


def _automatic_substeps(physics_input: bool, implicit: bool, step_stiffness: Any) -> int:
    if not physics_input:
        return 1
    if implicit:
        return T.max_imex_substeps
    stable = (s for s in range(1, T.max_explicit_substeps + 1) if step_stiffness(s) <= T.stiff_step * (1 + 1e-9))
    return next(stable, T.max_explicit_substeps)


def _automatic_predictor_steps(implicit: bool, per_step: float) -> int:
    if implicit:
        return 1
    return min(T.max_predictor_steps, max(1, math.ceil(per_step / T.stiff_step * (1 - 1e-9))))


# -- the training grid ---------------------------------------------------------------------


def training_refinement(problem: Problem, options: CrnOptions) -> int:
    """The refinement factor of the training grid (``refine``; module docstring)."""
    training = options.training
    if training.refine != "auto":
        return int(training.refine)
    if training.time_budget is None or training.iterations is not None or not expression_initials(problem):
        return 1
    peclet = spec_grid_peclet(problem, options)
    if not math.isfinite(peclet) or peclet <= T.resolved_peclet:
        return 1
    return min(T.max_auto_refine, math.ceil(peclet / T.resolved_peclet))


def spec_grid_peclet(problem: Problem, options: CrnOptions) -> float:
    """The largest cell Peclet number of the initial state on the spec's grid."""
    physics = Physics(problem, options.physics, dtype=torch.float64)
    parameters = problem.parameter_values()
    t0 = torch.zeros(1, dtype=torch.float64)
    u0 = torch.as_tensor(problem.initial_values(), dtype=torch.float64).unsqueeze(0)
    return physics.cell_peclet_number(physics.enforce(u0, t0, parameters), t0, parameters)


def expression_initials(problem: Problem) -> bool:
    """Whether every initial value is an expression (defined off the spec's grid too)."""
    return all(isinstance(raw, (int, float, str)) for raw in problem.model.initial.values())


def refined(problem: Problem, factor: int) -> Problem:
    """``problem`` on a grid ``factor`` times finer per axis, whose every ``factor``-th node
    is a node of the original grid: a bounded axis of n nodes gets (n - 1) * factor + 1, a
    periodic axis of n points n * factor. Initial values must be expressions."""
    if factor == 1:
        return problem
    for name, raw in problem.model.initial.items():
        if not isinstance(raw, (int, float, str)):
            raise OptionsError(f"refine {factor}: initial.{name} is not an expression (a file or random field lives on the spec's grid); use refine 1")
    nodes = [axis.n * factor if axis.periodic else (axis.n - 1) * factor + 1 for axis in (problem.grid.x, problem.grid.y)]
    return problem.with_changes(grid={"nx": nodes[0], "ny": nodes[1]})


def advise_refinement(resolved: Resolved) -> None:
    """Warn where the training grid does not resolve the transport (cell Peclet number
    above ``resolved_peclet``) but a finer grid would."""
    peclet = resolved.peclet
    if peclet is None or not math.isfinite(peclet) or peclet <= T.resolved_peclet:
        return
    factor = math.ceil(resolved.refine * peclet / T.resolved_peclet * (1 - 1e-9))  # from the spec's grid
    warnings.warn(
        f"cell Peclet number {peclet:.1f} > {T.resolved_peclet:g}: the grid does not resolve the transport; "
        f"refine {factor} (--refine {factor}; automatic under a --time-budget alone) trains on a finer grid",
        PhycrnetWarning,
        stacklevel=3,
    )
