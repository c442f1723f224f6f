"""The physics residual of a compiled spec on a predicted sequence of frames.

Frames are tensors ``U`` of shape ``(T, C, ny, nx)`` at times ``t`` of shape ``(T,)`` (C is
the number of fields, in the order of ``problem.fields``). :class:`Physics` evaluates the
right-hand side F(U, x, y, t) with the chosen spatial operators, forms the residual of a
time-stepping scheme and the boundary-condition residuals, and returns them as named loss
terms (mean squares).

The time residual is one of :mod:`phycrnet.discretisation.time_schemes` (Crank-Nicolson by
default).

Spatial operators: ``fd2``, ``fd4`` (finite differences of accuracy 2 or 4), ``spectral``
(FFT on periodic axes, fourth-order differences on the others) or ``auto`` (spectral when
every axis is periodic, ``fd4`` otherwise).

Boundary conditions: ``soft`` (residual terms ``bc_<field>_<side>``; the PDE residual covers
the interior nodes) or ``hard`` (ghost nodes carry Neumann/Robin conditions into the
stencils, Dirichlet nodes are overwritten by :meth:`Physics.enforce`; the PDE residual
covers every node that is not a Dirichlet node).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import sympy
import torch
import torch.utils.checkpoint

from phycrnet.discretisation.boundary import GhostPadding, apply_dirichlet, boundary_data, boundary_residual, field_sides
from phycrnet.discretisation.operators import Derivatives
from phycrnet.discretisation.time_schemes import TimeScheme, time_scheme
from phycrnet.options import PhysicsOptions
from phycrnet.spec.expressions import evaluate, transport_coefficients
from phycrnet.spec.problem import Problem


class Physics:
    """Residuals of one problem on sequences of frames.

    Args:
        problem: the compiled spec.
        options: discretisation choices.
        dtype, device: of the tensors it will see.
    """

    def __init__(
        self,
        problem: Problem,
        options: PhysicsOptions | None = None,
        *,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        self.problem = problem
        self.options = options or PhysicsOptions()
        self.dtype = dtype
        self.device = torch.device(device)
        scheme = self.options.derivatives
        if scheme == "auto":
            scheme = "spectral" if all(problem.periodic) else "fd4"
        self.scheme = scheme
        accuracy = 2 if scheme == "fd2" else 4
        self.derivatives = Derivatives(
            problem.grid, accuracy, spectral=scheme == "spectral", dtype=dtype, device=self.device
        )
        self.bc_accuracy = self.options.bc_accuracy or accuracy
        x, y = problem.grid.mesh()
        self.x = torch.as_tensor(x, dtype=dtype, device=self.device)
        self.y = torch.as_tensor(y, dtype=dtype, device=self.device)
        self.hard = self.options.boundary == "hard"
        self.sides = {f: field_sides(problem, f) for f in problem.fields}
        self.padding = {
            f: GhostPadding(self.sides[f], problem.grid, accuracy, self.derivatives.halo) for f in problem.fields
        }
        self.pde_mask = pde_mask(problem, self.sides, self.hard, self.device)
        self._boundary_cache: dict[tuple, torch.Tensor] = {}

    # -- state constraints ---------------------------------------------------------------
    def enforce(self, frames: torch.Tensor, t: torch.Tensor, parameters: Mapping[str, Any]) -> torch.Tensor:
        """Overwrite Dirichlet boundary nodes with their values (hard mode only).

        ``frames`` is ``(T, C, ny, nx)`` at times ``t`` ``(T,)``; returned unchanged in soft mode.
        """
        if not self.hard:
            return frames
        channels = []
        for c, name in enumerate(self.problem.fields):
            u = frames[:, c]
            for side, condition in self.sides[name].items():
                if condition.kind == "dirichlet":
                    u = apply_dirichlet(u, side, self.boundary_values(name, side, t, parameters))
            channels.append(u)
        return torch.stack(channels, dim=1)

    def boundary_values(self, field: str, side: str, t: torch.Tensor, parameters: Mapping[str, Any]) -> torch.Tensor:
        """``g`` of ``field`` on ``side`` at times ``t``: ``(T, n_along)``.

        Values that do not depend on a learnable (tensor) parameter are computed once per
        set of times and reused: the rollout asks for them at every step.
        """
        condition = self.sides[field][side]
        names = {symbol.name for symbol in condition.value.free_symbols}
        if any(isinstance(parameters.get(n), torch.Tensor) for n in names):
            return boundary_data(condition, self.problem.grid, side, t, parameters)
        key = (field, side, t.dtype, t.device, tuple(t.tolist()))
        if key not in self._boundary_cache:
            self._boundary_cache[key] = boundary_data(condition, self.problem.grid, side, t, parameters)
        return self._boundary_cache[key]

    # -- right-hand side -------------------------------------------------------------------
    def rhs(self, frames: torch.Tensor, t: torch.Tensor, parameters: Mapping[str, Any]) -> torch.Tensor:
        """F(U, x, y, t) for every frame: ``(T, C, ny, nx)``."""
        return torch.stack(self._evaluate_on_frames(list(self.problem.equations.values()), frames, t, parameters), dim=1)

    def _evaluate_on_frames(
        self, expressions: list[sympy.Expr], frames: torch.Tensor, t: torch.Tensor, parameters: Mapping[str, Any]
    ) -> list[torch.Tensor]:
        """Each expression at every node of every frame, ``(T, ny, nx)``, with the residual's
        operators (ghost nodes included)."""
        env: dict[str, Any] = {"x": self.x, "y": self.y, "t": t.view(-1, 1, 1), **parameters}
        for c, name in enumerate(self.problem.fields):
            env[name] = frames[:, c]
        operator = self._operator_callback(frames, t, parameters)
        shape = (frames.shape[0], *frames.shape[-2:])
        values = []
        for expression in expressions:
            value = evaluate(expression, env, operator)
            if not isinstance(value, torch.Tensor) or value.shape != shape:
                value = torch.as_tensor(value, dtype=frames.dtype, device=frames.device).expand(shape)
            values.append(value)
        return values

    def cell_peclet_number(self, state: torch.Tensor, t: torch.Tensor, parameters: Mapping[str, Any]) -> float:
        """The largest cell Peclet number ``|a| h / D`` at ``state`` ``(1, C, ny, nx)``.

        ``a`` and ``D`` are each field's own advection and diffusion coefficients in its
        equation along each axis (:func:`~phycrnet.expressions.transport_coefficients`),
        taken node by node where the PDE is imposed, ``h`` the grid spacing. Above about 2
        central differences of steady advection-diffusion oscillate (the classical limit);
        the physics-input rule uses its own limit (``peclet_limit``, :mod:`phycrnet.options.thresholds`).
        Burgers at nu = 0.005 on 33 nodes: about 6; ``inf`` where a field is advected without
        diffusion, 0 without advection.
        """
        values = _plain_values(parameters)
        mask = self.pde_mask.bool()
        largest = 0.0
        for c, field in enumerate(self.problem.fields):
            coefficients = transport_coefficients(self.problem.equations[field], field)
            for axis, h in zip("xy", self.problem.grid.spacing):
                speed, diffusion = self._evaluate_on_frames(
                    [coefficients[f"advection_{axis}"], coefficients[f"diffusion_{axis}"]], state.detach(), t, values
                )
                speed, diffusion = speed[0].abs()[mask[c]], diffusion[0][mask[c]]
                moving = speed > 0
                if not bool(moving.any()):
                    continue
                if bool((diffusion[moving] <= 0).any()):
                    return math.inf
                largest = max(largest, float((speed[moving] * h / diffusion[moving]).max()))
        return largest

    def _operator_callback(self, frames, t, parameters):
        padded: dict[tuple[str, int], torch.Tensor] = {}
        fields = self.problem.fields

        def apply(name: str, argument: sympy.Expr, walk) -> torch.Tensor:
            if self.hard and argument.is_Symbol and argument.name in fields and self.sides[argument.name]:
                return self._hard_operator(name, argument.name, frames, t, parameters, padded)
            return self.derivatives.apply(name, walk(argument))

        return apply

    def _hard_operator(self, name, field, frames, t, parameters, cache) -> torch.Tensor:
        if name == "laplace":
            return cast(torch.Tensor, sum(self._hard_derivative(field, axis, 2, frames, t, parameters, cache) for axis in (0, 1)))
        axis = 0 if name.endswith("x") or name.endswith("x2") else 1
        order = 2 if name.startswith("d2") else 1
        return self._hard_derivative(field, axis, order, frames, t, parameters, cache)

    def _hard_derivative(self, field, axis, order, frames, t, parameters, cache) -> torch.Tensor:
        grid = self.problem.grid
        if grid.axis(axis).periodic:
            return self.derivatives.derivative(frames[:, self.problem.fields.index(field)], axis, order)
        key = (field, axis)
        if key not in cache:
            u = frames[:, self.problem.fields.index(field)]
            low, high = ("left", "right") if axis == 0 else ("bottom", "top")
            data = {
                side: self.boundary_values(field, side, t, parameters) for side in (low, high)
            }
            cache[key] = self.padding[field].pad(u, axis, data)
        return self.derivatives.derivative(cache[key], axis, order, padded=True)

    def spectral_radius(
        self,
        state: torch.Tensor,
        t: torch.Tensor,
        parameters: Mapping[str, Any],
        *,
        iterations: int = 40,
        seed: int = 0,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> float:
        """Estimated spectral radius of the Jacobian dF/du at ``state`` ``(1, C, ny, nx)``.

        Power iteration with exact Jacobian-vector products (forward-mode autodiff), the
        growth rate averaged over the last quarter of the iterations so that complex pairs
        (advection) do not make it oscillate; only nodes where the PDE is imposed count
        (Dirichlet nodes are overwritten, not stepped). In 1/time units: ``dt * rho`` above
        about 2 means an explicit Euler step of size dt is unstable. ``transform``, if
        given, is a linear map applied to F first (the radius of its Jacobian then).
        """
        values = _plain_values(parameters)
        mask = self.pde_mask.unsqueeze(0).to(state.dtype)
        generator = torch.Generator(device="cpu").manual_seed(seed)
        v = torch.randn(state.shape, generator=generator, dtype=state.dtype).to(state.device) * mask
        v = v / v.norm()
        state = state.detach()
        log_growth = []
        for _ in range(iterations):
            step = (lambda u: self.rhs(u, t, values)) if transform is None else (lambda u: transform(self.rhs(u, t, values)))
            jv = torch.func.jvp(step, (state,), (v,))[1]
            jv = jv * mask
            norm = float(jv.norm())
            if not norm > 0 or not math.isfinite(norm):
                return 0.0 if norm == 0 else math.inf
            log_growth.append(math.log(norm))
            v = jv / norm
        tail = log_growth[-max(1, iterations // 4) :]
        return math.exp(sum(tail) / len(tail))

    # -- residuals ---------------------------------------------------------------------------
    def pde_residual(
        self, frames: torch.Tensor, t: torch.Tensor, parameters: Mapping[str, Any], known_rhs: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Residual of the time scheme: ``(T-1, C, ny, nx)`` (``T-2`` for ``central``).
        ``adams_moulton`` needs four frames and falls back to Crank-Nicolson on fewer.

        ``known_rhs``, if given, is F of the first ``len(known_rhs)`` frames, already
        computed (by a rollout that fed it to the network); only the rest is evaluated.
        """
        dt = (t[1:] - t[:-1]).view(-1, *([1] * (frames.dim() - 1)))

        def rhs(start: int, stop: int | None) -> torch.Tensor:
            """F of ``frames[start:stop]``, reusing ``known_rhs`` where it covers them."""
            if known_rhs is None:
                return self.rhs(frames[start:stop], t[start:stop], parameters)
            n = known_rhs.shape[0]
            every = torch.cat([known_rhs, self.rhs(frames[n:], t[n:], parameters)]) if n < frames.shape[0] else known_rhs
            return every[start:stop]

        return time_scheme(self.options.time_scheme).residual(frames, dt, rhs)

    def boundary_residuals(
        self, frames: torch.Tensor, t: torch.Tensor, parameters: Mapping[str, Any]
    ) -> dict[str, torch.Tensor]:
        """Soft-constraint residuals ``a*u + b*du/dn - g`` by term name ``bc_<field>_<side>``.

        Each is ``(T, n_along)``; empty in hard mode (the conditions hold by construction).
        """
        if self.hard:
            return {}
        residuals = {}
        for c, name in enumerate(self.problem.fields):
            for side, condition in self.sides[name].items():
                g = self.boundary_values(name, side, t, parameters)
                residuals[f"bc_{name}_{side}"] = boundary_residual(
                    frames[:, c], condition, side, g, self.derivatives, self.bc_accuracy
                )
        return residuals

    def losses(
        self,
        frames: torch.Tensor,
        t: torch.Tensor,
        parameters: Mapping[str, Any],
        *,
        skip_first: bool = True,
        causal: float = 0.0,
        known_rhs: torch.Tensor | None = None,
        step_weights: torch.Tensor | None = None,
        chunk: int | None = None,
    ) -> dict[str, torch.Tensor]:
        """Named loss terms (mean squares): ``pde_<field>`` and ``bc_<field>_<side>``.

        ``skip_first`` leaves frame 0 (the given initial value) out of the boundary terms.
        ``known_rhs``: see :meth:`pde_residual`. ``causal > 0`` weights the PDE residual of
        step k by ``exp(-causal * sum_{j<k} L_j)`` (causal training, Wang, Sankaran,
        Perdikaris 2022), with the weights held constant. ``step_weights`` ``(S, C)``, if
        given, multiplies the mean square of residual step k of field c (the first steps
        of it where the residual has fewer). ``chunk``: see :meth:`step_mean_squares`.
        """
        mean_squares = self.step_mean_squares(frames, t, parameters, known_rhs, chunk=chunk)
        terms = {}
        for c, name in enumerate(self.problem.fields):
            per_step = mean_squares[:, c]
            if step_weights is not None:
                per_step = per_step * step_weights[: per_step.shape[0], c]
            if causal > 0:
                history = torch.cumsum(per_step.detach(), 0) - per_step.detach()
                per_step = per_step * torch.exp(-causal * history)
            terms[f"pde_{name}"] = per_step.mean()
        start = 1 if skip_first else 0
        for key, value in self.boundary_residuals(frames[start:], t[start:], parameters).items():
            terms[key] = value.pow(2).mean()
        return terms

    def step_mean_squares(
        self, frames: torch.Tensor, t: torch.Tensor, parameters: Mapping[str, Any], known_rhs: torch.Tensor | None = None, *, chunk: int | None = None
    ) -> torch.Tensor:
        """Mean square of the PDE residual per step and field, ``(S, C)``.

        With ``chunk`` (steps) the residual is formed ``chunk`` steps at a time: the same
        values, with the transient tensors of one chunk at a time, and with autograd
        recording under gradient checkpointing, so the backward pass recomputes each
        chunk's intermediate tensors instead of storing those of every step. ``known_rhs``
        is then not used.
        """
        scheme = time_scheme(self.options.time_scheme)
        n_steps = frames.shape[0] - scheme.width + 1
        if chunk is None or n_steps <= chunk:
            return self.residual_mean_squares(self.pde_residual(frames, t, parameters, known_rhs))

        def piece(window: torch.Tensor, first: int, last: int, skip: int) -> torch.Tensor:
            return self.residual_mean_squares(self.pde_residual(window, t[first:last], parameters)[skip:])

        return _checkpointed_chunks(piece, frames, scheme, n_steps, chunk)

    def residual_mean_squares(self, residual: torch.Tensor) -> torch.Tensor:
        """Mean square of ``residual`` ``(S, C, ny, nx)`` over the nodes where each field's
        PDE is imposed, per step and field: ``(S, C)``."""
        return torch.stack([residual[:, c][:, self.pde_mask[c]].pow(2).mean(dim=1) for c in range(residual.shape[1])], dim=1)


