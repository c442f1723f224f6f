"""The exact minimiser of the discrete residual, found without any network.

PhyCRNet minimises a discretised residual (finite-difference or spectral stencils in space,
a time-stepping scheme in time, boundary conditions soft or hard). However well it is
trained, its error against a converged reference cannot fall below the error of the exact
solution of those discrete equations. :func:`discrete_solution` computes that solution
step by step with Newton iterations (derivatives by automatic differentiation): it is the
implicit classical solver of ``phycrnet classical`` and the floor of every benchmark.

Three ways to the Newton step (``jacobian="auto"`` picks the first that applies of
sparse, Krylov, dense):

* dense: the full Jacobian by reverse-mode differentiation and a least-squares solve; any
  residual (soft boundary terms make the system rectangular, spectral derivatives couple
  every node). Its cost grows with the cube of the nodes: a 65 x 65 two-field grid took
  over 20 minutes per run.
* sparse: where every equation involves only nearby nodes (no periodic axis, so finite
  differences everywhere and no wrap-around) and the system is square (hard boundaries),
  columns ``PROBE_PERIOD`` nodes apart
  on both axes never meet in one equation. Forward-mode products with one such comb of
  columns each (``PROBE_PERIOD**2`` per field) give the whole Jacobian, which a sparse LU
  factorises; the factorisation is reused while Newton converges fast (chord iterations).
  The same 65 x 65 grid takes under a minute. The assembled Jacobian is checked against a
  forward-mode product in a random direction, so a stencil wider than the probes allow
  is caught, not silently mis-assembled.
* Krylov: where the system is square (hard boundaries, or no bounded side) but the
  Jacobian is not local (spectral derivatives couple whole rows and columns), GMRES on
  forward-mode products, preconditioned by the implicit diffusion filter
  (:mod:`phycrnet.discretisation.implicit`): ``(I - theta dt D Lap)^-1`` inverts the
  stiff diffusion exactly (FFT on periodic axes, eigenvectors on bounded ones), leaving
  GMRES the mild rest. Nothing of size nodes squared is ever formed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg
import torch
from torch.func import jacrev, jvp

from phycrnet.discretisation.implicit import ImplicitDiffusion
from phycrnet.discretisation.time_schemes import time_scheme
from phycrnet.errors import OptionsError, PhycrnetError, check_deadline
from phycrnet.options import PhysicsOptions
from phycrnet.physics import Physics
from phycrnet.spec.problem import Problem

#: The ways to a Newton step.
JACOBIANS = ("auto", "dense", "sparse", "krylov")


def discrete_solution(
    problem: Problem,
    options: PhysicsOptions | None = None,
    *,
    substeps: int = 1,
    max_iterations: int = 20,
    tolerance: float = 1e-12,
    jacobian: str = "auto",
    deadline: float | None = None,
) -> np.ndarray:
    """Frames ``(n_steps + 1, C, ny, nx)`` that zero the discrete residual step by step.

    Args:
        problem: the compiled spec (its parameters at their initial values).
        options: the discretisation (``central`` is not a one-step scheme and is refused).
        substeps: internal steps per output frame.
        max_iterations: Gauss-Newton iterations per step.
        tolerance: stop when the residual's root mean square falls below this.
        jacobian: ``"dense"``, ``"sparse"``, ``"krylov"`` or ``"auto"`` (see the module).
        deadline: ``time.perf_counter()`` value past which a :class:`TimeLimitError` ends
            the solve (checked between steps and between GMRES iterations).
    """
    options = options or PhysicsOptions()
    scheme = time_scheme(options.time_scheme)
    if not scheme.one_step:
        raise OptionsError(f"discrete_solution: the {options.time_scheme} scheme is not a one-step scheme (use crank_nicolson)")
    physics = Physics(problem, options, dtype=torch.float64)
    parameters: dict[str, Any] = problem.parameter_values()
    dt = problem.dt / substeps
    u = torch.as_tensor(problem.initial_values(), dtype=torch.float64)
    u = physics.enforce(u.unsqueeze(0), torch.zeros(1, dtype=torch.float64), parameters)[0]
    history = [u]
    newton = _stepper(physics, tuple(u.shape), dt, jacobian)
    n_steps = problem.n_steps * substeps
    if isinstance(newton, _KrylovNewton):
        newton.deadline = deadline
    while len(history) <= n_steps:
        k = len(history) - 1
        check_deadline(deadline, f"{k} of {n_steps} steps done")
        # Adams-Moulton's first three steps are coupled (the first two use F up to frame 3).
        joint = 3 if options.time_scheme == "adams_moulton" and k == 0 and n_steps >= 3 else 1
        window = history[-scheme.past :]
        times = dt * torch.arange(k + 1 - len(window), k + 1 + joint, dtype=torch.float64)
        if newton is not None and joint == 1:
            history.append(newton.step(window, times, parameters, max_iterations, tolerance))
        else:
            history.extend(_solve_step(physics, window, times, parameters, max_iterations, tolerance, joint))
    return torch.stack(history[::substeps]).numpy()


def _stepper(physics: Physics, shape: tuple[int, ...], dt: float, choice: str) -> _SparseNewton | _KrylovNewton | None:
    """The Newton stepper ``choice`` names (``None``: dense Gauss-Newton)."""
    if choice not in JACOBIANS:
        raise OptionsError(f"jacobian: {choice!r} is not one of {', '.join(JACOBIANS)}")
    local = physics.hard and not any(physics.problem.periodic) and physics.scheme != "spectral"
    square = physics.hard or not any(physics.sides[f] for f in physics.problem.fields)
    if choice == "sparse" and not local:
        raise OptionsError("jacobian sparse: needs hard boundaries and no periodic axis")
    if choice == "krylov" and not square:
        raise OptionsError("jacobian krylov: needs hard boundaries (soft boundary terms make the system rectangular)")
    if choice == "sparse" or (choice == "auto" and local):
        return _SparseNewton(physics, shape)
    if choice == "krylov" or (choice == "auto" and square):
        return _KrylovNewton(physics, dt)
    return None


def _step_residual(physics: Physics, window: list[torch.Tensor], times: torch.Tensor, parameters, joint: int) -> Any:
    """The residual of the last ``joint`` steps as a function of their ``joint`` new frames."""
    shape = window[-1].shape
    dirichlet = ~physics.pde_mask if physics.hard else None

    def residual(flat: torch.Tensor) -> torch.Tensor:
        new = flat.view(joint, *shape)
        frames = torch.cat([torch.stack(window), new])
        pde = physics.pde_residual(frames, times, parameters)[-joint:]
        parts = [pde[j, c][physics.pde_mask[c]] for j in range(joint) for c in range(shape[0])]
        if physics.hard:
            enforced = physics.enforce(new, times[-joint:], parameters)
            parts += [(new[j] - enforced[j])[dirichlet] for j in range(joint)]
        else:
            parts += [r[-joint:].reshape(-1) for r in physics.boundary_residuals(frames, times, parameters).values()]
        return torch.cat(parts)

    return residual


def _solve_step(physics, window, times, parameters, max_iterations, tolerance, joint=1) -> list[torch.Tensor]:
    """The next ``joint`` frames, by Gauss-Newton from the last known frame."""
    previous = window[-1]
    residual = _step_residual(physics, window, times, parameters, joint)
    jacobian = jacrev(residual)
    guess = previous.reshape(-1).repeat(joint).clone()
    for _ in range(max_iterations):
        r = residual(guess)
        if float(r.pow(2).mean().sqrt()) < tolerance:
            break
        update = torch.linalg.lstsq(jacobian(guess), -r.unsqueeze(1)).solution.squeeze(1)
        guess = guess + update
        if float(update.abs().max()) < 1e-14:
            break
    if not torch.isfinite(guess).all():
        raise PhycrnetError("discrete_solution: Gauss-Newton diverged")
    return list(guess.view(joint, *previous.shape))


#: Columns this many nodes apart on both axes share no equation of a finite-difference
#: residual with hard boundaries: fourth-order stencils reach two nodes, the ghost-node
#: closures of Neumann and Robin sides up to five (measured: an equation's columns span at
#: most six nodes per axis). Each probe column is matched to the node within
#: ``PROBE_PERIOD // 2`` of the equation's node.
PROBE_PERIOD = 11


def _equation_nodes(physics: Physics, shape: tuple[int, ...]) -> np.ndarray:
    """``(field, y, x)`` of each equation of :func:`_step_residual` (one step): the PDE at
    the masked nodes field by field, then the held (Dirichlet) nodes."""
    mask = physics.pde_mask.expand(*shape).cpu().numpy().astype(bool)
    pde = [np.column_stack([np.full(int(mask[c].sum()), c), np.argwhere(mask[c])]) for c in range(shape[0])]
    return np.concatenate(pde + [np.argwhere(~mask)])


def _sparse_jacobian(residual, x: torch.Tensor, shape: tuple[int, ...], nodes: np.ndarray) -> scipy.sparse.csc_matrix:
    """The Jacobian of ``residual`` at ``x`` from ``PROBE_PERIOD**2`` forward-mode products
    per field (module docstring)."""
    channels, ny, nx = shape
    half = PROBE_PERIOD // 2
    rows, cols, values = [], [], []
    for field in range(channels):
        for a in range(PROBE_PERIOD):
            for b in range(PROBE_PERIOD):
                probe = torch.zeros(shape, dtype=x.dtype)
                probe[field, a::PROBE_PERIOD, b::PROBE_PERIOD] = 1.0
                product = jvp(residual, (x,), (probe.reshape(-1),))[1].numpy()
                # the probe column nearest each equation's node: within `half` on each axis
                y = nodes[:, 1] - half + (a - nodes[:, 1] + half) % PROBE_PERIOD
                xx = nodes[:, 2] - half + (b - nodes[:, 2] + half) % PROBE_PERIOD
                hit = (y >= 0) & (y < ny) & (xx >= 0) & (xx < nx) & (product != 0)
                rows.append(np.nonzero(hit)[0])
                cols.append(field * ny * nx + y[hit] * nx + xx[hit])
                values.append(product[hit])
    size = channels * ny * nx
    matrix = scipy.sparse.csc_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(cols))), shape=(size, size))
    direction = torch.randn(size, dtype=x.dtype, generator=torch.Generator().manual_seed(0))
    expected = jvp(residual, (x,), (direction,))[1].numpy()
    if np.abs(matrix @ direction.numpy() - expected).max() > 1e-8 * (1.0 + np.abs(expected).max()):
        raise PhycrnetError(f"discrete_solution: a stencil reaches beyond {half} nodes; use jacobian='dense'")
    return matrix


class _SparseNewton:
    """Chord-Newton steps on a sparse LU of the Jacobian, kept from step to step and
    refreshed whenever the residual falls less than five-fold in an iteration (successive
    steps of a smooth solution have nearly the same Jacobian)."""

    def __init__(self, physics: Physics, shape: tuple[int, ...]) -> None:
        self.physics = physics
        self.shape = shape
        self.nodes = _equation_nodes(physics, shape)
        self.factorisation = None

    def step(self, window, times, parameters, max_iterations: int, tolerance: float) -> torch.Tensor:
        """The next frame; stops at ``tolerance`` or when the update reaches rounding level."""
        residual = _step_residual(self.physics, window, times, parameters, 1)
        guess = window[-1].reshape(-1).clone()
        last = None
        for _ in range(max_iterations):
            r = residual(guess)
            size = float(r.pow(2).mean().sqrt())
            if size < tolerance:
                break
            factorisation = self.factorisation
            if factorisation is None or (last is not None and size > 0.2 * last):
                factorisation = self.factorisation = scipy.sparse.linalg.splu(_sparse_jacobian(residual, guess, self.shape, self.nodes))
            update = torch.as_tensor(factorisation.solve(r.numpy()))
            guess = guess - update
            last = size
            if float(update.abs().max()) < 1e-13 * (1.0 + float(guess.abs().max())):
                break  # at rounding level: the residual cannot fall further
        if not torch.isfinite(guess).all():
            raise PhycrnetError("discrete_solution: Newton diverged")
        return guess.view(self.shape)


class _KrylovNewton:
    """Newton steps whose linear systems GMRES solves, preconditioned by the implicit
    diffusion filter (module docstring). The residual is node-ordered and scaled so that
    its Jacobian is ``I - theta dt dF/du`` at PDE nodes and the identity at Dirichlet nodes."""

    def __init__(self, physics: Physics, dt: float) -> None:
        self.physics = physics
        scheme = time_scheme(physics.options.time_scheme)
        self.scale = dt / scheme.lead
        step = dt * scheme.implicit_weight / scheme.lead
        cpu = torch.device("cpu")
        self.filter = ImplicitDiffusion.for_problem(physics.problem, physics.derivatives, step, dtype=torch.float64, device=cpu) if step > 0 else None
        self.iterations = 0  # GMRES iterations so far (diagnostics)
        self.deadline: float | None = None

    def _residual(self, window: list[torch.Tensor], times: torch.Tensor, parameters: dict[str, Any]) -> Any:
        physics, mask = self.physics, self.physics.pde_mask
        known = physics.rhs(torch.stack(window), times[: len(window)], parameters)  # F of the known frames, once

        def residual(u: torch.Tensor) -> torch.Tensor:
            frames = torch.cat([torch.stack(window), u.unsqueeze(0)])
            pde = physics.pde_residual(frames, times, parameters, known_rhs=known)[-1] * self.scale
            if not physics.hard:
                return pde
            held = u - physics.enforce(u.unsqueeze(0), times[-1:], parameters)[0]
            return torch.where(mask, pde, held)

        return residual

    def step(self, window: list[torch.Tensor], times: torch.Tensor, parameters: dict[str, Any], max_iterations: int, tolerance: float) -> torch.Tensor:
        """The next frame; stops at ``tolerance`` (RMS of the unscaled residual) or when the
        update reaches rounding level."""
        residual = self._residual(window, times, parameters)
        u = window[-1].clone()
        shape, size = u.shape, u.numel()
        preconditioner = None
        if self.filter is not None:
            apply = self.filter
            preconditioner = scipy.sparse.linalg.LinearOperator((size, size), dtype=np.float64, matvec=lambda v: apply(torch.as_tensor(v).view(shape)).reshape(-1).numpy())
        for _ in range(max_iterations):
            r = residual(u)
            if float(r.pow(2).mean().sqrt()) < tolerance * self.scale:
                break
            jacobian = scipy.sparse.linalg.LinearOperator((size, size), dtype=np.float64, matvec=_difference_product(residual, u, r))
            counter = _Counter(self.deadline)
            atol = 0.01 * tolerance * self.scale * size**0.5
            update, _ = scipy.sparse.linalg.gmres(jacobian, -r.reshape(-1).numpy(), rtol=1e-8, atol=atol, restart=60, maxiter=20, M=preconditioner, callback=counter, callback_type="pr_norm")
            self.iterations += counter.count
            u = u + torch.as_tensor(update).view(shape)
            if float(np.abs(update).max()) < 1e-13 * (1.0 + float(u.abs().max())):
                break  # at rounding level: the residual cannot fall further
        if not torch.isfinite(u).all():
            raise PhycrnetError("discrete_solution: Newton diverged")
        return u


def _difference_product(residual: Any, u: torch.Tensor, r: torch.Tensor) -> Any:
    """``v -> J v`` by a one-sided difference of ``residual`` at ``u`` (where it is ``r``):
    one residual evaluation per product, with a step of the square root of the rounding
    error relative to ``u``'s size (forward-mode products through FFTs cost ten times more)."""
    scale = 1.0 + float(u.abs().max())

    def product(v: np.ndarray) -> np.ndarray:
        norm = float(np.abs(v).max())
        if norm == 0.0:
            return np.zeros_like(v)
        h = 1.5e-8 * scale / norm
        return ((residual(u + h * torch.as_tensor(v).view(u.shape)) - r) / h).reshape(-1).numpy()

    return product


class _Counter:
    """Counts GMRES iterations (its callback), and ends them past ``deadline``."""

    def __init__(self, deadline: float | None = None) -> None:
        self.count = 0
        self.deadline = deadline

    def __call__(self, _: Any) -> None:
        self.count += 1
        check_deadline(self.deadline, "stopped inside a Newton-Krylov step")
