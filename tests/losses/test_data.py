"""The data-misfit loss: zero on the true frames, growing with misfit, its weight schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import exact_dataset, heat_exact

from phycrnet.errors import OptionsError
from phycrnet.io.observations import (
    Observations,
    sample_observations,
)
from phycrnet.losses.data import DataLoss
from phycrnet.spec.problem import load_spec


def test_data_loss_vanishes_on_the_true_frames_and_grows_with_misfit(heat):
    obs = sample_observations(exact_dataset(heat), fraction=0.3, seed=0, off_grid=True)
    loss = DataLoss(obs, heat)
    x, y, t = heat.grid.x.points, heat.grid.y.points, heat.times
    frames = torch.as_tensor(heat_exact(t[:, None, None], x[None, None, :], y[None, :, None]))[:, None]
    exact_term = float(loss(frames, torch.as_tensor(t))["data_u"])
    shifted_term = float(loss(frames + 0.1, torch.as_tensor(t))["data_u"])
    assert exact_term < 1e-6
    assert shifted_term == pytest.approx(0.01 / np.var(obs.values["u"]), rel=1e-6)


def test_data_loss_ignores_points_beyond_a_time_marching_window(heat):
    obs = Observations(np.array([0.05, 0.2]), np.array([0.5, 0.5]), np.array([0.25, 0.25]), {"u": np.array([0.0, 1.0])})
    loss = DataLoss(obs, heat)
    frames = torch.zeros(3, 1, 16, 16, dtype=torch.float64)
    assert float(loss(frames, torch.tensor([0.0, 0.05, 0.1], dtype=torch.float64))["data_u"]) == 0.0


def test_data_weight_holds_then_decays_geometrically(heat):
    obs = Observations(np.array([0.05]), np.array([0.5]), np.array([0.25]), {"u": np.array([1.0])})
    progress = {"p": 0.0}
    loss = DataLoss(obs, heat, weight=2.0, final_ratio=0.01, progress=lambda: progress["p"])
    for p, expected in ((0.0, 2.0), (0.5, 2.0), (0.75, 0.2), (1.0, 0.02)):
        progress["p"] = p
        assert loss.current_weight() == pytest.approx(expected)
    with pytest.raises(OptionsError, match="data_final_ratio"):
        DataLoss(obs, heat, final_ratio=0.0)


def test_data_weight_decays_after_the_identification_when_a_coefficient_is_learned(periodic_heat_spec, heat):
    known = load_spec(periodic_heat_spec)
    unknown = load_spec(dict(periodic_heat_spec, parameters={"k": {"init": 0.02, "learn": True}}))
    assert DataLoss.decay_start_for(known, 0.75) == 0.5
    assert DataLoss.decay_start_for(unknown, 0.75) == 0.75
    obs = Observations(np.array([0.05]), np.array([0.5]), np.array([0.25]), {"u": np.array([1.0])})
    progress = {"p": 0.0}
    loss = DataLoss(obs, heat, weight=1.0, final_ratio=0.01, decay_start=0.75, progress=lambda: progress["p"])
    for p, expected in ((0.5, 1.0), (0.75, 1.0), (0.875, 0.1), (1.0, 0.01)):
        progress["p"] = p
        assert loss.current_weight() == pytest.approx(expected)
