"""An exponential moving average of the weights over the Adam phase (``weight_average``).

At a constant learning rate Adam's iterates keep moving about the minimum they approach;
the average of the recent iterates, ``a <- decay * a + (1 - decay) * w`` after each
full-window step (an effective window of ``1 / (1 - decay)`` steps), sits closer to it
(Polyak averaging). At the end of the Adam phase the average is scored on the whole window
and becomes the result in place of the best-loss iterate, unless its loss is not finite or
exceeds the best by the divergence factor (then the average lags a run that is still far
from converged, and the best iterate stays).

The average is adopted on the strength of its error against converged solutions, not of its
loss, which can be a little higher than the best iterate's (docs/method.md, "The crn
preset", has the measurements).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch


class WeightAverage:
    """The moving average of ``parameters`` (Adam's; stacked members average elementwise).

    Args:
        parameters: the parameters to average, in a fixed order.
        decay: weight of the old average per step, in (0, 1).
    """

    def __init__(self, parameters: Sequence[torch.Tensor], decay: float) -> None:
        self.parameters = list(parameters)
        self.decay = decay
        self.average: list[torch.Tensor] | None = None
        self.steps = 0

    def update(self) -> None:
        """Fold the current parameters into the average (the first call starts it)."""
        current = [p.detach() for p in self.parameters]
        with torch.no_grad():
            if self.average is None:
                self.average = [p.clone() for p in current]
            else:
                torch._foreach_lerp_(self.average, current, 1.0 - self.decay)
        self.steps += 1

    def load_into_parameters(self) -> None:
        """Overwrite the parameters with the average (nothing before the first update)."""
        if self.average is None:
            return
        with torch.no_grad():
            for parameter, value in zip(self.parameters, self.average):
                parameter.copy_(value)

    def state_dict(self) -> dict[str, Any]:
        return {"average": self.average, "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.average = state["average"]
        self.steps = state["steps"]
