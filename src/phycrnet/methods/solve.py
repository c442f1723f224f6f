"""The Python API of the PhyCRNet solver: ``phycrnet.solve(spec, ...)``.

It mirrors ``phycrnet solve``: load the spec, merge the options (preset, spec sections,
overrides: :mod:`phycrnet.options.presets`), resolve the ``auto`` choices
(:mod:`phycrnet.methods.resolve`), train (or resume), optionally roll the trained network
past ``t_end``, and return the solution as an :class:`xarray.Dataset` (written to ``out``
when given, with a CSV log and a checkpoint beside it).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from phycrnet.errors import OptionsError
from phycrnet.io.observations import Observations, read_observations
from phycrnet.io.solution import trained_solution, write_solution
from phycrnet.losses.data import DataLoss
from phycrnet.methods.crn import CrnTask, ExtraLosses
from phycrnet.methods.resolve import Resolved, advise_refinement, resolve
from phycrnet.methods.run import as_path, compute_setup, start_engine
from phycrnet.options import CrnOptions, crn_options
from phycrnet.spec.problem import Problem, load_spec
from phycrnet.training.engine import Engine
from phycrnet.training.task import TrainingResult


@dataclass
class CrnRun:
    """A PhyCRNet run set up and ready to train (see :func:`prepare`)."""

    problem: Problem
    options: CrnOptions
    resolved: Resolved
    task: CrnTask
    data_loss: DataLoss | None = None


def prepare(
    spec: Any,
    *,
    preset: str | None = None,
    model: Mapping[str, Any] | None = None,
    extra_losses: ExtraLosses | None = None,
    data: Any = None,
    drop_outside_time: bool = False,
    **options: Any,
) -> CrnRun:
    """Load, merge, resolve and build a PhyCRNet run without training it."""
    problem = load_spec(spec)
    run_options = crn_options(problem.option_sections(), options, preset=preset, model=model)
    observations = _observations(data, problem, drop_outside_time)
    device, dtype = compute_setup(run_options.training)
    resolved = resolve(problem, run_options)
    data_loss = _data_loss(observations, resolved.problem, run_options)
    task = CrnTask(resolved, run_options, device=device, dtype=dtype, extra_losses=_combined(extra_losses, data_loss))
    return CrnRun(problem, run_options, resolved, task, data_loss)


def solve(
    spec: Any,
    *,
    out: str | Path | None = None,
    preset: str | None = None,
    iterations: int | None = None,
    time_budget: float | None = None,
    seed: int | None = None,
    device: str | None = None,
    resume: bool = False,
    extrapolate: float | None = None,
    progress: bool = False,
    log: str | Path | None = None,
    checkpoint: str | Path | None = None,
    extra_losses: ExtraLosses | None = None,
    data: Any = None,
    drop_outside_time: bool = False,
    model: Mapping[str, Any] | None = None,
    callback: Callable[[Engine], Any] | None = None,
    **options: Any,
) -> xr.Dataset:
    """Train PhyCRNet on ``spec`` and return the solution.

    Args:
        spec: catalog name, YAML path or text, dict, or :class:`~phycrnet.spec.Problem`.
        out: netCDF file to write (also sets the default log and checkpoint paths).
        preset: ``hybrid``, ``crn`` or ``paper`` (default: the spec's, else ``hybrid``).
        iterations, time_budget: stop after this many iterations / seconds of training.
        seed, device: reproducibility and placement (``auto``, ``cpu``, ``cuda``).
        resume: continue from the checkpoint instead of starting afresh.
        extrapolate: roll the trained network on to this time (> t_end); those frames
            are marked by the ``extrapolated`` coordinate.
        progress: show a progress bar.
        log, checkpoint: override the default paths.
        extra_losses: ``f(frames, t, parameters) -> {name: loss}`` added to the physics terms
            (``frames`` on the training grid, which ``refine`` makes finer than the spec's).
        data: observations (CSV path, DataFrame or :class:`~phycrnet.io.observations.Observations`);
            their misfit joins the loss as ``data_<field>`` terms.
        drop_outside_time: leave out observations later than ``t_end`` instead of failing.
        model: overrides of the spec's ``model:`` section.
        callback: ``callback(engine)`` after every Adam iteration and L-BFGS outer step
            (not counted as training time).
        **options: overrides of the spec's ``physics:`` and ``training:`` sections.

    Returns:
        Dataset with one variable per field, dims ``(t, y, x)``.
    """
    overrides = dict(options, iterations=iterations, time_budget=time_budget, seed=seed, device=device)
    run = prepare(spec, preset=preset, model=model, extra_losses=extra_losses, data=data, drop_outside_time=drop_outside_time, **overrides)
    if extrapolate is not None and extrapolate <= run.problem.t_end:
        raise OptionsError(f"--extrapolate: {extrapolate} must be later than t_end = {run.problem.t_end}")
    engine = start_engine(run.task, run.options.training, out=as_path(out), log=as_path(log), checkpoint=as_path(checkpoint), resume=resume, progress=progress, callback=callback)
    if run.data_loss is not None:
        run.data_loss.progress = engine.progress_fraction
    advise_refinement(run.resolved)
    result = engine.train()
    dataset = solution(run, result, extrapolate)
    if out is not None:
        write_solution(dataset, Path(out))
    return dataset


def solution(run: CrnRun, result: TrainingResult, extrapolate: float | None = None) -> xr.Dataset:
    """The trained network's solution on the spec's nodes, rolled on to ``extrapolate``."""
    problem = run.problem
    n_frames = problem.n_steps if extrapolate is None else int(round(extrapolate / problem.dt))
    training_frames = run.task.frames(n_frames).cpu().double().numpy()
    times = problem.dt * np.arange(n_frames + 1)
    factor = run.resolved.refine
    dataset = crn_dataset(run, result, training_frames[..., ::factor, ::factor], times)
    if run.data_loss is not None:
        dataset.attrs.update(_data_summary(run.data_loss, training_frames, times))
    return dataset.assign_coords(extrapolated=("t", (np.arange(n_frames + 1) > problem.n_steps).astype(np.int8)))


def crn_dataset(run: CrnRun, result: TrainingResult, frames: np.ndarray, times: np.ndarray) -> xr.Dataset:
    """The output dataset of a PhyCRNet run: the preset, the options and the resolved choices."""
    attrs = {
        "preset": run.options.preset,
        "options": json.dumps(run.options.to_json()),
        "device": str(run.task.device),
        "recoveries": result.recoveries,
        "lbfgs_stalls": result.lbfgs_stalls,
        **run.resolved.attributes(run.task.model.config),
    }
    return trained_solution(run.problem, frames, times, solver="phycrnet", result=result, attrs=attrs)


def _observations(data: Any, problem: Problem, drop_outside_time: bool) -> Observations | None:
    """The observations of ``data``, checked against ``problem`` (before anything is built)."""
    if data is None:
        return None
    source = data.to_frame() if isinstance(data, Observations) else data
    return read_observations(source, problem, drop_outside_time=drop_outside_time)


def _data_loss(observations: Observations | None, problem: Problem, options: CrnOptions) -> DataLoss | None:
    """The data-misfit term on the training ``problem`` (``None`` without observations)."""
    if observations is None:
        return None
    training = options.training
    decay_start = DataLoss.decay_start_for(problem, training.identification_share)
    return DataLoss(observations, problem, weight=training.data_weight, final_ratio=training.data_final_ratio, decay_start=decay_start)


def _combined(*hooks: ExtraLosses | None) -> ExtraLosses | None:
    """One ``extra_losses`` hook from several (``None`` entries skipped)."""
    active = [h for h in hooks if h is not None]
    if len(active) <= 1:
        return active[0] if active else None

    def combined(frames: Any, t: Any, parameters: dict[str, Any]) -> dict[str, Any]:
        terms = {}
        for hook in active:
            terms.update(hook(frames, t, parameters))
        return terms

    return combined


def _data_summary(data_loss: DataLoss, frames: np.ndarray, times: np.ndarray) -> dict[str, Any]:
    """Attributes describing the observations and the final misfit (RMS, per field)."""
    observations = data_loss.observations
    predicted = data_loss.predict(frames, times)
    rms = {}
    for field, values in predicted.items():
        inside = np.isfinite(values)
        rms[field] = float(np.sqrt(np.mean((values[inside] - observations.values[field][inside]) ** 2)))
    return {"observations": len(observations), "observations_source": observations.source, "data_misfit_rms": json.dumps(rms)}
