"""Helpers shared by several test modules (conftest.py puts this folder on the path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from phycrnet.io.solution import solution_dataset
from phycrnet.models.pinn import Points

#: The paper's data files, when the shared reference folder sits beside the checkout.
PAPER_DATA = Path(__file__).resolve().parents[2] / "shared" / "reference" / "data"


def heat_exact(t, x, y, k=0.05):
    """The exact solution of the tiny periodic heat spec (conftest.py) at any points."""
    return np.exp(-8 * np.pi**2 * k * t) * np.sin(2 * np.pi * x) * np.sin(2 * np.pi * y)


def exact_dataset(problem, k=0.05):
    """That solution on ``problem``'s grid and frames, as a solution dataset."""
    x, y, t = problem.grid.x.points, problem.grid.y.points, problem.times
    u = heat_exact(t[:, None, None], x[None, None, :], y[None, :, None], k)
    return solution_dataset({"u": u}, t, x, y, solver="exact", spec_yaml=problem.to_yaml(), periodic=problem.periodic)


def random_points(n: int, x=(0.0, 1.0), y=(0.0, 1.0), t_end: float = 0.2, seed: int = 0, dtype=torch.float64) -> Points:
    """``n`` uniformly random PINN collocation points in ``x`` times ``y`` times ``[0, t_end]``."""
    g = torch.Generator().manual_seed(seed)
    return Points(*(lo + (hi - lo) * torch.rand(n, generator=g, dtype=dtype) for lo, hi in (x, y, (0.0, t_end))))
