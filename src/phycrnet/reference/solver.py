"""Classical reference solver: py-pde finite volumes on refined grids, with self-convergence.

The problem is discretised with py-pde's cell-centred :class:`pde.CartesianGrid` on a grid
``refinement`` times finer than the spec grid (:mod:`phycrnet.reference.grid`), its boundary
conditions are py-pde boundary conditions (:mod:`phycrnet.reference.boundary`), the
right-hand side applies py-pde's 2nd-order stencils (:mod:`phycrnet.reference.rhs`), and the
method of lines is integrated in time with an adaptive Dormand-Prince 5(4) scheme whose
tolerance is far below the spatial error (:mod:`phycrnet.reference.integrate`). Each level is
sampled back onto the spec grid at the frame times ``problem.times``
(:mod:`phycrnet.reference.sampling`).

Levels ``r, 2r, 4r, ...`` give a self-convergence estimate; as the scheme is 2nd-order
accurate, the Richardson extrapolation ``(4*u_2r - u_r)/3`` of the two finest levels is
meaningful and returned by default. Levels ``r`` and ``2r`` are always solved; with Richardson
extrapolation a third level ``4r`` is added when it is predicted to fit into the time limit.
Automatic refinement starts at ``r = 2`` and doubles while the estimated error is at least
the tolerance and the next level is predicted to fit. A further level starts only when its
predicted cost (4x the cells times the last doubling's growth in time steps) is below 80 % of
the time left, and is abandoned (its work discarded) if it runs past 125 % of the limit.

:func:`solve_reference` is the entry point of every reference; ``method="spectral"`` (or
``"auto"`` on a fully periodic problem) hands over to the pseudo-spectral reference,
:func:`phycrnet.reference.spectral.solve_spectral_reference`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from phycrnet.analysis.metrics import rel_l2
from phycrnet.errors import OptionsError, TimeLimitError
from phycrnet.io.solution import problem_dataset
from phycrnet.reference.grid import initial_state, refined_axes
from phycrnet.reference.integrate import (
    IntegrationStats,
    OutOfTime,
    absolute_tolerance,
    integrate,
    progress_bar,
    require_finite,
)
from phycrnet.reference.rhs import Backend, make_rhs
from phycrnet.reference.sampling import Sampler
from phycrnet.reference.spectral import solve_spectral_reference
from phycrnet.spec.problem import Problem, load_spec

if TYPE_CHECKING:
    import xarray as xr

__all__ = [
    "AUTO_START_REFINEMENT",
    "SOLVER_NAME",
    "LevelSolution",
    "Method",
    "pypde_solution",
    "simulate",
    "solve_reference",
    "worst_field_rel_l2",
]

#: Value of the ``solver`` attribute of the returned dataset.
SOLVER_NAME = "py-pde reference"
#: First refinement of the automatic search (cells per spec grid spacing).
AUTO_START_REFINEMENT = 2
#: A further level starts only if its predicted cost is below this share of the time left
#: (predictions are good to about 20 % on an idle machine, worse on a busy one).
_SAFETY = 0.8
#: Defaults of ``tolerance`` and ``time_limit`` of the py-pde reference.
_PYPDE_TOLERANCE = 1e-4
_PYPDE_TIME_LIMIT = 60.0

#: Reference methods of :func:`solve_reference`.
Method = Literal["pypde", "spectral", "auto"]
_METHODS = ("pypde", "spectral", "auto")


# =========================================================================== one refinement level


@dataclass
class LevelSolution:
    """The solution at one refinement, sampled onto the spec grid.

    Attributes:
        refinement: cells per spec grid spacing.
        values: sampled fields, shape ``(n_times, n_fields, ny, nx)``.
        seconds: wall-clock seconds of the whole level (setup, compilation, integration).
        setup_seconds: seconds spent before the first step (numba compilation included).
        stats: time-stepping work.
    """

    refinement: int
    values: np.ndarray
    seconds: float
    setup_seconds: float
    stats: IntegrationStats = field(default_factory=IntegrationStats)


def simulate(
    problem: Problem,
    refinement: int,
    *,
    backend: Backend = "numpy",
    rtol: float = 1e-8,
    progress: bool = False,
    deadline: float | None = None,
) -> LevelSolution:
    """Solve on the grid refined ``refinement`` times and sample at ``problem.times``.

    Args:
        problem: the compiled spec.
        refinement: cells per spec grid spacing (``>= 1``).
        backend: ``"numpy"`` or ``"numba"`` (see :mod:`phycrnet.reference.rhs`).
        rtol: relative tolerance of the time stepper; the absolute tolerance is ``rtol``
            times the largest initial magnitude of each field (or of all fields).
        progress: show a progress bar over the frames.
        deadline: ``time.perf_counter()`` value after which the run is abandoned with
            :class:`~phycrnet.reference.integrate.OutOfTime`.
    """
    start = time.perf_counter()
    axes = refined_axes(problem.grid, refinement)
    if min(a.cells for a in axes) < 4:
        raise OptionsError(f"refinement {refinement}: the refined grid needs at least 4 cells per axis")
    rhs = make_rhs(problem, refinement, backend)
    state = initial_state(problem, axes)
    if backend == "numba":
        rhs(0.0, state)  # trigger the compilation now, so it is counted as setup
    sampler = Sampler(problem, axes)
    frames = np.empty((len(problem.times), len(problem.fields), *problem.grid.shape))

    def on_frame(k: int, t: float, values: np.ndarray) -> None:
        require_finite(values, t)
        # t = 0 is the spec's initial value itself: sampling it with the boundary conditions
        # would alter boundary nodes where the initial value does not satisfy them.
        frames[k] = problem.initial_values() if k == 0 else sampler(t, values)

    setup = time.perf_counter() - start
    bar = progress_bar(len(problem.times) - 1, f"py-pde r={refinement}", progress)
    try:
        with np.errstate(all="ignore"):  # NaN and overflow end in a PhycrnetError instead
            atol = absolute_tolerance(state, rtol)
            stats = integrate(rhs, state, problem.times, on_frame, rtol=rtol, atol=atol, deadline=deadline, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    return LevelSolution(refinement, frames, time.perf_counter() - start, setup, stats)


# =========================================================================== self-convergence


def worst_field_rel_l2(approximation: np.ndarray, reference: np.ndarray) -> float:
    """Largest over fields of :func:`~phycrnet.analysis.metrics.rel_l2` over all times and nodes.

    Arrays have shape ``(n_times, n_fields, ny, nx)``; a field that is zero in ``reference``
    is compared in absolute terms.
    """
    return max(rel_l2(approximation[:, i], reference[:, i]) for i in range(reference.shape[1]))


def _richardson(coarse: np.ndarray, fine: np.ndarray) -> np.ndarray:
    """Richardson extrapolation of a 2nd-order scheme from spacings ``2h`` and ``h``."""
    return (4.0 * fine - coarse) / 3.0


@dataclass
class _Estimate:
    values: np.ndarray
    self_convergence: float
    estimated_error: float
    description: str
    observed_order: float | None


def _estimate(levels: Sequence[LevelSolution], richardson: bool) -> _Estimate:
    """The returned solution and its error estimate from two or more levels."""
    raw = [level.values for level in levels]
    self_convergence = worst_field_rel_l2(raw[-2], raw[-1])
    order = None
    if len(raw) >= 3:
        previous = worst_field_rel_l2(raw[-3], raw[-2])
        if previous > 0 and self_convergence > 0:
            order = math.log2(previous / self_convergence)
    r = [level.refinement for level in levels]
    if not richardson:
        text = f"||u_{r[-1]} - u_{r[-2]}||/3: asymptotic error of the finest raw solution (2nd order)"
        return _Estimate(raw[-1], self_convergence, self_convergence / 3.0, text, order)
    extrapolated = _richardson(raw[-2], raw[-1])
    if len(raw) >= 3:
        previous_extrapolation = _richardson(raw[-3], raw[-2])
        error = worst_field_rel_l2(previous_extrapolation, extrapolated)
        text = (
            f"||R({r[-2]},{r[-1]}) - R({r[-3]},{r[-2]})||: difference of successive Richardson "
            "extrapolations, an upper estimate for the returned R"
        )
        return _Estimate(extrapolated, self_convergence, error, text, order)
    text = (
        f"||u_{r[-1]} - u_{r[-2]}||/3: error estimate of the finer raw solution, an upper estimate "
        "for the extrapolation in the asymptotic range (no third level was affordable)"
    )
    return _Estimate(extrapolated, self_convergence, self_convergence / 3.0, text, order)


def _predicted_seconds(levels: Sequence[LevelSolution]) -> float:
    """Predicted cost of the next, twice finer level.

    Four times the cells, and as many more steps as the last doubling took (between 1x for
    accuracy-limited and 4x for diffusion-limited explicit stepping; 4x when unknown).
    """
    last = levels[-1]
    growth = 4.0
    if len(levels) >= 2 and levels[-2].stats.steps > 0:
        growth = min(4.0, max(1.0, last.stats.steps / levels[-2].stats.steps))
    return last.setup_seconds + 4.0 * growth * (last.seconds - last.setup_seconds)


# =========================================================================== public entry point


def solve_reference(
    problem: Problem | Any,
    *,
    refinement: int | None = None,
    richardson: bool = True,
    tolerance: float | None = None,
    time_limit: float | None = None,
    progress: bool = False,
    backend: Backend = "numpy",
    rtol: float | None = None,
    method: Method = "pypde",
) -> xr.Dataset:
    """Solve a problem on refined grids and return it on the spec grid.

    Args:
        problem: a :class:`~phycrnet.spec.Problem` (or anything :func:`~phycrnet.spec.load_spec`
            accepts).
        refinement: cells per spec grid spacing of the coarsest level, ``None`` for automatic
            refinement (py-pde: which levels are solved is described in the module docstring).
        richardson: return the Richardson extrapolation ``(4*u_2r - u_r)/3`` of the two finest
            levels instead of the finest raw solution (py-pde only).
        tolerance: target of the estimated relative L2 error (automatic refinement only);
            default 1e-4 (py-pde), 1e-6 (spectral).
        time_limit: wall-clock seconds the call should fit into; default 60 (py-pde), 900
            (spectral).
        progress: show progress bars.
        backend: py-pde only: ``"numpy"`` (no compilation) or ``"numba"`` (py-pde ``PDE``
            compiled with numba); see :mod:`phycrnet.reference.rhs`.
        rtol: py-pde only: relative tolerance of the time stepper (default
            ``min(1e-7, tolerance/1000)``, so that the spatial error dominates).
        method: ``"pypde"`` (finite volumes, any boundary conditions), ``"spectral"``
            (:func:`~phycrnet.reference.spectral.solve_spectral_reference`, fully periodic
            problems only) or ``"auto"`` (spectral when fully periodic, py-pde otherwise).

    Returns:
        A solution dataset (:func:`phycrnet.io.solution.solution_dataset`) on the spec grid at
        ``problem.times``. py-pde: ``solver = "py-pde reference"``, attributes ``refinement``
        (finest level), ``refinements``, ``self_convergence`` (max over fields of the relative
        L2 difference of the two finest raw levels), ``estimated_error`` (for the returned
        solution) with its ``error_estimate`` description, ``observed_order`` (three or more
        levels), ``richardson``, ``tolerance_met`` (0/1), ``stop_reason``, ``method``,
        ``backend``, ``jit_seconds``, ``level_seconds``, ``time_steps``, ``rtol``,
        ``pypde_version``, ``numba_version``.

    Raises:
        OptionsError: invalid options.
        PhycrnetError: the solution became NaN or infinite, or the problem uses features the
            solver does not support (py-pde: nested operators).
    """
    problem = load_spec(problem)
    _validate_options(refinement, tolerance, time_limit, backend, method)
    if _chosen_method(method, problem) == "spectral":
        return _spectral(problem, refinement, tolerance, time_limit, progress)
    tolerance = _PYPDE_TOLERANCE if tolerance is None else tolerance
    time_limit = _PYPDE_TIME_LIMIT if time_limit is None else time_limit
    rtol = rtol if rtol is not None else min(1e-7, 1e-3 * tolerance)
    run = _Run(problem, refinement is None, richardson, tolerance, time_limit, backend, rtol, progress)
    return run.solve(AUTO_START_REFINEMENT if refinement is None else refinement)


def pypde_solution(problem: Problem | Any, *, refinement: int = 1, time_limit: float | None = None, backend: Backend = "numpy", rtol: float = 1e-7) -> xr.Dataset:
    """py-pde on one grid (``refinement`` cells per spec grid spacing; 1: the spec's own
    spacing) as a baseline beside other solvers on that grid, not as a reference: no finer
    level, no error estimate. Past ``time_limit`` seconds it ends with a
    :class:`~phycrnet.errors.TimeLimitError`.

    Returns a solution dataset with ``solver = "py-pde"``, ``refinement``, ``method``,
    ``time_steps``, ``rtol`` and the versions.
    """
    problem = load_spec(problem)
    _validate_options(refinement, None, time_limit, backend, "pypde")
    start = time.perf_counter()
    try:
        level = simulate(problem, refinement, backend=backend, rtol=rtol, deadline=None if time_limit is None else start + time_limit)
    except OutOfTime:
        raise TimeLimitError(f"py-pde did not finish within {time_limit:g} s; no result was written") from None
    attrs = {"refinement": refinement, "method": _method_text(backend, False), "backend": backend, "rtol": rtol, "time_steps": level.stats.steps, **_versions()}
    return problem_dataset(problem, level.values, solver="py-pde", wall_seconds=time.perf_counter() - start, iterations=level.stats.steps, attrs=attrs)


def _validate_options(
    refinement: int | None, tolerance: float | None, time_limit: float | None, backend: str, method: str
) -> None:
    if refinement is not None and (isinstance(refinement, bool) or not isinstance(refinement, int) or refinement < 1):
        raise OptionsError(f"refinement: must be a positive integer or None, got {refinement!r}")
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance > 0):
        raise OptionsError(f"tolerance: must be positive, got {tolerance!r}")
    if time_limit is not None and not (time_limit > 0):
        raise OptionsError(f"time_limit: must be positive, got {time_limit!r}")
    if backend not in ("numpy", "numba"):
        raise OptionsError(f"backend: unknown reference backend {backend!r} (use 'numpy' or 'numba')")
    if method not in _METHODS:
        raise OptionsError(f"method: unknown reference method {method!r} (use 'pypde', 'spectral' or 'auto')")


def _chosen_method(method: str, problem: Problem) -> str:
    """``"auto"`` resolved: spectral for fully periodic problems, py-pde otherwise."""
    if method == "auto":
        return "spectral" if all(problem.periodic) else "pypde"
    return method


def _spectral(
    problem: Problem, refinement: int | None, tolerance: float | None, time_limit: float | None, progress: bool
) -> xr.Dataset:
    """The pseudo-spectral reference with the options given (its own defaults otherwise)."""
    options: dict[str, Any] = {"refinement": refinement, "progress": progress}
    if tolerance is not None:
        options["tolerance"] = tolerance
    if time_limit is not None:
        options["time_limit"] = time_limit
    return solve_spectral_reference(problem, **options)


@dataclass
class _Run:
    """One call of :func:`solve_reference` with py-pde: its options and the levels solved so far."""

    problem: Problem
    automatic: bool
    richardson: bool
    tolerance: float
    time_limit: float
    backend: Backend
    rtol: float
    progress: bool
    levels: list[LevelSolution] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)

    def solve(self, first: int) -> xr.Dataset:
        """Levels ``first`` and ``2*first``, further ones as wanted and affordable, the result."""
        for level in (first, 2 * first):
            self.levels.append(self.simulate(level))
        return self.dataset(self.refine())

    def simulate(self, refinement: int, deadline: float | None = None) -> LevelSolution:
        return simulate(
            self.problem, refinement, backend=self.backend, rtol=self.rtol, progress=self.progress, deadline=deadline
        )

    def refine(self) -> str:
        """Add finer levels while wanted and affordable; returns why it stopped."""
        while True:
            if self.automatic and _estimate(self.levels, self.richardson).estimated_error < self.tolerance:
                return "tolerance reached"
            if not self.automatic and (not self.richardson or len(self.levels) >= 3):
                return "requested refinement solved"
            level = 2 * self.levels[-1].refinement
            remaining = self.time_limit - (time.perf_counter() - self.start)
            predicted = _predicted_seconds(self.levels)
            if predicted > _SAFETY * remaining:
                return f"time limit: refinement {level} predicted to take {predicted:.3g} s, {max(remaining, 0):.3g} s left"
            deadline = time.perf_counter() + remaining + 0.25 * self.time_limit  # 125 % of the limit
            try:
                self.levels.append(self.simulate(level, deadline))
            except OutOfTime:
                return f"time limit: refinement {level} abandoned after running past 125 % of the limit"

    def dataset(self, reason: str) -> xr.Dataset:
        """The result on the spec grid, with the attributes listed in :func:`solve_reference`."""
        estimate = _estimate(self.levels, self.richardson)
        problem = self.problem
        return problem_dataset(
            problem,
            estimate.values,
            solver=SOLVER_NAME,
            wall_seconds=time.perf_counter() - self.start,
            iterations=sum(level.stats.steps for level in self.levels),
            attrs=self._attributes(estimate, reason),
        )

    def _attributes(self, estimate: _Estimate, reason: str) -> dict[str, Any]:
        levels = self.levels
        return {
            "refinement": levels[-1].refinement,
            "refinements": [level.refinement for level in levels],
            "self_convergence": estimate.self_convergence,
            "estimated_error": estimate.estimated_error,
            "error_estimate": estimate.description,
            "observed_order": estimate.observed_order,
            "richardson": self.richardson,
            "tolerance": self.tolerance,
            "tolerance_met": estimate.estimated_error < self.tolerance,
            "stop_reason": reason,
            "method": _method_text(self.backend, self.richardson),
            "backend": self.backend,
            "rtol": self.rtol,
            "jit_seconds": sum(level.setup_seconds for level in levels) if self.backend == "numba" else 0.0,
            "level_seconds": {str(level.refinement): round(level.seconds, 3) for level in levels},
            "time_steps": {str(level.refinement): level.stats.steps for level in levels},
            **_versions(),
        }


def _method_text(backend: str, richardson: bool) -> str:
    rhs = "numpy stencils with py-pde ghost cells" if backend == "numpy" else "py-pde PDE compiled with numba"
    text = (
        "py-pde CartesianGrid (cell-centred finite volumes, 2nd order; " + rhs + "), "
        "adaptive Dormand-Prince 5(4) in time, cubic sampling onto the spec grid"
    )
    return text + (", Richardson extrapolation of the two finest levels" if richardson else "")


def _versions() -> dict[str, str]:
    import numba
    import pde

    return {"pypde_version": pde.__version__, "numba_version": numba.__version__}