def pde_mask(problem: Problem, sides: Mapping[str, Mapping[str, Any]], hard: bool, device: torch.device) -> torch.Tensor:
    """Nodes where the PDE residual is imposed, per field: ``(C, ny, nx)`` bool. Boundary
    nodes of a side are left out where the side is soft, or hard and Dirichlet (the node is
    overwritten); hard Neumann and Robin nodes keep the PDE (their ghost nodes carry the
    condition)."""
    ny, nx = problem.grid.shape
    index: dict[str, tuple[Any, Any]] = {"left": (slice(None), 0), "right": (slice(None), -1), "bottom": (0, slice(None)), "top": (-1, slice(None))}
    masks = []
    for name in problem.fields:
        mask = torch.ones(ny, nx, dtype=torch.bool, device=device)
        for side, condition in sides[name].items():
            if not (hard and condition.kind != "dirichlet"):
                mask[index[side]] = False
        masks.append(mask)
    return torch.stack(masks)


def _plain_values(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters with tensors turned into floats (analyses that need no gradient)."""
    return {k: float(v.detach()) if isinstance(v, torch.Tensor) else v for k, v in parameters.items()}


def _checkpointed_chunks(piece: Callable[..., torch.Tensor], frames: torch.Tensor, scheme: TimeScheme, n_steps: int, chunk: int) -> torch.Tensor:
    """``piece(window, first, last, skip)`` (the per-step values of the residual steps that
    ``frames[first:last]`` holds from its ``skip``-th on) over every step in chunks of about
    ``chunk`` steps, each under gradient checkpointing where autograd records; concatenated,
    ``(n_steps, ...)``."""
    chunk = max(chunk, 3)  # Adams-Moulton's first residuals need four frames
    pieces = []
    start = 0
    while start < n_steps:
        stop = n_steps if n_steps - start < 2 * chunk else start + chunk  # no short last chunk
        first, last = scheme.frames_of(start, stop, frames.shape[0])
        window = frames[first:last]
        if torch.is_grad_enabled():
            pieces.append(torch.utils.checkpoint.checkpoint(piece, window, first, last, start - first, use_reentrant=False))
        else:
            pieces.append(piece(window, first, last, start - first))
        start = stop
    return torch.cat(pieces)
