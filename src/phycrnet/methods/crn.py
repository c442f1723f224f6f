"""PhyCRNet as a training task: the network's rollout and its physics loss.

:class:`CrnTask` supplies the engine (:mod:`phycrnet.training.engine`) with the
network, the learnable coefficients, the rollout and the loss terms. The choices it
builds on are resolved beforehand (:func:`phycrnet.methods.resolve.resolve`).

* The network steps ``substeps`` times per output frame. With the physics input, the
  decoder sees the explicit predictor's direction (:class:`~phycrnet.physics.Predictor`);
  a learned coefficient enters the predictor as a constant, so it is identified by the
  residual and the data alone, not by how well an explicit step with it predicts.
* With ``physics_init: explicit`` the output layer starts as the identity on that input,
  so the untrained network is the predictor: a classical explicit solver.
* ``step_balance`` divides each network step's PDE residual by the untrained network's
  residual at that step (at most ``step_balance_limit``), measured once: the loss then
  asks every step for the same relative improvement, instead of being held by a step the
  discretisation cannot satisfy (initial values that violate the boundary conditions).
* With ``memory_budget_gb`` the rollout is recomputed in segments during the backward pass
  (:mod:`phycrnet.training.memory`), and so is the residual (in chunks of steps chosen
  from the same budget); the residual then evaluates F itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import torch
import torch.utils.checkpoint

from phycrnet.methods.classical import predictor_of
from phycrnet.methods.resolve import Resolved
from phycrnet.methods.run import NetworkTask, problem_key
from phycrnet.models.coefficients import Coefficients
from phycrnet.models.crn import PhyCRNet
from phycrnet.options import THRESHOLDS, CrnOptions
from phycrnet.physics import Physics, Predictor
from phycrnet.training.memory import saved_bytes, segment_length

ExtraLosses = Callable[[torch.Tensor, torch.Tensor, dict[str, Any]], dict[str, torch.Tensor]]
#: A network call ``(u0, n_steps, dt, constrain=..., rhs=...) -> (frames, state)``.
Network = Callable[..., tuple[torch.Tensor, Any]]


class CrnTask(NetworkTask):
    """The PhyCRNet network on one (training) problem.

    Args:
        resolved: the resolved choices; ``resolved.problem`` is the training problem.
        options: the run's options.
        device, dtype: where and in what precision to compute.
        extra_losses: ``f(frames, t, parameters) -> {name: loss}`` added to the physics
            terms (a data misfit, for example).
    """

    members = 1
    model: PhyCRNet

    def __init__(self, resolved: Resolved, options: CrnOptions, *, device: torch.device, dtype: torch.dtype, extra_losses: ExtraLosses | None = None) -> None:
        problem = self.problem = resolved.problem
        self.resolved, self.options = resolved, options
        self.device, self.dtype = device, dtype
        self.key = problem_key(problem, "phycrnet")
        self.physics = Physics(problem, options.physics, dtype=dtype, device=device)
        self.u0 = torch.as_tensor(problem.initial_values(), dtype=dtype, device=device).unsqueeze(0)
        self.dt_network = problem.dt / resolved.substeps
        self.n_network_steps = problem.n_steps * resolved.substeps
        self.t_network = torch.arange(self.n_network_steps + 1, dtype=dtype, device=device) * self.dt_network
        self.predictor = predictor_of(self.physics, resolved, options.model.physics_predictor) if resolved.physics_input else None
        self.model = self._network()
        self.coefficients = Coefficients(problem, dtype).to(device)
        self.coefficient_lr_factor = options.training.coefficient_lr_factor
        self.extra_losses = extra_losses
        self.segment: int | None = None
        self.residual_chunk: int | None = None
        self._known_rhs: tuple[torch.Tensor, torch.Tensor] | None = None
        self.step_weights: torch.Tensor | None = None
        if options.training.memory_budget_gb is not None:
            budget = options.training.memory_budget_gb
            self.segment = segment_length(self.step_bytes(), self.n_network_steps, budget)
            chunks = [c for c in (self.segment, segment_length(self.residual_step_bytes(), self.n_network_steps, budget)) if c is not None]
            # The residual's transient tensors (FFTs, products) scale with the steps at once
            # too: it is formed in pieces no longer than the rollout's segments.
            self.residual_chunk = min(chunks) if chunks else None
        if resolved.step_balance:
            self.step_weights = self.measure_step_weights()

    def _network(self) -> PhyCRNet:
        r, problem = self.resolved, self.problem
        model = PhyCRNet(len(problem.fields), problem.grid.shape, problem.periodic, r.model(self.options.model), seed=self.options.training.seed)
        # The untrained step u + dt * y is a random linear recurrence through the decoder's
        # input skip; keep its growth per step what it is at the reference step (an
        # untrained Gray-Scott rollout, dt = 5, otherwise reached losses of 1e31).
        model.scale_output(r.output_scale)
        if r.physics_input and not self.options.model.head_channels and self.options.model.physics_init == "explicit":
            model.start_as_explicit_step(r.input_gain)
        return model.to(device=self.device, dtype=self.dtype)

    # -- the task interface ---------------------------------------------------------------
    def windows(self, curriculum: tuple[int, ...] | None) -> list[int | None]:
        """Network steps of each curriculum stage (``None``: every step); the central
        scheme needs at least two steps."""
        shortest = 2 if self.options.physics.time_scheme == "central" else 1
        stages = [max(shortest, frames * self.resolved.substeps) for frames in (curriculum or ()) if frames < self.problem.n_steps]
        return [*stages, None]

    def prepare(self, phase: str, iteration: int) -> None:
        """Nothing to prepare: the residual lives on the grid."""

    def losses(self, window: int | None, phase: str) -> dict[str, torch.Tensor]:
        n_steps = self.n_network_steps if window is None else window
        return self.loss_terms(self.rollout(n_steps), n_steps)

    def standstill_loss(self) -> torch.Tensor:
        """The loss of frames that all stay at the initial value: the scale of a useless
        solution (a blow-up is judged against it as well as against the best loss)."""
        parameters = self.problem.parameter_values()
        frames = self.physics.enforce(self._u0_enforced(parameters).expand(self.n_network_steps + 1, *self.u0.shape[1:]), self.t_network, parameters)
        with torch.no_grad():
            terms = self.physics.losses(frames, self.t_network, parameters, causal=self.options.training.causal, chunk=self.residual_chunk)
        total = torch.stack([v.reshape(()) for v in terms.values()]).sum().double()
        return torch.nan_to_num(total, nan=0.0, posinf=0.0).reshape(1).cpu()

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """No state outside the modules."""

    # -- rollout and loss -----------------------------------------------------------------
    def _u0_enforced(self, parameters: dict[str, Any]) -> torch.Tensor:
        return self.physics.enforce(self.u0, self.t_network[:1], parameters)

    def rollout(self, n_steps: int | None = None, *, parameters: dict[str, Any] | None = None) -> torch.Tensor:
        """Network frames ``(n_steps + 1, C, ny, nx)`` at spacing ``dt / substeps``."""
        n_steps = self.n_network_steps if n_steps is None else n_steps
        given = parameters is not None
        parameters = parameters if parameters is not None else self.coefficients.values()
        learned = bool(self.coefficients.raw)
        # The physics input is a predictor, not part of the physics: a learned coefficient
        # enters it as a constant.
        inputs = {n: v.detach() if torch.is_tensor(v) else v for n, v in parameters.items()} if learned else parameters
        record: list[torch.Tensor] = []
        segmented = self.segment is not None and torch.is_grad_enabled() and n_steps > self.segment
        # Under a memory budget F is not kept for the residual (a copy of every frame).
        keep = self.options.training.memory_budget_gb is None
        rhs = self._physics_input(inputs, record if keep else None)
        constrain = self._constrain(parameters)
        u0 = self._u0_enforced(parameters)
        if segmented:
            frames = self._segmented_rollout(u0, n_steps, constrain, rhs)
        else:
            frames = self.model(u0, n_steps, self.dt_network, constrain=constrain, rhs=rhs)[0][:, 0]
        # The residual reuses F of the frames the network already saw (same parameters,
        # and only where F there still carries the coefficients' gradient).
        self._known_rhs = (frames, torch.cat(record)) if record and not given and not learned else None
        return frames

    def _physics_input(self, parameters: dict[str, Any], record: list[torch.Tensor] | None, predictor: Predictor | None = None) -> Callable[[int, torch.Tensor], torch.Tensor] | None:
        predictor = predictor or self.predictor
        if predictor is None:
            return None
        return lambda k, u: predictor.direction(u, k * self.dt_network, parameters, record)

    def _constrain(self, parameters: dict[str, Any]) -> Callable[[int, torch.Tensor], torch.Tensor] | None:
        if not self.physics.hard:
            return None
        return lambda k, u: self.physics.enforce(u, self.t_network.new_full((1,), k * self.dt_network), parameters)

    def _segmented_rollout(self, u0: torch.Tensor, n_steps: int, constrain: Any, rhs: Any) -> torch.Tensor:
        """The rollout recomputed segment by segment in the backward pass."""
        assert self.segment is not None
        state = self.model.initial_hidden(1)
        pieces, u = [u0.unsqueeze(0)], u0

        def segment(u: torch.Tensor, h: torch.Tensor, c: torch.Tensor, start: int, steps: int) -> tuple[torch.Tensor, ...]:
            frames, (h, c) = self.model(u, steps, self.dt_network, (h, c), constrain=constrain, rhs=rhs, start=start)
            return frames[1:], h, c

        for start in range(0, n_steps, self.segment):
            steps = min(self.segment, n_steps - start)
            frames, h, c = torch.utils.checkpoint.checkpoint(segment, u, *state, start, steps, use_reentrant=False)
            pieces.append(frames)
            u, state = frames[-1], (h, c)
        return torch.cat(pieces)[:, 0]

    def member_losses(self, network: Network, member: dict[str, Any], n_steps: int) -> dict[str, torch.Tensor]:
        """The loss terms of one member of a batch (:mod:`phycrnet.methods.batch`): a pure
        function of ``network`` (this network with the member's weights) and ``member``
        (its ``u0``, coefficient ``parameters``, predictor ``gain`` and ``step_weights``),
        which ``torch.func.vmap`` batches over the members."""
        parameters, record = member["parameters"], cast(list[torch.Tensor], [])
        predictor = self.predictor.with_gain(member["gain"]) if self.predictor is not None else None
        rhs = self._physics_input(parameters, record, predictor)
        u0 = self.physics.enforce(member["u0"], self.t_network[:1], parameters)
        frames = network(u0, n_steps, self.dt_network, constrain=self._constrain(parameters), rhs=rhs)[0][:, 0]
        known = torch.cat(record) if record else None
        t = self.t_network[: n_steps + 1]
        return self.physics.losses(frames, t, parameters, causal=self.options.training.causal, known_rhs=known, step_weights=member.get("step_weights"))

    def loss_terms(self, frames: torch.Tensor, n_steps: int) -> dict[str, torch.Tensor]:
        """Named loss terms of network frames ``frames`` (``n_steps + 1`` of them)."""
        parameters = self.coefficients.values()
        t = self.t_network[: n_steps + 1]
        known = self._known_rhs[1] if self._known_rhs is not None and self._known_rhs[0] is frames else None
        terms = self.physics.losses(
            frames, t, parameters, causal=self.options.training.causal, known_rhs=known, step_weights=self.step_weights, chunk=self.residual_chunk
        )
        if self.extra_losses is not None:
            terms.update(self.extra_losses(frames, t, parameters))
        return terms

    # -- measurements -----------------------------------------------------------------------
    def measure_step_weights(self) -> torch.Tensor:
        """``(S, C)`` weights of each network step's PDE residual, per field: the untrained
        network's mean over steps divided by its residual at that step (at most
        ``step_balance_limit``), with the initial coefficients. A resumed run measures the
        same (the network is rebuilt from the same seed before the checkpoint loads)."""
        parameters = self.problem.parameter_values()
        with torch.no_grad():
            frames = self.rollout(parameters=parameters)
            per_step = self.physics.step_mean_squares(frames, self.t_network, parameters, chunk=self.residual_chunk)
        mean = per_step.mean(dim=0, keepdim=True)
        weights = mean / per_step.clamp_min(1e-30)
        return torch.where(mean > 0, weights.clamp(max=THRESHOLDS.step_balance_limit), torch.ones_like(weights))

    def step_bytes(self) -> int:
        """Bytes autograd stores per network step of the rollout (measured on two steps)."""
        steps = min(2, self.n_network_steps)
        segment, self.segment = self.segment, None
        try:
            stored = saved_bytes(lambda: self.rollout(steps).sum())
        finally:
            self.segment = segment
        return stored // steps

    def residual_step_bytes(self) -> int:
        """Bytes autograd stores per network step of the loss terms (measured on four steps
        of the untrained rollout)."""
        steps = min(4, self.n_network_steps)
        with torch.no_grad():
            frames = self.rollout(steps)
        frames.requires_grad_(True)
        chunk, self.residual_chunk = self.residual_chunk, None
        try:
            stored = saved_bytes(lambda: sum(self.loss_terms(frames, steps).values()))
        finally:
            self.residual_chunk = chunk
        return stored // steps

    # -- output -------------------------------------------------------------------------------
    def frames(self, n_frames: int | None = None) -> torch.Tensor:
        """Output frames ``(n_frames + 1, C, ny, nx)`` on the training grid, at the frame
        times (past ``t_end`` when ``n_frames`` exceeds the training window)."""
        n_frames = self.problem.n_steps if n_frames is None else n_frames
        with torch.no_grad():
            frames = self.rollout(n_frames * self.resolved.substeps)
        return frames[:: self.resolved.substeps]

