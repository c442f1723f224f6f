"""The Python API of the PhyCRNet solver: ``phycrnet.solve(spec, ...)``.

It mirrors ``phycrnet solve``: load the spec, merge the training options, train (or resume),
optionally roll the trained network past ``t_end``, and return the solution as an
:class:`xarray.Dataset` (written to ``out`` when given, together with a CSV log and a
checkpoint beside it).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from phycrnet.methods.config import model_config, training_config
from phycrnet.errors import OptionsError, PhycrnetWarning
from phycrnet.io.solution import trained_solution, write_solution
from phycrnet.spec.problem import Problem, load_spec
from phycrnet.training.trainer import Trainer, TrainingResult


def run_paths(out: Path | None, log: Path | None = None, checkpoint: Path | None = None) -> tuple[Path | None, Path | None]:
    """Default log and checkpoint paths beside ``out``: ``NAME.log.csv``, ``NAME.ckpt.pt``."""
    if out is not None:
        stem = out.with_suffix("")
        log = log or stem.with_name(stem.name + ".log.csv")
        checkpoint = checkpoint or stem.with_name(stem.name + ".ckpt.pt")
    return log, checkpoint


def solve(
    spec: Any,
    *,
    out: str | Path | None = None,
    iterations: int | None = None,
    time_budget: float | None = None,
    seed: int | None = None,
    device: str | None = None,
    resume: bool = False,
    extrapolate: float | None = None,
    progress: bool = False,
    log: str | Path | None = None,
    checkpoint: str | Path | None = None,
    extra_losses=None,
    data: Any = None,
    drop_outside_time: bool = False,
    model: Mapping[str, Any] | None = None,
    **training: Any,
) -> xr.Dataset:
    """Train PhyCRNet on ``spec`` and return the solution.

    Args:
        spec: catalog name, YAML path or text, dict, or :class:`~phycrnet.spec.Problem`.
        out: netCDF file to write (also sets the default log and checkpoint paths).
        iterations, time_budget: stop after this many iterations / seconds of training.
        seed, device: reproducibility and placement (``auto``, ``cpu``, ``cuda``).
        resume: continue from the checkpoint instead of starting afresh.
        extrapolate: roll the trained network on to this time (> t_end); those frames
            are marked by the ``extrapolated`` coordinate.
        progress: show a progress bar.
        log, checkpoint: override the default paths.
        extra_losses: ``f(frames, t, parameters) -> {name: loss}`` added to the physics terms
            (``frames`` on the training grid, which ``refine`` makes finer than the spec's).
        data: observations (CSV path, DataFrame or :class:`~phycrnet.observations.Observations`);
            their misfit joins the loss as ``data_<field>`` terms, scaled by the training
            option ``data_weight``.
        drop_outside_time: leave out observations later than ``t_end`` instead of failing.
        model: overrides of the spec's ``model:`` section.
        **training: overrides of the spec's ``training:`` section (``lr``, ``weighting``, ...).

    Returns:
        Dataset with one variable per field, dims ``(t, y, x)``.
    """
    problem = load_spec(spec)
    overrides = dict(training, iterations=iterations, time_budget=time_budget, seed=seed, device=device)
    config = training_config(problem.training, overrides)
    architecture = model_config(problem.network, model)
    out_path = Path(out) if out is not None else None
    log_path, checkpoint_path = run_paths(out_path, Path(log) if log else None, Path(checkpoint) if checkpoint else None)
    if resume and checkpoint_path is None:
        raise OptionsError("--resume needs --out or --checkpoint to find the checkpoint")
    if extrapolate is not None and extrapolate <= problem.t_end:
        raise OptionsError(f"--extrapolate: {extrapolate} must be later than t_end = {problem.t_end}")
    if not resume and log_path is not None and log_path.exists():
        log_path.unlink()
    config = config.model_copy(update={"refine": training_refinement(problem, config)})
    solver_problem = refined(problem, config.refine)
    data_loss = _data_loss(data, solver_problem, config, drop_outside_time)
    trainer = Trainer(
        solver_problem,
        config,
        architecture,
        log_path=log_path,
        checkpoint_path=checkpoint_path,
        progress=progress,
        extra_losses=_combined(extra_losses, data_loss),
    )
    if data_loss is not None:
        data_loss.progress = trainer.progress_fraction
    _advise_refinement(trainer.peclet, config.refine)
    if resume:
        trainer.load_checkpoint(checkpoint_path)
    result = trainer.train()
    frames, times, extrapolated = result.frames, problem.times, np.zeros(problem.n_steps + 1, dtype=np.int8)
    if extrapolate is not None:
        extra = int(round((extrapolate - problem.t_end) / problem.dt))
        frames = trainer.extrapolate(extra)
        times = problem.dt * np.arange(frames.shape[0])
        extrapolated = (np.arange(frames.shape[0]) > problem.n_steps).astype(np.int8)
    solver_frames = frames
    frames = frames[..., :: config.refine, :: config.refine]  # the spec's nodes
    dataset = _dataset(problem, config, trainer, result, frames, times)
    if data_loss is not None:
        dataset.attrs.update(_data_summary(data_loss, solver_frames, times))
    dataset = dataset.assign_coords(extrapolated=("t", extrapolated))
    if out_path is not None:
        write_solution(dataset, out_path)
    return dataset


#: The largest factor ``refine: auto`` chooses: each doubling multiplies the cost of an
#: iteration by four or more (pixels) and usually by the extra sub-steps a finer grid needs.
MAX_AUTO_REFINE = 4
#: The cell Peclet number ``refine: auto`` refines the training grid down to (see
#: :func:`training_refinement`), and above which :func:`solve` advises refinement.
RESOLVED_PECLET = 2.5


def training_refinement(problem: Problem, config: Any) -> int:
    """The refinement factor of the training grid: ``config.refine`` where it is a number.

    ``"auto"`` refines only runs limited by a time budget (and no iteration count), whose
    cost does not grow with the grid, and only where the spec's grid does not resolve the
    transport: a cell Peclet number above ``RESOLVED_PECLET`` on it, brought to it or below
    by ``ceil(Pe / RESOLVED_PECLET)`` (at most ``MAX_AUTO_REFINE``). The discrete floors of
    Burgers at nu = 0.005 (RESULTS.md, ``floors_refined``, the exact solutions of the
    training equations) fall tenfold between Pe 3.1 (65²: 1.6e-2 mixed, 3.1e-3 flux) and
    2.1 (97²: 1.5e-3, 7.8e-4); at 300 s, one thread, the trained networks followed
    (RESULTS.md ``catalog_300s``, 97²: 1.5e-3 mixed, 4.1e-3 flux; 1.6e-2 and 9.2e-3 on 65²
    in stop 16). 129² (Pe 1.6) costs twice as much per iteration and did not help at 300 s
    (ad hoc: 7.7e-4 mixed, 5.3e-3 flux: training there took flux further from its start).
    An iteration-capped run stays on the spec's grid, where each iteration would otherwise
    cost about 50 times more (Burgers: 0.16 s on 33², 8 s on 97²); :func:`solve` warns
    instead. So do initial values given as files or random fields, which live on the
    spec's grid.
    """
    if config.refine != "auto":
        return int(config.refine)
    if config.time_budget is None or config.iterations is not None or not _expression_initials(problem):
        return 1
    peclet = spec_grid_peclet(problem, config)
    if not math.isfinite(peclet) or peclet <= RESOLVED_PECLET:
        return 1
    return min(MAX_AUTO_REFINE, math.ceil(peclet / RESOLVED_PECLET))


def spec_grid_peclet(problem: Problem, config: Any) -> float:
    """The largest cell Peclet number of the initial state on the spec's grid
    (:meth:`Physics.cell_peclet_number`)."""
    import torch

    from phycrnet.physics.residual import Physics

    physics = Physics(problem, config.physics_options(), dtype=torch.float64)
    parameters = problem.parameter_values()
    t0 = torch.zeros(1, dtype=torch.float64)
    u0 = torch.as_tensor(problem.initial_values(), dtype=torch.float64).unsqueeze(0)
    return physics.cell_peclet_number(physics.enforce(u0, t0, parameters), t0, parameters)


def _expression_initials(problem: Problem) -> bool:
    return all(isinstance(raw, (int, float, str)) for raw in problem.model.initial.values())


def refined(problem: Problem, factor: int) -> Problem:
    """``problem`` on a grid ``factor`` times finer per axis, whose every ``factor``-th node
    is a node of the original grid: a bounded axis of n nodes gets (n - 1) * factor + 1, a
    periodic axis of n points n * factor. Initial values must be expressions (a file or a
    random field is defined on the original grid only)."""
    if factor == 1:
        return problem
    for name, raw in problem.model.initial.items():
        if not isinstance(raw, (int, float, str)):
            raise OptionsError(f"refine {factor}: initial.{name} is not an expression (a file or random field lives on the spec's grid); use refine 1")
    nodes = [axis.n * factor if axis.periodic else (axis.n - 1) * factor + 1 for axis in (problem.grid.x, problem.grid.y)]
    return problem.with_changes(grid={"nx": nodes[0], "ny": nodes[1]})


def _advise_refinement(peclet: float | None, refine: int) -> None:
    """Warn where the training grid does not resolve the transport (cell Peclet number
    above ``RESOLVED_PECLET``, measured by ``physics_input: auto``) but a finer grid would:
    at 300 s, burgers_mixed 0.122 on its 33² nodes and 1.5e-3 with ``refine: 3``
    (see :func:`training_refinement`)."""
    if peclet is None or not math.isfinite(peclet) or peclet <= RESOLVED_PECLET:
        return
    factor = math.ceil(refine * peclet / RESOLVED_PECLET * (1 - 1e-9))  # from the spec's grid
    warnings.warn(
        f"cell Peclet number {peclet:.1f} > {RESOLVED_PECLET:g}: the grid does not resolve the transport; "
        f"refine {factor} (--refine {factor}; automatic under a --time-budget alone) trains on a finer grid",
        PhycrnetWarning,
        stacklevel=3,
    )


def _data_loss(data: Any, problem: Problem, config, drop_outside_time: bool):
    """The data-misfit term for ``data`` (``None`` without observations)."""
    if data is None:
        return None
    from phycrnet.io.observations import DataLoss, Observations, read_observations

    if isinstance(data, Observations):
        observations = read_observations(data.to_frame(), problem, drop_outside_time=drop_outside_time)
    else:
        observations = read_observations(data, problem, drop_outside_time=drop_outside_time)
    decay_start = DataLoss.decay_start_for(problem, config.identification_share)
    return DataLoss(observations, problem, weight=config.data_weight, final_ratio=config.data_final_ratio, decay_start=decay_start)


def _combined(*hooks):
    """One ``extra_losses`` hook from several (``None`` entries skipped)."""
    active = [h for h in hooks if h is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]

    def combined(frames, t, parameters):
        terms = {}
        for hook in active:
            terms.update(hook(frames, t, parameters))
        return terms

    return combined


def _data_summary(data_loss, frames: np.ndarray, times: np.ndarray) -> dict[str, Any]:
    """Attributes describing the observations and the final misfit (RMS, per field)."""
    observations = data_loss.observations
    predicted = data_loss.predict(frames, times)
    rms = {}
    for field, values in predicted.items():
        inside = np.isfinite(values)
        rms[field] = float(np.sqrt(np.mean((values[inside] - observations.values[field][inside]) ** 2)))
    return {
        "observations": len(observations),
        "observations_source": observations.source,
        "data_misfit_rms": json.dumps(rms),
    }


def _dataset(problem: Problem, config, trainer: Trainer, result: TrainingResult, frames: np.ndarray, times: np.ndarray) -> xr.Dataset:
    attrs = {
        "training": json.dumps(config.model_dump(mode="json")),
        "derivatives": trainer.physics.scheme,
        "substeps": trainer.substeps,
        "physics_input": int(trainer.model.config.physics_input),
        "physics_predictor": trainer.model.config.physics_predictor if trainer.model.config.physics_input else "none",
        "implicit_diffusion": int(trainer.implicit_diffusion),
        "predictor_steps": trainer.predictor_steps if trainer.model.config.physics_input else 0,
        "device": str(trainer.device),
        "refine": config.refine,
        "recoveries": trainer.recoveries,
        "lbfgs_stalls": trainer.lbfgs_stalls,
    }
    if trainer.stiffness is not None:
        attrs["stiffness_dt_rho"] = round(trainer.stiffness, 4)
    if trainer.peclet is not None:
        attrs["cell_peclet"] = round(trainer.peclet, 4) if math.isfinite(trainer.peclet) else "inf"
    return trained_solution(problem, frames, times, solver="phycrnet", result=result, attrs=attrs)
