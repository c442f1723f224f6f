"""The data-misfit loss: predicted frames against sparse, noisy observations.

The data loss of field ``f`` is ``data_f = mean((u_f(t_i, x_i, y_i) - d_i)^2) / var(d)``:
the misfit relative to the spread of the observed values, so it is dimensionless and of
the same size for any field scale. Predictions are interpolated to the observation points
with tensor-product cubic Lagrange polynomials (:mod:`phycrnet.io.observations`).

Its weight is the training option ``data_weight``. It holds at first and then decays
geometrically to ``data_weight * data_final_ratio`` at the end of training: the data fix
the large scales early, and the physics has the last word over the noise. The decay
starts halfway through a run whose coefficients are all known; with a learned
coefficient, when its identification ends (``identification_share``; the default 1
learns it to the end at a constant data weight). docs/method.md, "Observations", has the
measurements behind these rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from phycrnet.errors import OptionsError
from phycrnet.io.observations import Observations, UniformAxis, interpolation_stencil
from phycrnet.spec.problem import Problem


class DataLoss:
    """The misfit of predicted frames to observations, as loss terms ``data_<field>``.

    Callable as the trainer's ``extra_losses(frames, t, parameters)``: ``frames`` is
    ``(T, C, ny, nx)`` at the uniform times ``t``; observations later than ``t[-1]`` (a
    time-marching window) are left out until the window reaches them.
    """

    def __init__(
        self,
        observations: Observations,
        problem: Problem,
        *,
        weight: float = 1.0,
        final_ratio: float = 1.0,
        decay_start: float = 0.5,
        progress: Callable[[], float] | None = None,
    ) -> None:
        if weight <= 0:
            raise OptionsError(f"data weight: {weight} must be positive")
        if not 0 < final_ratio <= 1:
            raise OptionsError(f"data_final_ratio: {final_ratio} must be in (0, 1]")
        self.observations = observations
        self.problem = problem
        self.weight = weight
        self.final_ratio = final_ratio
        self.decay_start = decay_start
        self.progress = progress
        self.channels = {f: problem.fields.index(f) for f in observations.fields}
        self.scales = {f: _scale(v) for f, v in observations.values.items()}
        self._cache: dict[tuple[int, float, str, torch.dtype], tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict]] = {}

    def __call__(self, frames: torch.Tensor, t: torch.Tensor, parameters: Mapping[str, Any] | None = None) -> dict[str, torch.Tensor]:
        if t.numel() < 2:
            return {}
        index, weight, keep, targets = self._stencil(t, frames.device, frames.dtype)
        terms = {}
        for field, channel in self.channels.items():
            if keep.numel() == 0:
                terms[f"data_{field}"] = frames.new_zeros(())
                continue
            values = frames[:, channel].reshape(-1)
            predicted = (values[index] * weight).sum(dim=1)
            misfit = (predicted - targets[field]).pow(2).mean() / self.scales[field]
            terms[f"data_{field}"] = self.current_weight() * misfit
        return terms

    @staticmethod
    def decay_start_for(problem: Problem, identification_share: float) -> float:
        """Progress at which the weight starts to decay: halfway, or, with a learned
        coefficient, when its identification ends (``identification_share``)."""
        return identification_share if any(p.learn for p in problem.parameters.values()) else 0.5

    def current_weight(self) -> float:
        """``weight`` until ``decay_start`` (a fraction of the run), then geometric decay to
        ``weight * final_ratio`` at the end: the data fix the coefficients and the large
        scales early, and the physics has the last word over the noise."""
        if self.final_ratio == 1.0 or self.progress is None or self.decay_start >= 1.0:
            return self.weight
        p = min(max(self.progress(), 0.0), 1.0)
        return self.weight * self.final_ratio ** max(0.0, (p - self.decay_start) / (1.0 - self.decay_start))

    def predict(self, frames: np.ndarray, times: np.ndarray) -> dict[str, np.ndarray]:
        """Interpolated values of gridded ``frames (T, C, ny, nx)`` at the observation points."""
        with torch.no_grad():
            tensor = torch.as_tensor(frames, dtype=torch.float64)
            index, weight, keep, _ = self._stencil(torch.as_tensor(times, dtype=torch.float64), tensor.device, tensor.dtype)
            out = {}
            for field, channel in self.channels.items():
                values = np.full(len(self.observations), np.nan)
                values[keep.numpy()] = (tensor[:, channel].reshape(-1)[index] * weight).sum(dim=1).numpy()
                out[field] = values
            return out

    def _stencil(self, t: torch.Tensor, device: torch.device, dtype: torch.dtype):
        step = float(t[1] - t[0])
        key = (int(t.numel()), round(step, 15), str(device), dtype)
        if key not in self._cache:
            obs = self.observations
            t_last = float(t[0]) + step * (t.numel() - 1)
            keep = np.flatnonzero(obs.t <= t_last * (1 + 1e-9) + 1e-12)
            grid = self.problem.grid
            axes = (
                UniformAxis(float(t[0]), step, int(t.numel()), False),
                UniformAxis.of(grid.y.points, grid.y.periodic),
                UniformAxis.of(grid.x.points, grid.x.periodic),
            )
            index, weight = interpolation_stencil((obs.t[keep], obs.y[keep], obs.x[keep]), axes)
            targets = {f: torch.as_tensor(v[keep], dtype=dtype, device=device) for f, v in obs.values.items()}
            self._cache[key] = (
                torch.as_tensor(index, device=device),
                torch.as_tensor(weight, dtype=dtype, device=device),
                torch.as_tensor(keep),
                targets,
            )
        return self._cache[key]


def _scale(values: np.ndarray) -> float:
    """Normalisation of a field's misfit: the variance of its observations (mean square if constant)."""
    variance = float(np.var(values))
    if variance > 0 and math.isfinite(variance):
        return variance
    mean_square = float(np.mean(values**2))
    return mean_square if mean_square > 0 else 1.0
