"""Every method on one problem, beside strong classical solvers (``phycrnet compare``).

A claim that a network beats another method holds only beside a strong classical solver,
at equal accuracy or equal run time (McGreivy & Hakim, Nature Machine Intelligence 6,
1256-1269, 2024). So the rows are

* ``classical_explicit`` and ``classical_implicit``: the project's own solvers on the
  spec's grid (:mod:`phycrnet.methods.classical`);
* ``pypde``: py-pde on the spec's grid (second-order finite volumes, adaptive time steps;
  :func:`~phycrnet.reference.solver.pypde_solution`);
* ``paper``, ``crn``, ``hybrid``: PhyCRNet under each preset, and ``hybrid_untrained``,
  the hybrid network before training (a classical step in float32) on the grid the trained
  hybrid resolves to (a time budget refines under-resolved transport, ``refine: auto``), so
  that the two rows differ by the training alone;
* ``pinn``: the PINN baseline;

and the columns the rel L2 error over space-time against the converged reference (mean
over fields), the wall-clock seconds of the whole call, and the time each method takes to
reach a common accuracy: the PINN's error at the budget (or, without a PINN row, the
paper preset's). For a network that time comes from its error measured during training
(every ``budget / CURVE_POINTS`` seconds of training, not counted as training); a
classical row reaches it in its wall time or not at all. Every network gets the same
training budget, one after the other on the same machine, and the classical and py-pde rows
get it as their time limit (equal run time; ``options={"pypde": {"time_limit": S}}`` sets
another): a row that runs past it, or blows up, is recorded with an infinite error and the
reason in its ``note``.

Outputs (in ``out_dir``): each row's solution (``<case>_<method>.nc``), the table
(``compare_<case>.json``), snapshots of every row (``compare_<case>_<field>.png``), the
error over t (``compare_<case>_error.png``) and the error against wall time
(``compare_<case>_time.png``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from phycrnet.analysis.metrics import evaluate
from phycrnet.analysis.plots import plot_comparison, plot_error_curves
from phycrnet.errors import DivergenceError, OptionsError, TimeLimitError
from phycrnet.io.solution import fields_of, read_solution, write_solution
from phycrnet.methods.classical import classical
from phycrnet.methods.pinn import pinn_solve
from phycrnet.methods.resolve import training_refinement
from phycrnet.methods.solve import solve
from phycrnet.options.presets import crn_options
from phycrnet.reference.solver import pypde_solution, solve_reference
from phycrnet.spec.problem import Problem, load_spec
from phycrnet.training.engine import Engine

#: The rows, in the order of the table.
METHODS = ("classical_explicit", "classical_implicit", "pypde", "paper", "crn", "hybrid_untrained", "hybrid", "pinn")
#: Error measurements per training curve.
CURVE_POINTS = 30


@dataclass
class MethodResult:
    """One row of the comparison table."""

    method: str
    rel_l2: float
    rel_l2_fields: dict[str, float]
    rel_l2_final: float
    wall_seconds: float
    iterations: int
    time_to_target: float | None = None
    curve: list[tuple[float, float]] = field(default_factory=list)
    file: str = ""
    note: str = ""


@dataclass
class Comparison:
    """The comparison of one problem at one budget."""

    case: str
    time_budget: float
    reference_seconds: float
    reference_estimated_error: float
    target: float | None = None
    target_from: str = ""
    rows: list[MethodResult] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def row(self, method: str) -> MethodResult | None:
        return next((r for r in self.rows if r.method == method), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)


def compare(
    spec: Any,
    *,
    time_budget: float,
    out_dir: str | Path,
    reference: str | Path | xr.Dataset | None = None,
    methods: Sequence[str] | None = None,
    seed: int = 0,
    device: str | None = None,
    threads: int | None = None,
    progress: bool = False,
    options: dict[str, dict[str, Any]] | None = None,
) -> Comparison:
    """Run the chosen rows (default: all of :data:`METHODS`) on ``spec`` and compare them.

    Args:
        spec: catalog name, YAML path or text, dict or :class:`~phycrnet.spec.Problem`.
        time_budget: seconds of training for each network.
        out_dir: folder for the solutions, the table (JSON) and the figures.
        reference: an existing reference solution (file or dataset) instead of solving.
        methods: the rows to run.
        seed, device, threads: passed to every network.
        options: extra options per method name.
    """
    if not time_budget or time_budget <= 0:
        raise OptionsError(f"--time-budget: {time_budget} must be a positive number of seconds")
    chosen = list(methods or METHODS)
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise OptionsError(f"--methods: unknown {', '.join(unknown)} (choose from {', '.join(METHODS)})")
    problem = load_spec(spec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ref = _reference(problem, reference, out / f"{problem.name}_reference.nc")
    comparison = Comparison(
        problem.name, time_budget, float(ref.attrs.get("wall_seconds", math.nan)), float(ref.attrs.get("estimated_error", math.nan))
    )
    common = {"seed": seed, "device": device, "threads": threads, "progress": progress}
    solutions = {}
    for method in chosen:
        start = time.perf_counter()
        try:
            solution, seconds, curve = _run(method, problem, ref, time_budget, common, (options or {}).get(method, {}))
        except (DivergenceError, TimeLimitError) as exc:  # a row that blows up or runs out of time is a result too
            comparison.rows.append(MethodResult(method, math.inf, {}, math.inf, time.perf_counter() - start, 0, note=str(exc)))
            continue
        path = out / f"{problem.name}_{method}.nc"
        write_solution(solution, path)
        solutions[method] = solution
        comparison.rows.append(_row(method, solution, ref, seconds, curve, path))
    _set_target(comparison)
    comparison.figures = [str(p) for p in _figures(problem.name, ref, solutions, comparison, out)]
    (out / f"compare_{problem.name}.json").write_text(comparison.to_json())
    return comparison


def _run(method: str, problem: Problem, ref: xr.Dataset, budget: float, common: dict[str, Any], extra: dict[str, Any]) -> tuple[xr.Dataset, float, list[tuple[float, float]]]:
    """One row: its solution, wall seconds, and error curve over training seconds."""
    curve: list[tuple[float, float]] = []
    start = time.perf_counter()
    if method.startswith("classical_"):  # the project's discretisation, whatever the spec's preset
        solution = classical(problem, scheme=method.removeprefix("classical_"), preset="hybrid", threads=common["threads"], **{"time_limit": budget, **extra})
    elif method == "pypde":
        solution = pypde_solution(problem, **{"time_limit": budget, **extra})
    elif method == "hybrid_untrained":
        solution = solve(problem, preset="hybrid", iterations=0, **{"refine": _hybrid_refinement(problem, budget, extra), **common, **extra})
    elif method == "pinn":
        solution = pinn_solve(problem, time_budget=budget, callback=_recorder(curve, ref, budget), **common, **extra)
    else:
        solution = solve(problem, preset=method, time_budget=budget, callback=_recorder(curve, ref, budget), **common, **extra)
    return solution, time.perf_counter() - start, curve


def _hybrid_refinement(problem: Problem, budget: float, extra: dict[str, Any]) -> int:
    """The training grid's refinement that the hybrid row resolves to under ``budget``."""
    overrides = dict(extra)
    model = overrides.pop("model", None)
    return training_refinement(problem, crn_options(problem.option_sections(), {"time_budget": budget, **overrides}, preset="hybrid", model=model))


