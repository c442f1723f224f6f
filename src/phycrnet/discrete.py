"""The exact minimiser of the discrete residual, found without any network.

PhyCRNet minimises a discretised residual (finite-difference or spectral stencils in space,
a time-stepping scheme in time, boundary conditions soft or hard). However well it is
trained, its error against a converged reference cannot fall below the error of the exact
solution of those discrete equations. :func:`discrete_solution` computes that solution
step by step with Gauss-Newton iterations (Jacobians by automatic differentiation), so
benchmarks can report the floor each discretisation sets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.func import jacrev

from phycrnet.errors import OptionsError, PhycrnetError
from phycrnet.physics import Physics, PhysicsOptions
from phycrnet.spec import Problem


def discrete_solution(
    problem: Problem,
    options: PhysicsOptions | None = None,
    *,
    substeps: int = 1,
    max_iterations: int = 20,
    tolerance: float = 1e-12,
) -> np.ndarray:
    """Frames ``(n_steps + 1, C, ny, nx)`` that zero the discrete residual step by step.

    Args:
        problem: the compiled spec (its parameters at their initial values).
        options: the discretisation (``central`` is not a one-step scheme and is refused).
        substeps: internal steps per output frame.
        max_iterations: Gauss-Newton iterations per step.
        tolerance: stop when the residual's root mean square falls below this.
    """
    options = options or PhysicsOptions()
    if options.time_scheme == "central":
        raise OptionsError("discrete_solution: the central scheme is not a one-step scheme")
    physics = Physics(problem, options, dtype=torch.float64)
    parameters: dict[str, Any] = problem.parameter_values()
    dt = problem.dt / substeps
    u = torch.as_tensor(problem.initial_values(), dtype=torch.float64)
    u = physics.enforce(u.unsqueeze(0), torch.zeros(1, dtype=torch.float64), parameters)[0]
    history = [u]
    n_steps = problem.n_steps * substeps
    past = {"bdf2": 2, "adams_moulton": 3}.get(options.time_scheme, 1)  # frames a step looks back on
    while len(history) <= n_steps:
        k = len(history) - 1
        # Adams-Moulton's first three steps are coupled (the first two use F up to frame 3).
        joint = 3 if options.time_scheme == "adams_moulton" and k == 0 and n_steps >= 3 else 1
        window = history[-past:]
        times = dt * torch.arange(k + 1 - len(window), k + 1 + joint, dtype=torch.float64)
        history.extend(_solve_step(physics, window, times, parameters, max_iterations, tolerance, joint))
    return torch.stack(history[::substeps]).numpy()


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
