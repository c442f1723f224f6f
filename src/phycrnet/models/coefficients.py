"""The problem's coefficients as a module: learnable ones as tensors, the rest as floats."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from phycrnet.spec.problem import Problem


class Coefficients(nn.Module):
    """The problem's parameters, some of them learned (``parameters: {eps: {learn: true}}``).

    A learnable parameter with bounds ``[lo, hi]`` is ``lo + (hi - lo) * sigmoid(theta)``;
    without bounds it is ``init + scale * theta`` with ``scale = |init|`` (1 when init is 0),
    so that Adam's steps, about ``lr`` in theta, change it by a fraction of its own size
    whatever its magnitude (an eps of 1e-3 would otherwise jump by lr per step).
    """

    def __init__(self, problem: Problem, dtype: torch.dtype) -> None:
        super().__init__()
        self.fixed = {n: p.value for n, p in problem.parameters.items() if not p.learn}
        self.bounds = {n: p.bounds for n, p in problem.parameters.items() if p.learn}
        self.origin = {n: p.value for n, p in problem.parameters.items() if p.learn}
        self.scale = {n: abs(p.value) or 1.0 for n, p in problem.parameters.items() if p.learn}
        self.raw = nn.ParameterDict()
        for name, p in problem.parameters.items():
            if p.learn:
                self.raw[name] = nn.Parameter(torch.tensor(_start(p.value, p.bounds), dtype=dtype))

    def values(self) -> dict[str, Any]:
        """Every parameter by name: floats, and tensors for the learned ones."""
        result: dict[str, Any] = dict(self.fixed)
        for name, theta in self.raw.items():
            bounds = self.bounds[name]
            if bounds:
                result[name] = bounds[0] + (bounds[1] - bounds[0]) * torch.sigmoid(theta)
            else:
                result[name] = self.origin[name] + self.scale[name] * theta
        return result

    def learned(self) -> dict[str, float]:
        """The learned parameters' current values."""
        return {n: float(v.detach()) for n, v in self.values().items() if n in self.raw}


def _start(value: float, bounds: tuple[float, float] | None) -> float:
    """theta of the initial ``value``: 0, or its logit within ``bounds``."""
    if not bounds:
        return 0.0
    lo, hi = bounds
    fraction = min(max((value - lo) / (hi - lo), 1e-6), 1 - 1e-6)
    return math.log(fraction / (1 - fraction))
