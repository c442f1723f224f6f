"""Training PhyCRNet on the physics residual: loop, budget, checkpoints, logging.

:class:`Trainer` owns everything stateful about a run: the network, the learnable
coefficients, the weighting scheme, the optimiser, the best state seen, the CSV log and
the checkpoints. Models and losses never touch files.

Run-time conventions:

* progress p in [0, 1] is the larger of iterations done / iteration cap and seconds spent
  / time budget; the learning rate is a function of p (so a resumed run continues on the
  same schedule);
* a checkpoint (written atomically: temporary file, then rename) holds the model, optimiser,
  weighting and coefficient states, the random-number states, the best state, the
  iteration and the seconds spent; ``resume=True`` continues from it;
* a loss that is not finite, or grows by ``divergence_factor`` over the best seen (or over
  the loss of a solution that never leaves its initial value, whichever is larger), restores
  the best state and halves the learning rate, at most ``max_recoveries`` times; then a
  :class:`~phycrnet.errors.DivergenceError` ends the run.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import math
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from phycrnet.methods.config import TrainingConfig
from phycrnet.errors import DivergenceError, OptionsError
from phycrnet.discretisation.implicit import ImplicitDiffusion, constant_diffusivities
from phycrnet.models.crn import ModelConfig, PhyCRNet
from phycrnet.physics.residual import Physics
from phycrnet.spec.problem import Problem
from phycrnet.losses.weighting import make_weighting

CHECKPOINT_VERSION = 1
#: Target of ``dt * rho`` per network step for automatic sub-steps (the stability limit of
#: an explicit Euler step; see :meth:`Trainer.automatic_substeps`), and the most sub-steps
#: chosen automatically.
STIFF_STEP = 2.0
MAX_AUTO_SUBSTEPS = 4
#: The most sub-steps chosen automatically for an explicit (not IMEX) physics input: up to
#: this many are taken to keep the explicit step within its stability limit; beyond, each
#: takes several predictor steps (see :meth:`Trainer.automatic_substeps`). The periodic
#: implicit-diffusion decision and the IMEX physics-input limit still count
#: ``MAX_AUTO_SUBSTEPS``.
MAX_EXPLICIT_SUBSTEPS = 8
#: The most predictor steps per network step chosen automatically
#: (``model.predictor_steps: auto``, see :meth:`Trainer.automatic_predictor_steps`).
MAX_PREDICTOR_STEPS = 8
#: ``physics_input: auto`` feeds F to the network only while the sub-stepped dt * rho (of
#: the step the network sees, see :meth:`Trainer.step_stiffness`) stays at or below this:
#: far beyond an explicit step's stability limit (FitzHugh-Nagumo, 49 per sub-step;
#: Gray-Scott, 15) the rollout blew up as soon as training gave F any weight. Those two
#: keep F now, with their diffusion treated implicitly (about 1 per step).
PHYSICS_INPUT_LIMIT = 8.0
#: ``physics_input: auto`` feeds F to the network only while the cell Peclet number stays at
#: or below this (see :meth:`Trainer.automatic_physics_input` for the measurements).
PECLET_LIMIT = 5.0
#: The largest weight ``step_balance`` gives a step's residual (where the untrained network
#: already satisfies a step almost exactly, its weight would otherwise be unbounded).
STEP_BALANCE_LIMIT = 1e3
#: Network step (time units) up to which the output layer keeps its initial scale.
REFERENCE_STEP = 0.05
#: Times L-BFGS restarts from the best state after a non-finite loss before it gives up.
LBFGS_RESTARTS = 10
#: An L-BFGS outer step whose start is not below the previous step's start by this relative
#: amount counts as stalled, and the curvature history is cleared.
LBFGS_STALL_TOLERANCE = 1e-6
#: The CSV log is appended to every this many buffered rows or seconds, whichever comes
#: first (so a slow run's log can be followed while it trains).
LOG_FLUSH_ROWS = 50
LOG_FLUSH_SECONDS = 10.0


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionsError(f"device: unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionsError("device: CUDA was requested but no GPU is available")
    return device


def configure_threads(threads: int | None) -> None:
    """Use every CPU core (or ``threads``) for intra-op work."""
    torch.set_num_threads(threads or max(1, os.cpu_count() or 1))


class Coefficients(nn.Module):
    """The problem's parameters: learnable ones as tensors, the rest as floats.

    A learnable parameter with bounds ``[lo, hi]`` is ``lo + (hi - lo) * sigmoid(theta)``;
    without bounds it is ``init + scale * theta`` with ``scale = |init|`` (1 when init is 0),
    so that Adam's steps, about ``lr`` in theta, change it by a fraction of its own size
    whatever its magnitude (an eps of 1e-3 would otherwise jump by lr per step).
    """

    def __init__(self, problem: Problem, dtype: torch.dtype) -> None:
        super().__init__()
        self.fixed = {n: p.value for n, p in problem.parameters.items() if not p.learn}
        self.bounds = {n: p.bounds for n, p in problem.parameters.items() if p.learn}
        self.origin = {n: p.value for n, p in problem.parameters.items() if p.learn}
        self.scale = {n: abs(p.value) or 1.0 for n, p in problem.parameters.items() if p.learn}
        self.raw = nn.ParameterDict()
        for name, p in problem.parameters.items():
            if p.learn:
                start = 0.0
                if p.bounds:
                    lo, hi = p.bounds
                    fraction = min(max((p.value - lo) / (hi - lo), 1e-6), 1 - 1e-6)
                    start = math.log(fraction / (1 - fraction))
                self.raw[name] = nn.Parameter(torch.tensor(start, dtype=dtype))

    def values(self) -> dict[str, Any]:
        result: dict[str, Any] = dict(self.fixed)
        for name, theta in self.raw.items():
            bounds = self.bounds[name]
            if bounds:
                result[name] = bounds[0] + (bounds[1] - bounds[0]) * torch.sigmoid(theta)
            else:
                result[name] = self.origin[name] + self.scale[name] * theta
        return result

    def learned(self) -> dict[str, float]:
        return {n: float(v.detach()) for n, v in self.values().items() if n in self.raw}


@dataclass
class TrainingResult:
    """What a finished run reports."""

    frames: np.ndarray  # (T, C, ny, nx) at the problem's frame times
    iterations: int
    seconds: float
    loss_terms: dict[str, float]
    best_loss: float
    parameters: dict[str, float] = field(default_factory=dict)
    stopped_by: str = "iterations"


class Trainer:
    """Trains a PhyCRNet for one problem.

    Args:
        problem: the compiled spec.
        config: training options.
        model_config: the architecture.
        log_path: CSV log (``None``: no log).
        checkpoint_path: checkpoint file (``None``: no checkpoints).
        progress: show a progress bar.
        extra_losses: ``f(frames, t, parameters) -> {name: loss}`` added to the physics
            terms (for example a data misfit).
    """

    def __init__(
        self,
        problem: Problem,
        config: TrainingConfig,
        model_config: ModelConfig | None = None,
        *,
        log_path: Path | None = None,
        checkpoint_path: Path | None = None,
        progress: bool = False,
        extra_losses: Callable[[torch.Tensor, torch.Tensor, dict[str, Any]], dict[str, torch.Tensor]] | None = None,
    ) -> None:
        self.problem = problem
        self.config = config
        configure_threads(config.threads)
        self.device = select_device(config.device)
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        _seed_everything(config.seed)
        options = config.physics_options()
        self.physics = Physics(problem, options, dtype=self.dtype, device=self.device)
        self.u0 = torch.as_tensor(problem.initial_values(), dtype=self.dtype, device=self.device).unsqueeze(0)
        model_config = model_config or ModelConfig()
        # dt * rho: the stiffness of one frame's explicit step.
        self.stiffness: float = self.measure_stiffness()
        self.peclet: float | None = self.measure_peclet() if model_config.physics_input == "auto" else None
        self._step_stiffness: dict[int, float] = {}
        self.implicit_diffusion = self.implicit_diffusion_applies(model_config)
        physics_input = model_config.physics_input
        if physics_input == "auto":
            physics_input = self.automatic_physics_input()
        self.implicit_diffusion = self.implicit_diffusion and bool(physics_input)
        model_config = dataclasses.replace(model_config, physics_input=bool(physics_input), implicit_diffusion=self.implicit_diffusion)
        self.substeps = config.substeps or self.automatic_substeps(model_config.physics_input)
        #: Predictor steps per network step (each ``dt_network / predictor_steps`` long).
        self.predictor_steps = 1
        if model_config.physics_input:
            self.predictor_steps = self.automatic_predictor_steps() if model_config.predictor_steps == "auto" else int(model_config.predictor_steps)
        self.input_filter = self._implicit_filter(self.substeps * self.predictor_steps) if self.implicit_diffusion else None
        self.model = PhyCRNet(len(problem.fields), problem.grid.shape, problem.periodic, model_config, seed=config.seed)
        # The untrained step u + dt * y is a random linear recurrence through the decoder's
        # input skip; keep its growth per step what it is at the paper's dt of 0.05 (an
        # untrained Gray-Scott rollout, dt = 5, otherwise reached losses of 1e31).
        self.model.scale_output(min(1.0, REFERENCE_STEP * self.substeps / problem.dt))
        #: The gain on F of the untrained step (also the Heun predictor's first stage).
        self.input_gain = self.explicit_step_gain() if model_config.physics_input else 1.0
        if model_config.physics_input and not model_config.head_channels and model_config.physics_init == "explicit":
            self.model.start_as_explicit_step(self.input_gain)
        self.model.to(device=self.device, dtype=self.dtype)
        self.coefficients = Coefficients(problem, self.dtype).to(self.device)
        self.weighting = make_weighting(config.weighting, **config.weighting_options).to(self.device)
        self.weighting.attach(self._gradient_norms)
        self.extra_losses = extra_losses
        self.log_path = log_path
        self.checkpoint_path = checkpoint_path
        self.progress = progress
        self._known_rhs: tuple[torch.Tensor, torch.Tensor] | None = None  # (frames, F) of the last rollout
        self.dt_network = problem.dt / self.substeps
        self.n_network_steps = problem.n_steps * self.substeps
        self.t_network = torch.arange(self.n_network_steps + 1, dtype=self.dtype, device=self.device) * self.dt_network
        # The central time scheme needs at least two steps to form a residual.
        self.min_window = min(self.n_network_steps, 2 if config.time_scheme == "central" else 1)
        #: ``(S, C)`` weights of each network step's PDE residual (``step_balance``).
        self.step_weights: torch.Tensor | None = None
        self._create_weighting_parameters()
        self.standstill_loss = self.measure_standstill_loss()
        balance = config.step_balance
        if balance == "auto":
            balance = model_config.physics_input and model_config.physics_init == "explicit" and not model_config.head_channels
        self.step_weights = self.measure_step_weights() if balance else None
        self.optimizer = torch.optim.Adam(self._parameter_groups(), lr=config.lr)
        self.iteration = 0
        self.seconds = 0.0
        self.lr_scale = 1.0
        self.recoveries = 0
        self.lbfgs_stalls = 0
        self.lbfgs_step_length = 1.0
        self.best_loss = math.inf
        self.best_state: dict[str, Any] | None = None
        self.last_terms: dict[str, float] = {}
        self.current_lr = config.lr
        self.logged_parameters = self.coefficients.learned()
        self._last_checkpoint = 0.0
        self._log_rows: list[dict[str, Any]] = []
        self._log_flushed_at = time.monotonic()

    def measure_stiffness(self) -> float:
        """``dt * rho``: the frame step times the spectral radius of the Jacobian of the
        right-hand side at the initial state (the problem's parameters at their initial
        values)."""
        return self.problem.dt * self.physics.spectral_radius(*self._initial_state())

    def implicit_diffusion_applies(self, model_config: ModelConfig) -> bool:
        """Whether the physics input treats constant diffusion implicitly
        (:mod:`phycrnet.implicit`): where it can (a field with constant diffusion) and, for
        ``"auto"``, where explicit sub-steps cannot keep the step stable:

        * on a periodic grid, where even ``MAX_AUTO_SUBSTEPS`` of them stay above
          ``STIFF_STEP`` (the filter inverts the residual's own Laplacian there);
        * on a bounded grid, where even ``MAX_EXPLICIT_SUBSTEPS`` sub-steps of
          ``MAX_PREDICTOR_STEPS`` predictor steps each stay above ``STIFF_STEP``
          (``dt * rho`` above 128). The filter's 3-point Laplacian only approximates the
          residual's there, and its first-order IMEX step was the worse predictor on
          Burgers (ad hoc, 300 s, one thread beside another run): trained on 65²,
          burgers_mixed (dt * rho 16) 4.0e-2 with it against 1.6e-2 with eight damped
          explicit sub-steps, burgers_flux (22) 2.9e-2 against 9.4e-3; on 97² (35 and 46)
          3.5e-2 and 5.1e-2 with it, 1.5e-3 and 4.1e-3 with eight sub-steps of three
          explicit predictor steps (RESULTS.md ``catalog_300s``).
        """
        choice = model_config.implicit_diffusion
        diffusing = constant_diffusivities(self.problem, self.problem.parameter_values())
        if choice is False or model_config.physics_input is False or not diffusing:
            return False
        if choice is True:
            return True
        if all(self.problem.periodic):
            return self.stiffness / MAX_AUTO_SUBSTEPS > STIFF_STEP
        return self.stiffness / (MAX_EXPLICIT_SUBSTEPS * MAX_PREDICTOR_STEPS) > STIFF_STEP

    def _implicit_filter(self, substeps: int) -> ImplicitDiffusion | None:
        return ImplicitDiffusion.for_problem(self.problem, self.physics.derivatives, self.problem.dt / substeps, dtype=self.dtype, device=self.device)

    def step_stiffness(self, substeps: int) -> float:
        """dt * rho of one network sub-step as the network sees it: the explicit step's, or
        with implicit diffusion the IMEX step's (``dt * rho(P J)``, see
        :mod:`phycrnet.implicit`), measured at the initial state."""
        if not self.implicit_diffusion:
            return self.stiffness / substeps
        if substeps not in self._step_stiffness:
            radius = self.physics.spectral_radius(*self._initial_state(), transform=self._implicit_filter(substeps))
            self._step_stiffness[substeps] = self.problem.dt / substeps * radius
        return self._step_stiffness[substeps]

    def measure_standstill_loss(self) -> float:
        """The loss (unweighted sum of its terms) of frames that all stay at the initial
        value: the scale of a useless solution. A loss that grows ``divergence_factor``
        times over the best seen is a blow-up only if it also grows that far over this: a
        network that starts as a good predictor (Heun's method) can begin at a loss 1e-8
        where an early Adam step to 1e-4 is harmless noise, not a divergence."""
        u0, _, parameters = self._initial_state()
        frames = u0.expand(self.n_network_steps + 1, *u0.shape[1:])
        t = self.t_network
        frames = self.physics.enforce(frames, t, parameters)
        with torch.no_grad():
            terms = self.physics.losses(frames, t, parameters, causal=self.config.causal)
        total = float(sum(float(v) for v in terms.values()))
        return total if math.isfinite(total) else 0.0

    def measure_step_weights(self) -> torch.Tensor:
        """``step_balance``: the weight of each network step's PDE residual, per field, is
        the untrained network's mean over steps divided by its residual at that step (at
        most ``STEP_BALANCE_LIMIT``), so that the untrained network's weighted residual is
        the same at every step and the loss asks every step for the same relative
        improvement instead of being held by the worst one. Measured once, on the
        untrained network with the initial coefficients (a resumed run measures the same:
        the network is rebuilt from the same seed before the checkpoint is loaded).
        ``"auto"`` (the default) balances where the untrained network is a classical step
        (the physics input, explicitly initialised), whose residual says where the
        discretisation, not the network, is hard; a random network's says nothing.

        Where the initial values violate the boundary conditions the first step's residual
        dominates the loss: on burgers_flux trained on 97², 99 % of it sits within three
        nodes of the boundary in the first step, and training that reduced it moved the
        solution from 6.1e-4 to 4.1e-3 (RESULTS.md, ``catalog_300s`` at 6dcd3e3). Ad hoc,
        300 s, one thread beside another run, balanced against not: burgers_flux 2.0e-3 and
        2.2e-3 (seeds 0, 1) against 4.4e-3 and 3.5e-3, burgers_mixed 1.45e-3 against
        1.54e-3, heat_flux 3.6e-4 against 7.1e-4, allen_cahn_periodic 2.8e-5 against
        2.6e-5."""
        parameters = self.problem.parameter_values()
        with torch.no_grad():
            frames = self.rollout()
            residual = self.physics.pde_residual(frames, self.t_network, parameters)
            per_step = torch.stack([self.physics.residual_mean_squares(residual, c) for c in range(residual.shape[1])], dim=1)
        mean = per_step.mean(dim=0, keepdim=True)
        weights = mean / per_step.clamp_min(1e-30)
        return torch.where(mean > 0, weights.clamp(max=STEP_BALANCE_LIMIT), torch.ones_like(weights))

    def measure_peclet(self) -> float:
        """The largest cell Peclet number at the initial state (see
        :meth:`Physics.cell_peclet_number`)."""
        return self.physics.cell_peclet_number(*self._initial_state())

    def _initial_state(self) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """``(u0 with its boundary values, t = 0, parameters at their initial values)``."""
        parameters = self.problem.parameter_values()
        t0 = torch.zeros(1, dtype=self.dtype, device=self.device)
        return self.physics.enforce(self.u0, t0, parameters), t0, parameters

    def automatic_physics_input(self) -> bool:
        """Whether ``physics_input: auto`` feeds the right-hand side F to the decoder.

        Off where the grid does not resolve the transport: a cell Peclet number above
        ``PECLET_LIMIT`` (:meth:`Physics.cell_peclet_number`). An explicit step of an
        advection term that steepens fronts thinner than a cell is a poor predictor to
        correct: at 300 s, one thread (RESULTS.md), burgers_periodic (Peclet 6.3) reached
        3.0e-2 without F and 6.9e-2 with it, while burgers_phycrnet (Peclet 1.5, resolved)
        reached 8.3e-3 with F and 0.59 without. Below 5, F helped in every (shorter, ad hoc)
        trial: an advected Gaussian with Robin and Dirichlet sides at Peclet 2.2 (20 s:
        3.4e-3 with, 5.7e-3 without) and 4.3 (60 s: 8.8e-3 / 2.5e-2), burgers_mixed with
        nu = 0.01 at 3.1 (120 s: 3.2e-2 / 6.0e-2). Burgers at 6.3, too, was ahead with F at
        120 s, so the limit between 4.3 and 6.3 rests on that one 300 s comparison. Off as
        well where the predictor would have to be damped far beyond its stability limit
        (the rollout then blew up as soon as training gave F any weight): with implicit
        diffusion, where ``MAX_AUTO_SUBSTEPS`` IMEX sub-steps leave dt * rho above
        ``PHYSICS_INPUT_LIMIT``; without, where ``MAX_EXPLICIT_SUBSTEPS`` sub-steps of
        ``MAX_PREDICTOR_STEPS`` predictor steps each do.

        While a coefficient is learned (it enters F as a constant, see :meth:`rollout`), F
        is on only where one explicit step per frame would be unstable (``dt * rho`` of the
        explicit step above ``STIFF_STEP``, also where implicit diffusion would then make
        the network's own step stable): there the network cannot learn the stiff step on its own, and F is
        what makes it solve the problem at all (physics only: heat 0.18 without F, 9.2e-3
        with; burgers_phycrnet 0.59 / 8.3e-3). Where the step is not stiff, the network
        solves the problem without F, and F slowed identification down. From 5 % of the
        points with 5 % noise, one thread (RESULTS.md, Observations): burgers_phycrnet on
        32² (``dt * rho`` 4.0 at the initial nu), nu within 0.56 %, 0.72 % and 0.92 % with
        F (seeds 0, 1, 2; 500 iterations, 600 s) against 0.46 %, 2.4 % and 6.2 % without
        (3000 iterations, 750 - 800 s); Allen-Cahn (2.0 at the initial eps, ad hoc), eps
        within 2.7 % and 5.3 % with F (seeds 0, 1; 1000 iterations and 120 s) against
        0.49 % and 2.1 % without. On otherwise (Allen-Cahn 5.4e-4 -> 2.9e-4 at 120 s,
        heat 0.18 -> 9.2e-3).
        """
        if self.peclet > PECLET_LIMIT:
            return False
        learned = any(p.learn for p in self.problem.parameters.values())
        if learned and self.stiffness <= STIFF_STEP:  # the explicit step's, whatever the network gets
            return False
        if self.implicit_diffusion:
            return self.step_stiffness(MAX_AUTO_SUBSTEPS) <= PHYSICS_INPUT_LIMIT
        return self.stiffness / (MAX_EXPLICIT_SUBSTEPS * MAX_PREDICTOR_STEPS) <= PHYSICS_INPUT_LIMIT

    def automatic_substeps(self, physics_input: bool) -> int:
        """Network steps per output frame when ``substeps`` is 0 (automatic).

        With the right-hand side fed to the decoder (``physics_input``) a network step is a
        learned correction to an explicit step (an IMEX step with implicit diffusion), which
        trains well within that step's stability limit (dt * rho = 2 on the negative real
        axis) and worse beyond it. So: the fewest sub-steps that bring the step's dt * rho
        (:meth:`step_stiffness`) to ``STIFF_STEP`` (that limit) or below, at most
        ``MAX_EXPLICIT_SUBSTEPS`` (each one costs a full network step; beyond it each
        network step takes several predictor steps, see
        :meth:`automatic_predictor_steps`). One without
        ``physics_input``. Measured ad hoc at 300 s, one thread, two runs side by side:
        heat (dt * rho = 9.1) 1.1e-2 with three sub-steps, 3.6e-3 with four (stop 12;
        1.7e-3 at stop 14) and 7.3e-4 with five; diffusion-reaction (3.7) 4.5e-3 with one
        or two; burgers_phycrnet (8.0) 8.3e-3 with three and 9.7e-3 with four; trained on
        65² (``refine: 2``), burgers_mixed (16.2) 3.2e-2 with four (damped), 1.8e-2 with six
        and 1.6e-2 with eight, burgers_flux (21.7) 5.5e-2 with four, 1.0e-2 with eight.
        """
        if not physics_input:
            return 1
        if self.implicit_diffusion:
            # The IMEX step is stable at any dt, but its splitting of diffusion from the rest
            # is only first order: sub-steps buy accuracy (ad hoc, 120 s, one thread:
            # FitzHugh-Nagumo 2.0e-2 with one, 6.1e-3 with four; Gray-Scott 0.37 / 0.16).
            return MAX_AUTO_SUBSTEPS
        stable = (s for s in range(1, MAX_EXPLICIT_SUBSTEPS + 1) if self.step_stiffness(s) <= STIFF_STEP * (1 + 1e-9))
        return next(stable, MAX_EXPLICIT_SUBSTEPS)

    def automatic_predictor_steps(self) -> int:
        """Predictor steps per network step for ``predictor_steps: auto``: the fewest that
        bring each one's ``dt * rho`` to ``STIFF_STEP`` or below, at most
        ``MAX_PREDICTOR_STEPS`` (beyond that the gain is damped, see
        :meth:`explicit_step_gain`); 1 with implicit diffusion (whose filter is built for the
        network's step).

        Where the network step itself is beyond the explicit limit, the single step had to
        be damped, and the untrained network then solved a different problem: burgers_flux
        trained on 65² with eight sub-steps (dt * rho 2.7 per sub-step, gain 0.66) started
        at 0.47 from the reference, burgers_mixed (2.0, gain 0.89) at 0.14. Two predictor
        steps start them at 3.0e-3 and 1.6e-2, their discretisation floors on that grid
        (3.1e-3 and 1.6e-2, RESULTS.md ``floors_refined``); on 97², three predictor steps
        start them at 6.1e-4 and 1.4e-3. The network then starts as a classical solver of
        its own equations and learns only what is left (which on burgers_flux, whose
        initial values violate its flux conditions, moved it away from that start: 4.1e-3
        after 300 s).
        """
        if self.implicit_diffusion:
            return 1
        per_step = self.step_stiffness(self.substeps)
        return min(MAX_PREDICTOR_STEPS, max(1, math.ceil(per_step / STIFF_STEP * (1 - 1e-9))))

    def explicit_step_gain(self) -> float:
        """The gain on F for ``physics_init: explicit``: 1, or less where a full explicit
        predictor step would be unstable (``dt * rho`` per predictor step above
        ``STIFF_STEP``), so that the untrained rollout stays bounded."""
        per_step = self.step_stiffness(self.substeps * self.predictor_steps)
        return 1.0 if per_step <= STIFF_STEP else 0.9 * STIFF_STEP / per_step

    def _create_weighting_parameters(self) -> None:
        """Lazily created weighting parameters (``uncertainty``) must exist for the optimiser."""
        if not hasattr(self.weighting, "log_variances"):
            return
        with torch.no_grad():
            n = self.min_window
            self.weighting.combine(self.losses(self.rollout(n), n), 0)

    # -- model evaluation ----------------------------------------------------------------
    def _parameter_groups(self) -> list[dict[str, Any]]:
        """Adam groups: the networks at the scheduled lr, learnable coefficients at
        ``coefficient_lr_factor`` times it (a handful of scalars with clean gradients)."""
        groups = [{"params": list(self.model.parameters()) + list(self.weighting.parameters()), "factor": 1.0}]
        coefficients = list(self.coefficients.parameters())
        if coefficients:
            groups.append({"params": coefficients, "factor": self.config.coefficient_lr_factor, "coefficients": True})
        return groups

    def _trainable(self, *, coefficients: bool = True) -> list[nn.Parameter]:
        learned = list(self.coefficients.parameters()) if coefficients else []
        return list(self.model.parameters()) + learned + list(self.weighting.parameters())

    def coefficients_frozen(self) -> bool:
        """Whether learnable coefficients are held, in the Adam and the L-BFGS phase alike.

        They are learned from ``coefficient_warmup`` (default 0) to ``identification_share``
        (default 1: the end) of the run. Before: against an untrained network's residual
        they run to wherever that residual is smallest (on Burgers the viscosity went to its
        lower bound within 60 iterations), so a warm-up lets the network first fit the data.
        After: the data weight decays (:class:`phycrnet.observations.DataLoss`), and a
        coefficient still learned would follow the residual of the network's imperfect
        solution instead of the data (on Burgers from 7.6 % to 21 % off).
        """
        p = self.progress_fraction()
        return p < self.config.coefficient_warmup or p >= self.config.identification_share

    def _step_time(self, k: int) -> torch.Tensor:
        """Time of network step ``k`` as a ``(1,)`` tensor (also past the training window)."""
        return self._time(k * self.dt_network)

    def _time(self, t: float) -> torch.Tensor:
        return torch.full((1,), t, dtype=self.dtype, device=self.device)

    def _constrain(self, parameters):
        def constrain(k: int, u: torch.Tensor) -> torch.Tensor:
            return self.physics.enforce(u, self._step_time(k), parameters)

        return constrain if self.physics.hard else None

    def _rhs(self, parameters, record: list[torch.Tensor]):
        """The network's physics input at step k: the mean direction of ``predictor_steps``
        steps of the predictor (``physics_predictor``: explicit Euler, or Heun's average of F
        at the start and at the end of the explicit step), each direction filtered by the
        implicit diffusion where it applies, and each intermediate state given its boundary
        values in hard mode. With one step it is F(u_k) or Heun's average itself. F(u_k) is
        kept in ``record`` (the residual reuses it)."""
        h = self.dt_network / self.predictor_steps
        gain = self.input_gain

        def direction(value: torch.Tensor) -> torch.Tensor:
            return value if self.input_filter is None else self.input_filter(value)

        def enforce(v: torch.Tensor, t: float) -> torch.Tensor:
            return self.physics.enforce(v, self._time(t), parameters) if self.physics.hard else v

        def predictor_direction(v: torch.Tensor, t: float, first: torch.Tensor | None = None) -> torch.Tensor:
            if first is None:
                first = direction(self.physics.rhs(v, self._time(t), parameters))
            if self.model.config.physics_predictor == "euler":
                return first
            stage = enforce(v + h * gain * first, t + h)
            return 0.5 * (first + direction(self.physics.rhs(stage, self._time(t + h), parameters)))

        def rhs(k: int, u: torch.Tensor) -> torch.Tensor:
            t = k * self.dt_network
            value = self.physics.rhs(u, self._time(t), parameters)
            record.append(value)
            step = predictor_direction(u, t, direction(value))
            total, v = step, u
            for j in range(1, self.predictor_steps):
                # The interior of u + dt_network * gain * mean is then exactly the end of the
                # predictor's steps (the boundary values are imposed after the network step).
                v = enforce(v + h * gain * step, t + j * h)
                step = predictor_direction(v, t + j * h)
                total = total + step
            return total / self.predictor_steps

        return rhs

    def rollout(self, n_steps: int | None = None, *, parameters=None) -> torch.Tensor:
        """Network frames ``(n_steps + 1, C, ny, nx)`` at spacing ``dt / substeps``."""
        n_steps = self.n_network_steps if n_steps is None else n_steps
        parameters_given = parameters
        parameters = parameters if parameters is not None else self.coefficients.values()
        u0 = self.physics.enforce(self.u0, self.t_network[:1], parameters)
        record: list[torch.Tensor] = []
        # The physics input is a predictor, not part of the physics: a learned coefficient
        # enters it as a constant, so the coefficient is identified by the residual and the
        # data alone (not by how well an explicit step with it predicts).
        learned = bool(self.coefficients.raw)
        input_parameters = {n: v.detach() if torch.is_tensor(v) else v for n, v in parameters.items()} if learned else parameters
        rhs = self._rhs(input_parameters, record) if self.model.config.physics_input else None
        frames, _ = self.model(u0, n_steps, self.dt_network, constrain=self._constrain(parameters), rhs=rhs)
        frames = frames[:, 0]
        # The residual reuses F of the frames the network already saw (same parameters,
        # and only where F there still carries the coefficients' gradient).
        reusable = record and parameters_given is None and not learned
        self._known_rhs = (frames, torch.cat(record)) if reusable else None
        return frames

    def losses(self, frames: torch.Tensor, n_steps: int) -> dict[str, torch.Tensor]:
        parameters = self.coefficients.values()
        t = self.t_network[: n_steps + 1]
        known = self._known_rhs[1] if self._known_rhs is not None and self._known_rhs[0] is frames else None
        terms = self.physics.losses(frames, t, parameters, causal=self.config.causal, known_rhs=known, step_weights=self.step_weights)
        if self.extra_losses is not None:
            terms.update(self.extra_losses(frames, t, parameters))
        return terms

    def _gradient_norms(self, losses) -> dict[str, tuple[float, float]]:
        params = [p for p in self.model.parameters() if p.requires_grad]
        norms = {}
        for name, value in losses.items():
            grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
            flat = torch.cat([g.abs().flatten() for g in grads if g is not None])
            norms[name] = (float(flat.max()), float(flat.mean()))
        return norms

    # -- schedule ------------------------------------------------------------------------
    def progress_fraction(self) -> float:
        fractions = [0.0]
        cap = self.config.total_iterations()
        if cap:
            fractions.append(self.iteration / cap)
        if self.config.time_budget:
            fractions.append(self.seconds / self.config.time_budget)
        return min(1.0, max(fractions))

    def learning_rate(self, p: float) -> float:
        c = self.config
        factor = schedule_factor(c.schedule, p, lr_decay=c.lr_decay, decay_every=c.decay_every, final_lr_ratio=c.final_lr_ratio)
        return c.lr * factor * self.lr_scale

    def window(self, p: float) -> int:
        """Network steps trained on at progress ``p`` (time marching grows the window)."""
        stages = self.config.time_marching
        if stages <= 1:
            return self.n_network_steps
        # Windows grow over the first half of the run; the second half trains on everything.
        stage = min(stages, 1 + int(p * 2 * stages))
        return max(self.min_window, math.ceil(self.n_network_steps * stage / stages))

    def _finished(self) -> str | None:
        cap = self.config.total_iterations()
        if cap is not None and self.iteration >= round(cap * (1 - self.config.lbfgs_fraction)):
            return "iterations"
        if self.config.time_budget is not None and self.seconds >= self.config.time_budget * (1 - self.config.lbfgs_fraction):
            return "time budget"
        return None

    # -- the loop ------------------------------------------------------------------------
    def train(self, callback: Callable[[Trainer], None] | None = None) -> TrainingResult:
        """Run Adam (then L-BFGS if asked) until the iteration cap or the time budget.

        ``callback(trainer)``, if given, runs after every Adam iteration; its time is not
        counted as training time (benchmarks use it to record error curves).
        """
        bar = _ProgressBar(self.progress)
        stopped_by = self._finished()
        try:
            while stopped_by is None:
                start = time.perf_counter()
                terms, total = self._adam_step()
                self.seconds += time.perf_counter() - start
                self.iteration += 1
                self._after_step(terms, total)
                bar.update(self, terms)
                if callback is not None:
                    callback(self)
                stopped_by = self._finished()
            if self.config.lbfgs_fraction > 0:
                self._lbfgs()
        finally:
            bar.close()
            self._flush_log()
        if self.checkpoint_path is not None:
            self.save_checkpoint()
        return self._result(stopped_by or "iterations")

    def _adam_step(self) -> tuple[dict[str, float], float]:
        p = self.progress_fraction()
        lr = self.learning_rate(p)
        frozen = self.coefficients_frozen()
        for group in self.optimizer.param_groups:
            group["lr"] = 0.0 if frozen and group.get("coefficients") else lr * group.get("factor", 1.0)
        n = self.window(p)
        frames = self.rollout(n)
        losses = self.losses(frames, n)
        total = self.weighting.combine(losses, self.iteration)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        terms = {k: float(v.detach()) for k, v in losses.items()}
        total_value = float(total.detach())
        self.logged_parameters = self.coefficients.learned()
        if _finite(terms, total_value):
            raw = sum(terms.values())
            if n == self.n_network_steps and raw < self.best_loss:
                # The parameters that produced this loss are the ones before the step.
                self.best_loss = raw
                self.best_state = self._snapshot()
            self.optimizer.step()
        self.current_lr = lr
        return terms, total_value

    def _after_step(self, terms: dict[str, float], total: float) -> None:
        raw = sum(terms.values())
        exploded = raw > self.config.divergence_factor * max(self.best_loss, self.standstill_loss)
        if not _finite(terms, total) or (self.iteration > 20 and exploded):
            self._recover(raw)
            return
        self.last_terms = terms
        if self.iteration % self.config.log_every == 0 or self.iteration == 1:
            self._log(terms, total)
        if self.checkpoint_path is not None and self.seconds - self._last_checkpoint >= self.config.checkpoint_every:
            self.save_checkpoint()

    def _recover(self, raw: float) -> None:
        if self.best_state is None or self.recoveries >= self.config.max_recoveries:
            raise DivergenceError(
                f"training diverged at iteration {self.iteration} (loss {raw:.3g}, best {self.best_loss:.3g}); "
                "no result was written — try a smaller learning rate (--lr)"
            )
        self.recoveries += 1
        self.lr_scale *= 0.5
        self._restore(self.best_state)
        # Adam's moments as they were at the best state: cleared moments make the next
        # steps about lr in every weight at once, which threw a Gray-Scott run (dt = 5,
        # 100 steps) straight back into a blow-up, three times in 14 iterations.
        if "optimizer" in self.best_state:
            self.optimizer.load_state_dict(self.best_state["optimizer"])
        else:  # a best state from a checkpoint written before the moments were kept
            self.optimizer.state.clear()

    def _lbfgs(self) -> None:
        """L-BFGS on the weighted loss with the weights frozen at their last values.

        Runs until the time budget or the iteration cap. Every loss-and-gradient evaluation
        (line-search trials included) counts as one iteration, so an iteration costs about
        the same in both phases; each outer step is up to 20 L-BFGS iterations with a
        strong-Wolfe line search. A non-finite loss restarts L-BFGS from the best state with
        half the previous step length (at most ``LBFGS_RESTARTS`` times) instead of ending
        the phase: a restart with the same step length retraces the same path into the same
        blow-up (a heat run spent its restarts that way and stopped 90 s early). An outer
        step that ends where it started (the line search found no decrease) clears the
        curvature history: without that, every later step repeats the same failed search
        and the rest of the budget is spent standing still (seen on heat_flux, where the
        loss froze at 3.9e-4 for the last 40 % of the run).

        The best state is tracked exactly: the first evaluation of an outer step is the loss
        of the state the previous step ended in, which is snapshotted before the step.
        """
        if self.best_state is not None:
            self._restore(self.best_state)
        if not self.weighting.weights:  # no Adam step ran: let the scheme weigh the start
            self.weighting.combine(self.losses(self.rollout(), self.n_network_steps), self.iteration)
        weights = dict(self.weighting.weights)

        # L-BFGS minimises the loss divided by its value where the current curvature history
        # began. torch's LBFGS tests absolute thresholds (gradient 1e-7, change 1e-9,
        # curvature y·s 1e-10); on an unscaled loss of 6e-7 (Allen-Cahn after Adam) the first
        # of them ended every outer step after one evaluation, and the phase did nothing.
        record: dict[str, Any] = {"evaluations": 0, "scale": None}

        def fresh_optimizer() -> torch.optim.LBFGS:
            """An empty curvature history, its loss scale taken at its first evaluation."""
            record["scale"] = None
            record["frozen"] = frozen = self.coefficients_frozen()
            self.lbfgs_step_length = step_length = 0.5**restarts
            parameters = self._trainable(coefficients=not frozen)
            return torch.optim.LBFGS(parameters, lr=step_length, max_iter=20, history_size=50, line_search_fn="strong_wolfe")

        restarts = 0
        optimizer = fresh_optimizer()
        evaluations_per_step = optimizer.defaults["max_eval"]
        previous_start = math.inf
        budget, cap = self.config.time_budget, self.config.total_iterations()

        def closure() -> torch.Tensor:
            if cap is not None and self.iteration + record["evaluations"] >= cap:
                raise _EvaluationCapReached
            if budget and record["evaluations"] and self.seconds + time.perf_counter() - record["began"] >= budget:
                raise _EvaluationCapReached  # a step (its line search) running on past the budget
            record["evaluations"] += 1
            optimizer.zero_grad(set_to_none=True)
            losses = self.losses(self.rollout(), self.n_network_steps)
            total = sum(weights.get(k, 1.0) * v for k, v in losses.items())
            if record["scale"] is None:
                value = float(total.detach())
                record["scale"] = 1.0 / value if math.isfinite(value) and value > 0 else 1.0
            scaled = total * record["scale"]
            scaled.backward()
            record["terms"] = {k: float(v.detach()) for k, v in losses.items()}
            if record["evaluations"] == 1:  # the state the outer step starts from
                record["start"] = (record["terms"], float(total.detach()))
            return scaled.detach()

        while not ((budget and self.seconds >= budget) or (cap is not None and self.iteration >= cap)):
            if record["frozen"] != self.coefficients_frozen():
                optimizer = fresh_optimizer()  # the coefficients join or leave
            # End the outer step at the iteration cap and at the evaluations the time budget
            # still has room for (an outer step of up to 25 evaluations at 9 s each, Burgers
            # on 97², overran a 300 s budget by 130 s). A line search may still run into
            # either; the closure then stops it (below).
            allowed = evaluations_per_step
            if cap is not None:
                allowed = min(allowed, cap - self.iteration)
            if budget and self.iteration > 0:
                per_evaluation = self.seconds / self.iteration
                allowed = min(allowed, max(1, math.ceil((budget - self.seconds) / per_evaluation)))
            optimizer.param_groups[0]["max_eval"] = allowed
            record["evaluations"] = 0
            before = self._snapshot()
            start = record["began"] = time.perf_counter()
            try:
                total = float(optimizer.step(closure).detach())
            except _EvaluationCapReached:
                # The cap or the budget fell inside a line search: keep the state the last
                # step ended in.
                self.seconds += time.perf_counter() - start
                self.iteration += record["evaluations"]
                self._restore(before)
                if record["evaluations"]:
                    self._log(*record["start"])
                break
            self.seconds += time.perf_counter() - start
            self.iteration += record["evaluations"]
            terms = record["terms"]
            start_terms, start_total = record["start"]
            self._track_best(start_terms, before)
            if not _finite(terms, total):
                # A line search stepped into a rollout that blew up: go back to the best
                # state and start afresh with an empty history and a shorter step.
                restarts += 1
                if self.best_state is None or restarts > LBFGS_RESTARTS:
                    break
                self._restore(self.best_state)
                optimizer = fresh_optimizer()
                continue
            if start_total >= previous_start * (1 - LBFGS_STALL_TOLERANCE):
                optimizer = fresh_optimizer()
                self.lbfgs_stalls += 1
            previous_start = start_total
            self.last_terms = start_terms
            self.logged_parameters = self.coefficients.learned()
            self._log(start_terms, start_total)
        self._evaluate_final_state()

    def _track_best(self, terms: dict[str, float], state: dict[str, Any]) -> None:
        """Keep ``state`` as the best one if its (finite) loss ``terms`` beat the best so far."""
        raw = sum(terms.values())
        if _finite(terms, raw) and raw < self.best_loss:
            self.best_loss = raw
            self.best_state = state

    def _evaluate_final_state(self) -> None:
        """Score the state the last L-BFGS step ended in (no later step evaluated it)."""
        start = time.perf_counter()
        with torch.no_grad():
            losses = self.losses(self.rollout(), self.n_network_steps)
        self.seconds += time.perf_counter() - start
        self._track_best({k: float(v) for k, v in losses.items()}, self._snapshot())

    # -- state ---------------------------------------------------------------------------
    def _snapshot(self) -> dict[str, Any]:
        return {
            "model": copy.deepcopy(self.model.state_dict()),
            "coefficients": copy.deepcopy(self.coefficients.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
        }

    def _restore(self, snapshot: dict[str, Any]) -> None:
        self.model.load_state_dict(snapshot["model"])
        self.coefficients.load_state_dict(snapshot["coefficients"])

    def _result(self, stopped_by: str) -> TrainingResult:
        if self.best_state is not None:
            self._restore(self.best_state)
        with torch.no_grad():
            frames = self.rollout()
            terms = {k: float(v) for k, v in self.losses(frames, self.n_network_steps).items()}
        if not _finite(terms, 0.0):
            raise DivergenceError("training ended with a non-finite solution; no result was written")
        frames = frames[:: self.substeps].cpu().double().numpy()
        return TrainingResult(
            frames=frames,
            iterations=self.iteration,
            seconds=self.seconds,
            loss_terms=terms,
            best_loss=self.best_loss,
            parameters=self.coefficients.learned(),
            stopped_by=stopped_by,
        )

    def extrapolate(self, n_frames: int) -> np.ndarray:
        """Frames ``(n_steps + n_frames + 1, C, ny, nx)``: the training window rolled on."""
        with torch.no_grad():
            frames = self.rollout(self.n_network_steps + n_frames * self.substeps)
        return frames[:: self.substeps].cpu().double().numpy()

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION,
            "spec": _problem_key(self.problem),
            "config": self.config.model_dump(mode="json"),
            "model": self.model.state_dict(),
            "coefficients": self.coefficients.state_dict(),
            "weighting": self.weighting.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "iteration": self.iteration,
            "seconds": self.seconds,
            "lr_scale": self.lr_scale,
            "recoveries": self.recoveries,
            "best_loss": self.best_loss,
            "best_state": self.best_state,
            "last_terms": self.last_terms,
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()},
        }

    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically (temporary file, then rename)."""
        self._flush_log()
        path = self.checkpoint_path
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            torch.save(self.state_dict(), temporary)
            os.replace(temporary, path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        self._last_checkpoint = self.seconds

    def load_checkpoint(self, path: Path) -> None:
        """Continue from a checkpoint written by :meth:`save_checkpoint`."""
        from phycrnet.errors import DataError

        try:
            state = torch.load(path, map_location=self.device, weights_only=False)
        except FileNotFoundError:
            raise DataError(f"--resume: no checkpoint at {path}") from None
        except Exception as exc:  # a truncated or foreign file
            raise DataError(f"--resume: {path} is not a readable checkpoint ({type(exc).__name__})") from None
        if state.get("version") != CHECKPOINT_VERSION:
            raise DataError(f"--resume: {path} was written by an incompatible version")
        if state["spec"] != _problem_key(self.problem):
            raise DataError(f"--resume: {path} belongs to a different spec")
        try:
            self.model.load_state_dict(state["model"])
            self.coefficients.load_state_dict(state["coefficients"])
            self.weighting.load_state_dict(state["weighting"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"--resume: {path} does not fit this run's network or weighting ({first})") from None
        self.iteration = state["iteration"]
        self.seconds = state["seconds"]
        self.lr_scale = state["lr_scale"]
        self.recoveries = state["recoveries"]
        self.best_loss = state["best_loss"]
        self.best_state = state["best_state"]
        self.last_terms = state["last_terms"]
        self._last_checkpoint = self.seconds
        torch.set_rng_state(state["rng"]["torch"].cpu())
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        self._truncate_log()

    # -- logging -------------------------------------------------------------------------
    def _log(self, terms: dict[str, float], total: float) -> None:
        if self.log_path is None:
            return
        row: dict[str, Any] = {
            "iteration": self.iteration,
            "seconds": round(self.seconds, 4),
            "lr": self.current_lr,
            "loss": total,
        }
        row.update(terms)
        row.update({f"w_{k}": v for k, v in self.weighting.weights.items()})
        row.update({f"param_{k}": v for k, v in self.logged_parameters.items()})
        self._log_rows.append(row)
        if len(self._log_rows) >= LOG_FLUSH_ROWS or time.monotonic() - self._log_flushed_at > LOG_FLUSH_SECONDS:
            self._flush_log()

    def _flush_log(self) -> None:
        if self.log_path is None or not self._log_rows:
            return
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        new_file = not self.log_path.exists() or self.log_path.stat().st_size == 0
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
        self._log_flushed_at = time.monotonic()

    def _truncate_log(self) -> None:
        """Drop log rows written after the checkpoint we resume from."""
        if self.log_path is None or not self.log_path.exists():
            return
        with open(self.log_path, newline="") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            return
        kept = [rows[0]] + [r for r in rows[1:] if r and int(float(r[0])) <= self.iteration]
        with open(self.log_path, "w", newline="") as handle:
            csv.writer(handle).writerows(kept)


def schedule_factor(schedule: str, p: float, *, lr_decay: float, decay_every: float, final_lr_ratio: float) -> float:
    """Learning-rate multiplier at progress ``p`` in [0, 1] for the named schedule."""
    if schedule == "step":
        return lr_decay ** math.floor(p / decay_every + 1e-12)
    if schedule == "cosine":
        return final_lr_ratio + (1 - final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p))
    if schedule == "exponential":
        return final_lr_ratio**p
    return 1.0


def _problem_key(problem: Problem) -> str:
    """The parts of a spec a checkpoint depends on (not its training options or text)."""
    import yaml

    data = problem.model.model_dump(mode="json", exclude_none=True, exclude={"training", "description", "name"})
    return yaml.safe_dump(data, sort_keys=True)


class _EvaluationCapReached(Exception):
    """Raised by the L-BFGS closure when one more evaluation would pass the iteration cap,
    or when a line search runs on past the time budget."""


def _finite(terms: dict[str, float], total: float) -> bool:
    return math.isfinite(total) and all(math.isfinite(v) for v in terms.values())


def _seed_everything(seed: int) -> None:
    """Seed every generator; on CUDA also pick deterministic cuDNN kernels, so that a run
    and its resumed twin produce the same numbers (the kernels are a little slower)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


class _ProgressBar:
    """A rich progress bar with the loss terms; silent when not on a terminal."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.bar = None
        if not self.enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"), TimeElapsedColumn(), transient=False)
        self.bar.start()
        self.task = self.bar.add_task("training", total=1000)
        self._last = 0.0

    def update(self, trainer: Trainer, terms: dict[str, float]) -> None:
        if not self.enabled or time.perf_counter() - self._last < 0.25:
            return
        self._last = time.perf_counter()
        shown = "  ".join(f"{k} {v:.2e}" for k, v in list(terms.items())[:4])
        self.bar.update(self.task, completed=1000 * trainer.progress_fraction(), description=f"it {trainer.iteration}  {shown}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