def _recorder(curve: list[tuple[float, float]], ref: xr.Dataset, budget: float) -> Callable[[Engine], None]:
    """A training callback that appends ``(training seconds, rel L2)`` every ``budget /
    CURVE_POINTS`` seconds (and at the first iteration)."""
    names = fields_of(ref)
    reference = np.stack([ref[f].values for f in names], axis=1)
    every = budget / CURVE_POINTS

    def record(engine: Engine) -> None:
        if curve and engine.seconds - curve[-1][0] < every:
            return
        frames = current_frames(engine, reference.shape)
        curve.append((engine.seconds, frames_error(frames, reference)))

    return record


def current_frames(engine: Engine, shape: tuple[int, ...]) -> np.ndarray:
    """The solution the engine's task holds now, on the spec's nodes ``(T, C, ny, nx)``."""
    task: Any = engine.task
    if hasattr(task, "predict"):
        return task.predict(task.problem.times)
    frames = task.frames().cpu().double().numpy()
    factor = task.resolved.refine
    return frames[..., ::factor, ::factor][: shape[0]]


def frames_error(frames: np.ndarray, reference: np.ndarray) -> float:
    """rel L2 over space-time, mean over fields, of ``(T, C, ny, nx)`` arrays."""
    errors = [np.linalg.norm(frames[:, c] - reference[:, c]) / max(np.linalg.norm(reference[:, c]), 1e-300) for c in range(reference.shape[1])]
    return float(np.mean(errors))


