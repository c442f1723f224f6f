"""The L-BFGS finish: the last ``lbfgs_fraction`` of a run, on the weighted loss with the
weights frozen at their last Adam values.

* Every loss-and-gradient evaluation (line-search trials included) counts as one
  iteration, so an iteration costs about the same in both phases.
* L-BFGS minimises the loss divided by its value where its curvature history began:
  torch's LBFGS tests absolute thresholds (a gradient of 1e-7), and on a loss of 6e-7
  (Allen-Cahn after Adam) they ended every outer step after one evaluation.
* An outer step that ends where it began (no decrease) clears the curvature history;
  otherwise every later step repeats the same failed search.
* A non-finite loss restarts from the best state with an empty history and half the step
  length (the divergence policy, :mod:`phycrnet.training.divergence`).
* An outer step ends at the iteration cap, at the evaluations the time budget still has
  room for, and at those that fit in ``checkpoint_every`` seconds, so a checkpoint is
  never much older than that; a line search is stopped before an evaluation that would
  end past the budget (judged by the one before it), and the state the last complete
  step ended in is kept.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Protocol, cast

import torch

from phycrnet.losses.weighting import Weighting
from phycrnet.options import TrainingOptions
from phycrnet.training.divergence import LBFGS_RESTARTS, DivergenceGuard
from phycrnet.training.schedule import Budget
from phycrnet.training.task import Task

#: An outer step whose start is not below the previous step's start by this relative
#: amount counts as stalled, and the curvature history is cleared.
STALL_TOLERANCE = 1e-6


class Host(Protocol):
    """What the finish needs of the engine that runs it (:class:`~phycrnet.training.engine.Engine`)."""

    task: Task
    options: TrainingOptions
    weighting: Weighting
    budget: Budget
    guard: DivergenceGuard
    checkpoint_path: Path | None
    iteration: int
    seconds: float

    def coefficients_frozen(self) -> bool: ...

    def snapshot(self) -> dict[str, Any]: ...

    def restore(self, snapshot: dict[str, Any]) -> None: ...

    def write_log(self, terms: dict[str, torch.Tensor], total: torch.Tensor, *, lr: float) -> None: ...

    def after_lbfgs_step(self, start: tuple[dict[str, torch.Tensor], torch.Tensor]) -> None: ...

    def track_current_state(self, phase: str) -> None: ...


class _Stop(Exception):
    """Raised by the closure when one more evaluation would pass the iteration cap, or
    when a line search runs on past the time budget."""


class LbfgsFinish:
    """The L-BFGS phase of one run (its state is part of the run's checkpoint)."""

    def __init__(self, engine: Host, state: dict[str, Any] | None = None) -> None:
        self.engine = engine
        self.weights: dict[str, float] = dict(engine.weighting.weights)
        self.restarts = 0
        self.stalls = 0
        self.previous_start = math.inf
        self.frozen = engine.coefficients_frozen()
        self.scale: torch.Tensor | None = None
        self.optimizer = self._fresh()
        if state is not None:
            self._load(state)
        self._record: dict[str, Any] = {}

    def _fresh(self) -> torch.optim.LBFGS:
        """An empty curvature history at half the step length per restart."""
        self.scale = None
        options = self.engine.options
        parameters = self.engine.task.trainable(coefficients=not self.frozen) + list(self.engine.weighting.parameters())
        return torch.optim.LBFGS(
            parameters,
            lr=0.5**self.restarts,
            max_iter=options.lbfgs_max_iter,
            history_size=options.lbfgs_history,
            line_search_fn="strong_wolfe",
        )

    # -- the loop --------------------------------------------------------------------------
    def run(self) -> None:
        """Outer steps until the budget or the cap; then score the final state."""
        engine = self.engine
        while engine.budget.done(engine.iteration, engine.seconds) is None:
            if self.frozen != engine.coefficients_frozen():
                self.frozen = not self.frozen
                self.optimizer = self._fresh()  # the coefficients join or leave
            if not self._outer_step():
                break
            engine.after_lbfgs_step(self._record["start"])
        engine.track_current_state("lbfgs")

    def _outer_step(self) -> bool:
        """One outer step; ``False`` ends the phase."""
        engine = self.engine
        self.optimizer.param_groups[0]["max_eval"] = self._allowed_evaluations()
        self._record = {"evaluations": 0}
        before = engine.snapshot()
        start = self._record["began"] = time.perf_counter()
        try:
            self.optimizer.step(self._closure)
        except _Stop:
            engine.seconds += time.perf_counter() - start
            engine.iteration += self._record["evaluations"]
            engine.restore(before)
            # The interrupted step left the curvature history half updated: a resumed run
            # starts from the restored state with an empty one.
            self.optimizer = self._fresh()
            if self._record["evaluations"]:
                engine.write_log(*self._record["start"], lr=self.optimizer.param_groups[0]["lr"])
            return False
        engine.seconds += time.perf_counter() - start
        engine.iteration += self._record["evaluations"]
        start_terms, start_total = self._record["start"]
        engine.guard.track(_raw(start_terms), lambda: before)
        if not bool(torch.isfinite(_raw(self._record["terms"])).all()):
            return self._restart()
        if float(start_total.sum()) >= self.previous_start * (1 - STALL_TOLERANCE):
            self.optimizer = self._fresh()
            self.stalls += 1
        self.previous_start = float(start_total.sum())
        return True

    def _restart(self) -> bool:
        """A line search stepped into a rollout that blew up: back to the best state with
        an empty history and a shorter step, or the end of the phase."""
        self.restarts += 1
        if self.engine.guard.best_state is None or self.restarts > LBFGS_RESTARTS:
            return False
        self.engine.restore(self.engine.guard.best_state)
        self.optimizer = self._fresh()
        return True

    def _closure(self) -> torch.Tensor:
        engine, record = self.engine, self._record
        cap, budget = engine.budget.cap, engine.budget.seconds
        if cap is not None and engine.iteration + record["evaluations"] >= cap:
            raise _Stop
        now = time.perf_counter()
        if budget and record["evaluations"]:
            # Stop before an evaluation that would end past the budget, judged by the last one.
            last = now - record["evaluation_began"]
            if engine.seconds + now - record["began"] + last >= budget:
                raise _Stop
        record["evaluation_began"] = now
        record["evaluations"] += 1
        self.optimizer.zero_grad(set_to_none=True)
        engine.task.prepare("lbfgs", engine.iteration)
        losses = engine.task.losses(None, "lbfgs")
        total = cast(torch.Tensor, sum(self.weights.get(k, 1.0) * v for k, v in losses.items())).reshape(-1)
        if self.scale is None:
            value = total.detach()
            usable = torch.isfinite(value) & (value > 0)
            self.scale = torch.where(usable, 1.0 / torch.where(usable, value, torch.ones_like(value)), torch.ones_like(value))
        scaled = (total * self.scale).sum()
        scaled.backward()
        record["terms"] = {k: v.detach().reshape(-1).double().cpu() for k, v in losses.items()}
        if record["evaluations"] == 1:  # the state the outer step starts from
            record["start"] = (record["terms"], total.detach().double().cpu())
        return scaled.detach()

    def _allowed_evaluations(self) -> int:
        """Evaluations this outer step may take (module docstring)."""
        engine, options = self.engine, self.engine.options
        allowed = int(self.optimizer.defaults["max_eval"])
        if engine.budget.cap is not None:
            allowed = min(allowed, engine.budget.cap - engine.iteration)
        if engine.iteration > 0 and engine.seconds > 0:
            per_evaluation = engine.seconds / engine.iteration
            if engine.budget.seconds:
                allowed = min(allowed, max(1, math.ceil((engine.budget.seconds - engine.seconds) / per_evaluation)))
            if engine.checkpoint_path is not None:
                allowed = min(allowed, max(1, int(options.checkpoint_every / per_evaluation)))
        return max(1, allowed)

    # -- checkpoints -----------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "weights": self.weights,
            "restarts": self.restarts,
            "stalls": self.stalls,
            "previous_start": self.previous_start,
            "frozen": self.frozen,
            "scale": self.scale,
        }

    def _load(self, state: dict[str, Any]) -> None:
        self.weights = state["weights"]
        self.restarts = state["restarts"]
        self.stalls = state["stalls"]
        self.previous_start = state["previous_start"]
        self.frozen = state["frozen"]
        self.optimizer = self._fresh()
        self.optimizer.load_state_dict(state["optimizer"])
        self.scale = state["scale"]


def _raw(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The unweighted loss of each member."""
    return sum(terms.values())  # type: ignore[return-value]
