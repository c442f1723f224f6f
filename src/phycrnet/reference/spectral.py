"""Pseudo-spectral reference for fully periodic problems, self-converged in resolution.

For periodic cases where the 2nd-order py-pde reference (:mod:`phycrnet.reference.solver`) is
too slow or too coarse, such as 2D Burgers at 128 x 128 with nu = 0.005.

Space
    Fourier collocation on a grid ``r`` times finer than the spec's
    (:mod:`phycrnet.reference.fourier`): FFT derivatives, the equations evaluated pointwise,
    2/3-rule dealiasing of everything but the exactly treated diffusion. Expression initial
    values are evaluated on the fine grid, others Fourier-interpolated from the spec grid.
Time
    Integrating-factor (Lawson) Dormand-Prince 5(4) with adaptive steps
    (:mod:`phycrnet.reference.lawson`) driven by the reference's step loop
    (:func:`phycrnet.reference.integrate.integrate_scheme`): each field's constant diffusion
    is integrated exactly, so only the nonlinear terms limit the step. Plain Dormand-Prince
    would be held to ``dt < 3.3/(D*|k|**2)`` by the diffusion (about 5e-4 for nu = 0.005 on
    256 x 256); exponential time differencing would need its own embedded error estimate,
    while the Lawson form keeps Dormand-Prince's. Relative tolerance
    ``min(1e-8, tolerance/1000)`` in the RMS norm of each field, so the time stepping error
    stays below the target.
Output
    Steps land on every frame time of ``problem.times``; a frame is the solution at every
    ``r``-th fine point (the spec's nodes); frame 0 is the spec's initial values.
Self-convergence
    Levels ``r`` and ``2r`` are solved (automatic: 1, 2 and further doublings while the
    estimate is at least ``tolerance`` and the next level is predicted to fit the time
    limit). ``estimated_error`` is the mean over fields of ``||u_r - u_2r|| / ||u_2r||`` over
    all frames and spec nodes, for the two finest levels; the finer level is returned. As the
    spatial error falls faster than any power of ``r`` for smooth solutions, this is an upper
    estimate for the returned solution; once space is resolved it measures the time stepping
    error, which differs between the levels' step sequences.
Memory
    Only spec-grid frames are stored, in one array ``(T, C, ny, nx)``: each level overwrites
    the previous level's frame after adding the difference to the estimate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from phycrnet.errors import OptionsError, PhycrnetError
from phycrnet.io.solution import problem_dataset
from phycrnet.reference.fourier import FourierGrid, SpectralRightHandSide
from phycrnet.reference.integrate import (
    IntegrationStats,
    OutOfTime,
    Scheme,
    absolute_tolerance,
    integrate_scheme,
    progress_bar,
    require_finite,
)
from phycrnet.reference.lawson import LawsonStep, SpectralNorm
from phycrnet.spec.problem import Problem, load_spec

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["MAX_POINTS", "SOLVER_NAME", "SpectralLevel", "simulate_spectral", "solve_spectral_reference"]

#: Value of the ``solver`` attribute of the returned dataset.
SOLVER_NAME = "spectral reference"
#: The automatic refinement stops before a level with more points than this per axis.
MAX_POINTS = 2048
#: A further automatic level starts only if its predicted cost is below this share of the
#: time left.
_SAFETY = 0.8
_METHOD = (
    "Fourier pseudo-spectral collocation on a grid r times finer than the spec's, 2/3-rule "
    "dealiasing, constant diffusion integrated exactly (integrating factor), adaptive Lawson "
    "Dormand-Prince 5(4) in time, frames copied from every r-th point"
)


@dataclass
class SpectralLevel:
    """One solved refinement.

    Attributes:
        refinement: fine points per spec grid spacing.
        seconds: wall-clock seconds of the level.
        stats: time-stepping work.
        difference: per field, ``||u_previous - u|| / ||u||`` over all frames and spec nodes
            (``None`` for the first level).
    """

    refinement: int
    seconds: float
    stats: IntegrationStats
    difference: np.ndarray | None


class _FrameDifference:
    """Accumulates ``||new - old||**2`` and ``||new||**2`` per field, frame by frame."""

    def __init__(self, n_fields: int) -> None:
        self.squared_difference = np.zeros(n_fields)
        self.squared_norm = np.zeros(n_fields)

    def add(self, new: np.ndarray, old: np.ndarray) -> None:
        self.squared_difference += np.sum(np.square(new - old), axis=(1, 2))
        self.squared_norm += np.sum(np.square(new), axis=(1, 2))

    def relative(self) -> np.ndarray:
        """``||new - old|| / ||new||`` per field (absolute where ``new`` is zero)."""
        difference = np.sqrt(self.squared_difference)
        norm = np.sqrt(self.squared_norm)
        return np.where(norm > 0, difference / np.where(norm > 0, norm, 1.0), difference)


def simulate_spectral(
    problem: Problem,
    refinement: int,
    frames: np.ndarray,
    *,
    compare: bool,
    rtol: float,
    deadline: float | None = None,
    progress: bool = False,
) -> SpectralLevel:
    """Solve one refinement and write its spec-node frames into ``frames`` ``(T, C, ny, nx)``.

    With ``compare`` the frames already there (a coarser level's) are compared with the new
    ones before being overwritten. ``deadline`` is a ``time.perf_counter()`` value after
    which :class:`~phycrnet.reference.integrate.OutOfTime` is raised.
    """
    start = time.perf_counter()
    grid = FourierGrid(problem, refinement)
    rhs = SpectralRightHandSide(problem, grid)
    state = grid.initial_spectra(problem)
    atol = absolute_tolerance(grid.inverse(state), rtol)[:, 0, 0]
    scheme = Scheme(rhs, LawsonStep(rhs.linear), SpectralNorm(grid.weights, rtol, atol), label=SOLVER_NAME)
    difference = _FrameDifference(len(problem.fields)) if compare else None
    initial = problem.initial_values()

    def on_frame(k: int, t: float, values: np.ndarray) -> None:
        sampled = initial if k == 0 else grid.sample(values)
        require_finite(sampled, t, SOLVER_NAME)
        if difference is not None:
            difference.add(sampled, frames[k])
        frames[k] = sampled

    bar = progress_bar(len(problem.times) - 1, f"spectral r={refinement}", progress)
    try:
        with np.errstate(all="ignore"):  # NaN and overflow end in a PhycrnetError instead
            stats = integrate_scheme(scheme, state, problem.times, on_frame, deadline=deadline, progress=bar)
    finally:
        if bar is not None:
            bar.close()
    relative = None if difference is None else difference.relative()
    return SpectralLevel(refinement, time.perf_counter() - start, stats, relative)


def solve_spectral_reference(
    problem: Problem | Any,
    *,
    refinement: int | None = None,
    tolerance: float = 1e-6,
    time_limit: float = 900.0,
    progress: bool = False,
) -> xr.Dataset:
    """Solve a fully periodic problem pseudo-spectrally and return it on the spec grid.

    Args:
        problem: a :class:`~phycrnet.spec.Problem` (or anything :func:`~phycrnet.spec.load_spec`
            accepts); both axes must be periodic.
        refinement: fine points per spec grid spacing of the coarser level; levels ``r`` and
            ``2r`` are solved. ``None``: 1 and 2, then doubling while the estimated error is at
            least ``tolerance``, the next level is predicted to fit into ``time_limit`` and has
            at most :data:`MAX_POINTS` points per axis.
        tolerance: target of the estimated relative L2 error; the time stepper's relative
            tolerance is ``min(1e-8, tolerance/1000)``.
        time_limit: wall-clock seconds the call may take.
        progress: show progress bars.

    Returns:
        A solution dataset (:func:`phycrnet.io.solution.solution_dataset`) at ``problem.times``
        with ``solver = "spectral reference"`` and attributes ``refinement`` (finest level),
        ``refinements``, ``estimated_error`` (mean over fields of the relative L2 difference
        between the two finest levels), ``self_convergence`` (the largest over fields),
        ``field_differences``, ``level_differences``, ``error_estimate``, ``tolerance``,
        ``tolerance_met``, ``stop_reason``, ``method``, ``rtol``, ``level_seconds``,
        ``time_steps`` and ``rejected_steps``.

    Raises:
        OptionsError: invalid options, or an axis that is not periodic.
        PhycrnetError: the time limit was exceeded, or the solution became NaN or infinite.
    """
    problem = load_spec(problem)
    _validate(problem, refinement, tolerance, time_limit)
    run = _SpectralRun(problem, refinement is None, tolerance, time_limit, progress)
    return run.solve(1 if refinement is None else refinement)


def _validate(problem: Problem, refinement: int | None, tolerance: float, time_limit: float) -> None:
    if not all(problem.periodic):
        axes = " and ".join(name for name, periodic in zip("xy", problem.periodic) if not periodic)
        raise OptionsError(
            f"spectral reference: {problem.name!r} is not periodic in {axes}; the spectral "
            "reference needs periodic boundaries on both axes (use method='pypde')"
        )
    if refinement is not None and (isinstance(refinement, bool) or not isinstance(refinement, int) or refinement < 1):
        raise OptionsError(f"refinement: must be a positive integer or None, got {refinement!r}")
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0):
        raise OptionsError(f"tolerance: must be positive, got {tolerance!r}")
    if not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise OptionsError(f"time_limit: must be positive, got {time_limit!r}")


@dataclass
class _SpectralRun:
    """One call of :func:`solve_spectral_reference`: options, frames and levels so far."""

    problem: Problem
    automatic: bool
    tolerance: float
    time_limit: float
    progress: bool
    levels: list[SpectralLevel] = field(default_factory=list)
    start: float = field(default_factory=time.perf_counter)

    def __post_init__(self) -> None:
        self.rtol = min(1e-8, 1e-3 * self.tolerance)
        self.frames = np.empty((len(self.problem.times), len(self.problem.fields), *self.problem.grid.shape))

    def solve(self, first: int) -> xr.Dataset:
        """Levels ``first`` and ``2*first``, further ones if automatic, and the result."""
        self.simulate(first)
        self.simulate(2 * first)
        return self.dataset(self.refine())

    def simulate(self, refinement: int) -> None:
        deadline = self.start + self.time_limit
        try:
            level = simulate_spectral(
                self.problem, refinement, self.frames, compare=bool(self.levels), rtol=self.rtol,
                deadline=deadline, progress=self.progress,
            )
        except OutOfTime:
            raise PhycrnetError(
                f"spectral reference: time limit of {self.time_limit:g} s exceeded at refinement {refinement}"
            ) from None
        self.levels.append(level)

    def difference(self) -> np.ndarray:
        """Per field, the relative difference between the two finest levels."""
        difference = self.levels[-1].difference
        if difference is None:  # only the first level has none, and two are always solved
            raise PhycrnetError("spectral reference: no second level to compare with")
        return difference

    def error(self) -> float:
        """Estimated error of the finest level: mean over fields of its difference."""
        return float(np.mean(self.difference()))

    def refine(self) -> str:
        """Add finer levels while wanted and affordable (automatic only); returns why it stopped."""
        while True:
            if not self.automatic:
                return "requested refinement solved"
            if self.error() < self.tolerance:
                return "tolerance reached"
            level = 2 * self.levels[-1].refinement
            if level * max(self.problem.grid.shape) > MAX_POINTS:
                return f"refinement {level} would exceed {MAX_POINTS} points per axis"
            remaining = self.time_limit - (time.perf_counter() - self.start)
            predicted = self.predicted_seconds()
            if predicted > _SAFETY * remaining:
                return f"time limit: refinement {level} predicted to take {predicted:.3g} s, {max(remaining, 0):.3g} s left"
            self.simulate(level)

    def predicted_seconds(self) -> float:
        """Cost of the next level: 4.5x (4x the points, a little more per FFT point) times the
        last doubling's growth in steps (1-2x: advection limits the step, diffusion does not)."""
        last, previous = self.levels[-1], self.levels[-2]
        growth = min(2.0, max(1.0, last.stats.steps / max(previous.stats.steps, 1)))
        return 4.5 * growth * last.seconds

    def dataset(self, reason: str) -> xr.Dataset:
        """The finest level on the spec grid, with the attributes of :func:`solve_spectral_reference`."""
        return problem_dataset(
            self.problem,
            self.frames,
            solver=SOLVER_NAME,
            wall_seconds=time.perf_counter() - self.start,
            iterations=sum(level.stats.steps for level in self.levels),
            attrs=self.attributes(reason),
        )

    def attributes(self, reason: str) -> dict[str, Any]:
        levels = self.levels
        r = [level.refinement for level in levels]
        difference = self.difference()
        return {
            "refinement": r[-1],
            "refinements": r,
            "estimated_error": self.error(),
            "self_convergence": float(np.max(difference)),
            "field_differences": {name: float(d) for name, d in zip(self.problem.fields, difference)},
            "level_differences": {str(level.refinement): float(np.mean(level.difference)) for level in levels if level.difference is not None},
            "error_estimate": f"mean over fields of ||u_{r[-2]} - u_{r[-1]}||/||u_{r[-1]}||, an upper estimate for u_{r[-1]}",
            "tolerance": self.tolerance,
            "tolerance_met": self.error() < self.tolerance,
            "stop_reason": reason,
            "method": _METHOD,
            "rtol": self.rtol,
            "level_seconds": {str(level.refinement): round(level.seconds, 3) for level in levels},
            "time_steps": {str(level.refinement): level.stats.steps for level in levels},
            "rejected_steps": {str(level.refinement): level.stats.rejected for level in levels},
        }