def _reference(problem: Problem, given: Any, path: Path) -> xr.Dataset:
    if isinstance(given, xr.Dataset):
        return given
    if given is not None:
        return read_solution(given)
    dataset = solve_reference(problem)
    write_solution(dataset, path)
    return dataset


def _row(method: str, solution: xr.Dataset, reference: xr.Dataset, seconds: float, curve: list[tuple[float, float]], path: Path) -> MethodResult:
    report = evaluate(solution, reference)
    fields = report["fields"]
    return MethodResult(
        method=method,
        rel_l2=float(report["rel_l2_mean"]),
        rel_l2_fields={f: float(v["rel_l2"]) for f, v in fields.items()},
        rel_l2_final=float(np.mean([v["rel_l2_final"] for v in fields.values()])),
        wall_seconds=seconds,
        iterations=int(solution.attrs.get("iterations", 0)),
        curve=curve,
        file=str(path),
    )


def _set_target(comparison: Comparison) -> None:
    """The common accuracy (the PINN's error, else the paper preset's) and the time each
    row takes to reach it."""
    source = comparison.row("pinn") or comparison.row("paper")
    if source is None:
        return
    comparison.target, comparison.target_from = source.rel_l2, source.method
    for row in comparison.rows:
        row.time_to_target = time_to_reach(row, comparison.target)


def time_to_reach(row: MethodResult, target: float) -> float | None:
    """Seconds a row takes to reach ``target``: the first point of its training curve at
    or below it, else its wall time if its final result is (the curve is sampled, so the
    state that was written may come after its last point); ``None`` if it never does."""
    for seconds, error in row.curve:
        if error <= target * (1 + 1e-9):
            return seconds
    return row.wall_seconds if row.rel_l2 <= target * (1 + 1e-9) else None


def _figures(name: str, reference: xr.Dataset, solutions: dict[str, xr.Dataset], comparison: Comparison, out: Path) -> list[Path]:
    written = [plot_comparison(reference, solutions, out / f"compare_{name}_{f}.png", field=f) for f in fields_of(reference)]
    per_time = {}
    for method, solution in solutions.items():
        report = evaluate(solution, reference)
        t = np.asarray(report["t"])
        errors = np.mean([np.asarray(v["rel_l2_per_time"]) for v in report["fields"].values()], axis=0)
        per_time[method] = (t[1:], errors[1:])  # t = 0 is the given initial value
    written.append(plot_error_curves(per_time, out / f"compare_{name}_error.png", ylabel="rel L2 per frame"))
    over_time = {r.method: (np.array([p[0] for p in r.curve]), np.array([p[1] for p in r.curve])) for r in comparison.rows if r.curve}
    over_time.update({r.method: (np.array([r.wall_seconds]), np.array([r.rel_l2])) for r in comparison.rows if not r.curve})
    written.append(plot_error_curves(over_time, out / f"compare_{name}_time.png", ylabel="rel L2 over space-time", xlabel="seconds"))
    return written


def format_table(comparison: Comparison) -> str:
    """The comparison as a plain-text table."""
    target = f"{comparison.target:.1e} ({comparison.target_from})" if comparison.target is not None else "-"
    lines = [
        f"{comparison.case}: {comparison.time_budget:g} s of training per network "
        f"(reference: {comparison.reference_seconds:.1f} s, estimated error {comparison.reference_estimated_error:.1e})",
        f"{'method':<20} {'rel L2':>9} {'final':>9} {'seconds':>9} {'iterations':>10}  time to {target}",
    ]
    for r in comparison.rows:
        reached = "not reached" if r.time_to_target is None else f"{r.time_to_target:.1f} s"
        if r.note:
            reached += f" ({r.note})"
        lines.append(f"{r.method:<20} {r.rel_l2:>9.2e} {r.rel_l2_final:>9.2e} {r.wall_seconds:>9.1f} {r.iterations:>10d}  {reached}")
    return "\n".join(lines)
