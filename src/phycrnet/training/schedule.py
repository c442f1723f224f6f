"""Budget, progress, curriculum stages and the learning-rate schedule of a run.

Progress ``p`` in [0, 1] is the larger of iterations done / iteration cap and seconds
spent / time budget; every schedule is a function of it (and of the iteration for
``steplr``), so a resumed run continues on the same schedule. The run's Adam phase covers
``p < 1 - lbfgs_fraction``; the L-BFGS finish the rest. A curriculum splits the Adam
phase into equal stages, each training a longer window with a schedule of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from phycrnet.options import TrainingOptions, total_iterations


def schedule_factor(schedule: str, q: float, *, iteration: int, options: TrainingOptions) -> float:
    """Learning-rate multiplier of the named schedule at progress ``q`` in [0, 1] of the
    span it covers (``iteration`` counts Adam iterations within that span)."""
    if schedule == "step":
        return options.lr_decay ** math.floor(q / options.decay_every + 1e-12)
    if schedule == "steplr":
        return options.lr_decay ** (iteration // options.step_size)
    if schedule == "cosine":
        return options.final_lr_ratio + (1 - options.final_lr_ratio) * 0.5 * (1 + math.cos(math.pi * q))
    if schedule == "exponential":
        return options.final_lr_ratio**q
    return 1.0


@dataclass(frozen=True)
class Budget:
    """The run's limits: an iteration cap, a time budget, or both (whichever ends first)."""

    cap: int | None
    seconds: float | None
    adam_share: float
    stages: int = 1

    @classmethod
    def of(cls, options: TrainingOptions, stages: int = 1) -> Budget:
        return cls(total_iterations(options), options.time_budget, 1.0 - options.lbfgs_fraction, stages)

    def progress(self, iteration: int, seconds: float) -> float:
        fractions = [0.0]
        if self.cap:
            fractions.append(iteration / self.cap)
        if self.seconds:
            fractions.append(seconds / self.seconds)
        return min(1.0, max(fractions))

    def adam_done(self, iteration: int, seconds: float) -> str | None:
        """Why the Adam phase is over (``"iterations"``, ``"time budget"``) or ``None``."""
        if self.cap is not None and iteration >= round(self.cap * self.adam_share):
            return "iterations"
        if self.seconds is not None and seconds >= self.seconds * self.adam_share:
            return "time budget"
        return None

    def done(self, iteration: int, seconds: float) -> str | None:
        """Why the run is over, or ``None``."""
        if self.cap is not None and iteration >= self.cap:
            return "iterations"
        if self.seconds is not None and seconds >= self.seconds:
            return "time budget"
        return None

    def stage(self, p: float) -> int:
        """The curriculum stage at progress ``p`` (the last one from the end of Adam on)."""
        if self.stages <= 1 or self.adam_share <= 0:
            return self.stages - 1
        return min(self.stages - 1, int(p / (self.adam_share / self.stages) + 1e-12))

    def schedule_progress(self, p: float, span: str) -> float:
        """Progress of the learning-rate schedule: over the run, or over the Adam phase
        (each curriculum stage has a schedule of its own)."""
        if self.stages <= 1 and span == "run":
            return p
        if self.adam_share <= 0:
            return 1.0
        length = self.adam_share / self.stages
        start = length * self.stage(p) if self.stages > 1 else 0.0
        return min(1.0, max(0.0, (p - start) / length))
