"""One policy for blow-ups, in every phase and for every method.

A loss that is not finite, or that grows ``divergence_factor`` times over the best seen
(and over the loss of a solution that never leaves its initial value, whichever is
larger: a network that starts as a good predictor can begin at a loss of 1e-8, where an
early Adam step to 1e-4 is noise, not a blow-up), restores the best state seen and halves
the step: Adam's learning rate, or the L-BFGS step length. Adam's moments are restored
with the best state (cleared moments make the next steps about lr in every weight at
once, which threw a Gray-Scott run straight back into a blow-up). After
``max_recoveries`` blow-ups in the Adam phase the run ends with a
:class:`~phycrnet.errors.DivergenceError`; the L-BFGS finish stops at the best state after
:data:`LBFGS_RESTARTS` (the Adam phase's result still stands). In a batch each member has
its own best state and count; a member that runs out of recoveries is held at its best
state and reported as diverged while the others train on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from phycrnet.training.state import blend

#: Blow-ups the L-BFGS finish restarts from before it stops at the best state.
LBFGS_RESTARTS = 10
#: Adam iterations during which a growing loss is not yet judged a blow-up.
GRACE_ITERATIONS = 20


class DivergenceGuard:
    """Best state, blow-up detection and recovery counts of the members of a run."""

    def __init__(self, members: int, factor: float, max_recoveries: int, standstill: torch.Tensor) -> None:
        self.factor = factor
        self.max_recoveries = max_recoveries
        self.standstill = standstill.detach().double().cpu().reshape(members).nan_to_num(0.0, 0.0, 0.0)
        self.best_loss = torch.full((members,), float("inf"), dtype=torch.float64)
        self.best_state: dict[str, Any] | None = None
        self.recoveries = torch.zeros(members, dtype=torch.long)
        self.failed = torch.zeros(members, dtype=torch.bool)

    def track(self, raw: torch.Tensor, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Keep the state ``snapshot()`` for the members whose finite loss ``raw`` beats
        their best (the snapshot is taken only when one does)."""
        improved = torch.isfinite(raw) & (raw < self.best_loss) & ~self.failed
        if not bool(improved.any()):
            return
        state = snapshot()
        self.best_state = state if self.best_state is None else blend(state, self.best_state, improved)
        self.best_loss = torch.where(improved, raw, self.best_loss)

    def adopt(self, raw: torch.Tensor, snapshot: Callable[[], dict[str, Any]]) -> None:
        """Make the state ``snapshot()`` the best for the members whose loss ``raw`` is finite
        and within the divergence factor of their best (a weight average, chosen by error
        rather than loss: :mod:`phycrnet.training.averaging`)."""
        usable = torch.isfinite(raw) & (raw <= self.factor * self.best_loss) & ~self.failed
        if not bool(usable.any()):
            return
        state = snapshot()
        self.best_state = state if self.best_state is None else blend(state, self.best_state, usable)
        self.best_loss = torch.where(usable, raw, self.best_loss)

    def blown_up(self, raw: torch.Tensor, iteration: int) -> torch.Tensor:
        """Members whose loss ``raw`` is not finite or has exploded."""
        scale = torch.maximum(self.best_loss, self.standstill)
        exploded = (raw > self.factor * scale) & (iteration > GRACE_ITERATIONS)
        return (~torch.isfinite(raw) | exploded) & ~self.failed

    def recover(self, bad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Count a recovery for the ``bad`` members: returns ``(restored, newly_failed)``,
        the members to restore to their best state and those out of recoveries (or
        without any best state)."""
        exhausted = bad & ((self.recoveries >= self.max_recoveries) | torch.isinf(self.best_loss))
        restored = bad & ~exhausted
        self.recoveries += restored.long()
        self.failed |= exhausted
        return restored, exhausted

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_loss": self.best_loss,
            "best_state": self.best_state,
            "recoveries": self.recoveries,
            "failed": self.failed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_loss = state["best_loss"].double().cpu()
        self.best_state = state["best_state"]
        self.recoveries = state["recoveries"].cpu()
        self.failed = state["failed"].cpu()
