"""The project's own classical solvers on the spec's grid: the baseline to try first.

Both use the residual's own operators, boundary treatment and frames
(:class:`~phycrnet.physics.Physics`), so a network result can be set beside a classical
solution of the very equations it was trained on, at equal run time or equal accuracy.

* ``explicit``: the predictor the hybrid network starts from (:class:`~phycrnet.physics.Predictor`):
  Heun steps with the automatic sub-steps and predictor steps of
  :func:`~phycrnet.methods.resolve.resolve`, an IMEX step where diffusion is too stiff.
  The untrained hybrid network computes exactly this (in its own precision).
* ``implicit``: the time scheme of the residual (Crank-Nicolson by default) solved by
  Newton at every frame (:func:`~phycrnet.methods.newton.discrete_solution`): the exact
  minimiser of the loss PhyCRNet trains on, and so the floor of its error.

Both compute in float64 and write the standard output (``solver = "classical"``, with
the ``scheme`` and the wall-clock seconds).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from phycrnet.discretisation.implicit import ImplicitDiffusion
from phycrnet.errors import DivergenceError, OptionsError, PhycrnetWarning, TimeLimitError, check_deadline
from phycrnet.io.solution import problem_dataset, write_solution
from phycrnet.methods.newton import discrete_solution
from phycrnet.methods.resolve import Resolved, resolve, spec_grid_peclet
from phycrnet.options import THRESHOLDS, CrnOptions, crn_options
from phycrnet.physics import Physics, Predictor
from phycrnet.spec.problem import Problem, load_spec
from phycrnet.training.device import configure_threads

#: The classical schemes.
SCHEMES = ("explicit", "implicit")


def classical(
    spec: Any,
    *,
    scheme: str = "implicit",
    out: str | Path | None = None,
    preset: str | None = None,
    substeps: int | None = None,
    time_limit: float | None = None,
    **options: Any,
) -> xr.Dataset:
    """Solve ``spec`` with a classical scheme on its own grid.

    Args:
        spec: catalog name, YAML path or text, dict, or :class:`~phycrnet.spec.Problem`.
        scheme: ``implicit`` (the residual's time scheme by Newton) or ``explicit`` (the
            hybrid network's predictor).
        out: netCDF file to write.
        preset: whose discretisation to use (``physics`` options of the preset).
        substeps: steps per output frame (implicit; default 1, the network's frames
            without physics input; the explicit scheme chooses its own).
        time_limit: wall-clock seconds the solve may take; past them it ends with a
            :class:`~phycrnet.errors.TimeLimitError` (a comparison at equal run time
            gives the classical rows the networks' budget).
        **options: ``physics`` options (``derivatives``, ``boundary``, ``time_scheme``) and
            ``threads`` (torch threads; default every core, 1 on a shared machine).

    Returns:
        Dataset with one variable per field, dims ``(t, y, x)``.
    """
    if scheme not in SCHEMES:
        raise OptionsError(f"--scheme: unknown scheme {scheme!r} (choose from {', '.join(SCHEMES)})")
    if substeps is not None and substeps < 1:
        raise OptionsError(f"--substeps: {substeps} must be a positive integer")
    if time_limit is not None and not time_limit > 0:
        raise OptionsError(f"--time-limit: {time_limit} must be a positive number of seconds")
    problem = load_spec(spec)
    run = crn_options(problem.option_sections(), {**options, "refine": 1, "dtype": "float64"}, preset=preset)
    configure_threads(run.training.threads)
    start = time.perf_counter()
    deadline = None if time_limit is None else start + time_limit
    try:
        if scheme == "explicit":
            frames, attrs = explicit_solution(problem, run, deadline)
        else:
            frames, attrs = implicit_solution(problem, run, substeps or 1, deadline)
    except TimeLimitError as exc:
        raise TimeLimitError(f"the {scheme} solver did not finish within {time_limit:g} s ({exc}); no result was written") from None
    seconds = time.perf_counter() - start
    require_bounded(frames, scheme)
    dataset = _dataset(problem, run, frames, scheme, seconds, attrs)
    if out is not None:
        write_solution(dataset, Path(out))
    return dataset


#: A classical solution whose values grow past this multiple of the initial values' largest
#: magnitude (at least 1) has blown up: an unresolved grid or an unstable step gives finite
#: but meaningless frames (Burgers at cell Peclet 6 on 32², mixed sides: 4e7 by t = 1).
GROWTH_LIMIT = 1e6


def require_bounded(frames: np.ndarray, scheme: str) -> None:
    """Raise a :class:`DivergenceError` if ``frames`` ``(T, C, ny, nx)`` are not finite or grow
    past :data:`GROWTH_LIMIT` times their initial scale."""
    scale = max(1.0, float(np.abs(frames[0]).max()))
    peak = np.abs(frames).max(axis=(1, 2, 3))
    grown = np.flatnonzero(~np.isfinite(peak) | (peak > GROWTH_LIMIT * scale))
    if grown.size:
        raise DivergenceError(
            f"the {scheme} solver blew up at frame {int(grown[0])}: values {float(peak[grown[0]]):.3g} against {scale:.3g} initially; "
            "refine the grid (grid: nx, ny) or shorten dt (a true solution that grows this much is refused too)"
        )


def explicit_solution(problem: Problem, run: CrnOptions, deadline: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames ``(T, C, ny, nx)`` of the hybrid network's predictor, and what it chose."""
    if run.physics.boundary == "soft":
        raise OptionsError("--scheme explicit: needs hard boundaries (soft boundary terms are not imposed by a time step)")
    hybrid = CrnOptions(run.preset, run.physics, run.model.model_copy(update={"physics_input": True}), run.training)
    resolved = resolve(problem, hybrid)
    _warn_damped(resolved)
    physics = Physics(problem, run.physics, dtype=torch.float64)
    predictor = predictor_of(physics, resolved, hybrid.model.physics_predictor)
    frames = explicit_rollout(physics, predictor, problem.n_steps * resolved.substeps, deadline)[:: resolved.substeps]
    attrs = {
        "substeps": resolved.substeps,
        "predictor_steps": resolved.predictor_steps,
        "implicit_diffusion": int(resolved.implicit_diffusion),
        "predictor_gain": resolved.input_gain,
        "stiffness_dt_rho": round(resolved.stiffness, 4),
        "iterations": problem.n_steps * resolved.substeps * resolved.predictor_steps,
    }
    return frames, attrs


def predictor_of(physics: Physics, resolved: Resolved, kind: str) -> Predictor:
    """The predictor of a resolved hybrid run (the implicit filter where it applies)."""
    problem = physics.problem
    dt = problem.dt / resolved.substeps
    implicit = None
    if resolved.implicit_diffusion:
        step = dt / resolved.predictor_steps
        implicit = ImplicitDiffusion.for_problem(problem, physics.derivatives, step, dtype=physics.dtype, device=physics.device)
    return Predictor(physics, dt, steps=resolved.predictor_steps, gain=resolved.input_gain, kind=kind, implicit=implicit)


def explicit_rollout(physics: Physics, predictor: Predictor, n_steps: int, deadline: float | None = None) -> np.ndarray:
    """``n_steps`` predictor steps from the initial values: ``(n_steps + 1, C, ny, nx)``
    (a :class:`~phycrnet.errors.TimeLimitError` past ``deadline``)."""
    problem = physics.problem
    parameters = problem.parameter_values()
    u = torch.as_tensor(problem.initial_values(), dtype=physics.dtype, device=physics.device).unsqueeze(0)
    u = physics.enforce(u, torch.zeros(1, dtype=physics.dtype, device=physics.device), parameters)
    frames = [u]
    with torch.no_grad():
        for k in range(n_steps):
            check_deadline(deadline, f"{k} of {n_steps} steps done")
            u = predictor.step(u, k * predictor.dt, parameters)
            if not bool(torch.isfinite(u).all()):
                raise DivergenceError(f"the explicit solver blew up at step {k + 1}; try --scheme implicit")
            frames.append(u)
    return torch.cat(frames).cpu().numpy()


def implicit_solution(problem: Problem, run: CrnOptions, substeps: int, deadline: float | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """Frames ``(T, C, ny, nx)`` of the residual's time scheme solved by Newton."""
    _warn_unresolved(problem, run)
    frames = discrete_solution(problem, run.physics, substeps=substeps, deadline=deadline)
    return frames, {"substeps": substeps, "iterations": problem.n_steps * substeps}


def _warn_damped(resolved: Resolved) -> None:
    if resolved.input_gain < 1.0:
        warnings.warn(
            f"the explicit step is damped (gain {resolved.input_gain:.2f}): even {resolved.substeps} sub-steps of "
            f"{resolved.predictor_steps} predictor steps leave dt*rho above {THRESHOLDS.stiff_step:g}; "
            "its solution is not consistent with the equations; use --scheme implicit",
            PhycrnetWarning,
            stacklevel=3,
        )


def _warn_unresolved(problem: Problem, run: CrnOptions) -> None:
    peclet = spec_grid_peclet(problem, run)
    if math.isfinite(peclet) and peclet > THRESHOLDS.resolved_peclet:
        warnings.warn(
            f"cell Peclet number {peclet:.1f} > {THRESHOLDS.resolved_peclet:g}: the grid does not resolve the transport, "
            "and central differences oscillate; a finer grid (grid: nx, ny) is closer to the PDE",
            PhycrnetWarning,
            stacklevel=3,
        )


def _dataset(problem: Problem, run: CrnOptions, frames: np.ndarray, scheme: str, seconds: float, attrs: dict[str, Any]) -> xr.Dataset:
    physics = Physics(problem, run.physics, dtype=torch.float64)
    iterations = attrs.pop("iterations")
    return problem_dataset(
        problem,
        frames,
        solver="classical",
        wall_seconds=seconds,
        iterations=iterations,
        attrs={
            "scheme": scheme,
            "preset": run.preset,
            "options": json.dumps({"physics": run.physics.model_dump(mode="json")}),
            "derivatives": physics.scheme,
            "boundary": run.physics.boundary,
            "time_scheme": run.physics.time_scheme if scheme == "implicit" else run.model.physics_predictor,
            **attrs,
        },
    )
