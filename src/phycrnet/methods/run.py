"""What every trained method shares around the engine: paths, checkpoint keys, set-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from phycrnet.errors import OptionsError
from phycrnet.models.coefficients import Coefficients
from phycrnet.options import TrainingOptions
from phycrnet.spec.problem import Problem
from phycrnet.training.device import configure_threads, dtype_of, seed_everything, select_device
from phycrnet.training.engine import Engine
from phycrnet.training.task import Task


class NetworkTask:
    """The task pieces of one network trained with the problem's learnable coefficients
    (PhyCRNet and the PINN): Adam trains the network at the scheduled rate and the
    coefficients at ``coefficient_lr_factor`` times it (a handful of scalars with clean
    gradients)."""

    model: nn.Module
    coefficients: Coefficients
    coefficient_lr_factor: float

    def modules(self) -> dict[str, nn.Module]:
        return {"model": self.model, "coefficients": self.coefficients}

    def parameter_groups(self) -> list[dict[str, Any]]:
        groups: list[dict[str, Any]] = [{"params": list(self.model.parameters()), "factor": 1.0}]
        coefficients = list(self.coefficients.parameters())
        if coefficients:
            groups.append({"params": coefficients, "factor": self.coefficient_lr_factor, "coefficients": True})
        return groups

    def trainable(self, *, coefficients: bool = True) -> list[nn.Parameter]:
        return list(self.model.parameters()) + (list(self.coefficients.parameters()) if coefficients else [])

    def network_parameters(self) -> list[nn.Parameter]:
        return list(self.model.parameters())

    def learned_parameters(self) -> dict[str, float]:
        return self.coefficients.learned()


def run_paths(out: Path | None, log: Path | None = None, checkpoint: Path | None = None) -> tuple[Path | None, Path | None]:
    """Default log and checkpoint paths beside ``out``: ``NAME.log.csv``, ``NAME.ckpt.pt``."""
    if out is not None:
        stem = out.with_suffix("")
        log = log or stem.with_name(stem.name + ".log.csv")
        checkpoint = checkpoint or stem.with_name(stem.name + ".ckpt.pt")
    return log, checkpoint


def problem_key(problem: Problem, method: str) -> str:
    """What a checkpoint belongs to: the method and the parts of the spec the trained
    state depends on (not its options, name or description)."""
    data = problem.model.dump()
    for key in ("training", "description", "name", "preset", "pinn", "physics", "model"):
        data.pop(key, None)
    return method + "\n" + yaml.safe_dump(data, sort_keys=True)


def compute_setup(options: TrainingOptions) -> tuple[torch.device, torch.dtype]:
    """Threads, seeds, device and dtype of a run, set before anything is built."""
    configure_threads(options.threads)
    seed_everything(options.seed)
    return select_device(options.device), dtype_of(options.dtype)


def start_engine(
    task: Task,
    options: TrainingOptions,
    *,
    out: Path | None,
    log: Path | None = None,
    checkpoint: Path | None = None,
    resume: bool = False,
    progress: bool = False,
    callback: Callable[[Engine], Any] | None = None,
) -> Engine:
    """The engine of a run, continued from its checkpoint when ``resume`` is set (a new
    run starts its log afresh)."""
    log_path, checkpoint_path = run_paths(out, log, checkpoint)
    if resume and checkpoint_path is None:
        raise OptionsError("--resume needs --out or --checkpoint to find the checkpoint")
    if not resume and log_path is not None and log_path.exists():
        log_path.unlink()
    engine = Engine(task, options, log_path=log_path, checkpoint_path=checkpoint_path, progress=progress, callback=callback)
    if resume:
        assert checkpoint_path is not None
        engine.load_checkpoint(checkpoint_path)
    return engine


def as_path(value: str | Path | None) -> Path | None:
    return Path(value) if value is not None else None
