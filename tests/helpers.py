"""Helpers shared by several test modules (conftest.py puts this folder on the path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from phycrnet.io.solution import solution_dataset

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
