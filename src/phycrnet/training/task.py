"""What a method hands to the training engine, and what the engine hands back.

A :class:`Task` owns the trainable modules (a network, learnable coefficients) and knows
how to evaluate its loss terms; the engine (:mod:`phycrnet.training.engine`) owns
everything else: optimisers, schedule, budget, divergence policy, best state,
checkpoints, log. PhyCRNet (:mod:`phycrnet.methods.crn`) and the PINN
(:mod:`phycrnet.methods.pinn`) are tasks, so both train on the same machinery.

Members: a task may train ``members`` independent problems at once (a batched sweep).
Its loss terms are then vectors of shape ``(members,)`` and its parameters are stacked
along a leading member dimension; with one member the terms are scalars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import nn


class Task(Protocol):
    """The part of a training run that depends on the method."""

    #: Independent problems trained together (1 for an ordinary run).
    members: int
    device: torch.device
    #: What a checkpoint must belong to (the problem and the method).
    key: str

    def modules(self) -> dict[str, nn.Module]:
        """The modules whose state is trained, snapshotted and checkpointed."""
        ...

    def parameter_groups(self) -> list[dict[str, Any]]:
        """Adam's parameter groups; a group may carry ``factor`` (its learning rate
        relative to the schedule's) and ``coefficients: True`` (held while frozen)."""
        ...

    def trainable(self, *, coefficients: bool = True) -> list[nn.Parameter]:
        """Every trained parameter (L-BFGS), with or without the learnable coefficients."""
        ...

    def network_parameters(self) -> list[nn.Parameter]:
        """The network's parameters (gradient clipping, gradient-norm weighting)."""
        ...

    def windows(self, curriculum: tuple[int, ...] | None) -> list[int | None]:
        """The training window of each curriculum stage (``None``: the whole run)."""
        ...

    def prepare(self, phase: str, iteration: int) -> None:
        """Called before every loss evaluation of ``phase`` (``adam`` or ``lbfgs``)."""
        ...

    def losses(self, window: int | None, phase: str) -> dict[str, torch.Tensor]:
        """Named loss terms on ``window`` (``phase``: ``adam``, ``lbfgs`` or ``final``)."""
        ...

    def standstill_loss(self) -> torch.Tensor:
        """Per member, the loss of a solution that never leaves its initial value."""
        ...

    def learned_parameters(self) -> dict[str, float]:
        """The learned coefficients' current values (of the first member)."""
        ...

    def extra_state(self) -> dict[str, Any]:
        """State outside the modules that a checkpoint must keep (random draws, ...)."""
        ...

    def load_extra_state(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainingResult:
    """What a finished run reports (per member where a batch trained several)."""

    iterations: int
    seconds: float
    loss_terms: dict[str, float]
    best_loss: float
    stopped_by: str = "iterations"
    recoveries: int = 0
    lbfgs_stalls: int = 0
    parameters: dict[str, float] = field(default_factory=dict)
    member_terms: list[dict[str, float]] = field(default_factory=list)
    diverged: list[bool] = field(default_factory=list)
