"""The Python API of the PhyCRNet solver: ``phycrnet.solve(spec, ...)``.

It mirrors ``phycrnet solve``: load the spec, merge the training options, train (or resume),
optionally roll the trained network past ``t_end``, and return the solution as an
:class:`xarray.Dataset` (written to ``out`` when given, together with a CSV log and a
checkpoint beside it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from phycrnet.config import model_config, training_config
from phycrnet.errors import OptionsError
from phycrnet.io import solution_dataset, write_solution
from phycrnet.spec import Problem, load_spec
from phycrnet.train import Trainer, TrainingResult


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
    trainer = Trainer(
        problem,
        config,
        architecture,
        log_path=log_path,
        checkpoint_path=checkpoint_path,
        progress=progress,
        extra_losses=extra_losses,
    )
    if resume:
        trainer.load_checkpoint(checkpoint_path)
    result = trainer.train()
    frames, times, extrapolated = result.frames, problem.times, np.zeros(problem.n_steps + 1, dtype=np.int8)
    if extrapolate is not None:
        extra = int(round((extrapolate - problem.t_end) / problem.dt))
        frames = trainer.extrapolate(extra)
        times = problem.dt * np.arange(frames.shape[0])
        extrapolated = (np.arange(frames.shape[0]) > problem.n_steps).astype(np.int8)
    dataset = _dataset(problem, config, trainer, result, frames, times)
    dataset = dataset.assign_coords(extrapolated=("t", extrapolated))
    if out_path is not None:
        write_solution(dataset, out_path)
    return dataset


def _dataset(problem: Problem, config, trainer: Trainer, result: TrainingResult, frames: np.ndarray, times: np.ndarray) -> xr.Dataset:
    fields = {name: frames[:, c] for c, name in enumerate(problem.fields)}
    attrs = {
        "t_train_end": problem.t_end,
        "stopped_by": result.stopped_by,
        "best_loss": result.best_loss,
        "training": json.dumps(config.model_dump(mode="json")),
        "derivatives": trainer.physics.scheme,
        "device": str(trainer.device),
    }
    if result.parameters:
        attrs["identified_parameters"] = json.dumps(result.parameters)
    return solution_dataset(
        fields,
        times,
        problem.grid.x.points,
        problem.grid.y.points,
        solver="phycrnet",
        spec_yaml=problem.to_yaml(),
        periodic=problem.periodic,
        wall_seconds=result.seconds,
        iterations=result.iterations,
        loss_terms=result.loss_terms,
        attrs=attrs,
    )
