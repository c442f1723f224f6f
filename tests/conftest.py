"""Shared fixtures: tiny problems and a tiny network, so that training tests stay fast.

* ``periodic_heat_spec``: u_t = k*laplace(u) on the periodic unit square, 16 x 16 nodes,
  u0 = sin(2 pi x) sin(2 pi y); exact solution exp(-8 pi^2 k t) u0.
* ``mixed_bc_spec``: the same equation on a 16 x 12 non-periodic grid with a Dirichlet,
  a Robin and two Neumann sides; u = x^2 + y^2 + 4 k t solves it exactly (the condition
  values are that solution's), and finite differences of accuracy >= 2 are exact on it.

Both have t_end = 0.2, dt = 0.05 (4 steps). Each fixture returns a fresh dict.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))  # tests/helpers.py

#: The smallest sensible network: three encoder levels (so lstm_channels >= 64).
TINY_MODEL = {"encoder_channels": [4, 8, 16], "lstm_channels": 64}

_PERIODIC_HEAT = {
    "name": "tiny_periodic_heat",
    "parameters": {"k": 0.05},
    "domain": {"x": [0.0, 1.0], "y": [0.0, 1.0]},
    "grid": {"nx": 16, "ny": 16},
    "time": {"t_end": 0.2, "dt": 0.05},
    "equations": {"u": "k*laplace(u)"},
    "initial": {"u": "sin(2*pi*x)*sin(2*pi*y)"},
    "boundary": "periodic",
}

_MIXED_BC_HEAT = {
    "name": "tiny_mixed_heat",
    "parameters": {"k": 0.05},
    "domain": {"x": [0.0, 1.0], "y": [0.0, 1.0]},
    "grid": {"nx": 16, "ny": 12},
    "time": {"t_end": 0.2, "dt": 0.05},
    "equations": {"u": "k*laplace(u)"},
    "initial": {"u": "x**2 + y**2"},
    "boundary": {
        "u": {
            # u = x^2 + y^2 + 4 k t: on x = 0, u = y^2 + 4 k t.
            "left": {"type": "dirichlet", "value": "y**2 + 4*k*t"},
            # du/dn = du/dx = 2x = 2 on x = 1.
            "right": {"type": "neumann", "value": 2},
            # a*u + b*du/dn with du/dn = -du/dy = -2y = 0 on y = 0.
            "bottom": {"type": "robin", "a": 1.0, "b": 0.5, "value": "x**2 + 4*k*t"},
            # du/dn = du/dy = 2y = 2 on y = 1.
            "top": {"type": "neumann", "value": 2},
        }
    },
}


def mixed_exact(x: np.ndarray, y: np.ndarray, t: np.ndarray, k: float = 0.05) -> np.ndarray:
    """The exact solution of ``mixed_bc_spec`` on the node mesh, shape ``(T, ny, nx)``."""
    X, Y = np.meshgrid(x, y)
    return X[None] ** 2 + Y[None] ** 2 + 4 * k * np.asarray(t)[:, None, None]


def periodic_exact(x: np.ndarray, y: np.ndarray, t: np.ndarray, k: float = 0.05) -> np.ndarray:
    """The exact solution of ``periodic_heat_spec``, shape ``(T, ny, nx)``."""
    X, Y = np.meshgrid(x, y)
    decay = np.exp(-8 * np.pi**2 * k * np.asarray(t))
    return decay[:, None, None] * (np.sin(2 * np.pi * X) * np.sin(2 * np.pi * Y))[None]


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Training sets the intra-op thread count; give every test back what it found."""
    previous = torch.get_num_threads()
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_cases():
    """For fixtures wider than a function: ``tiny_cases(name)`` is a fresh copy of
    ``"periodic_heat"``, ``"mixed_bc"`` or ``"model"``."""
    table = {"periodic_heat": _PERIODIC_HEAT, "mixed_bc": _MIXED_BC_HEAT, "model": TINY_MODEL}
    return lambda name: copy.deepcopy(table[name])


@pytest.fixture
def tiny_model() -> dict:
    return copy.deepcopy(TINY_MODEL)


@pytest.fixture
def periodic_heat_spec() -> dict:
    return copy.deepcopy(_PERIODIC_HEAT)


@pytest.fixture
def mixed_bc_spec() -> dict:
    return copy.deepcopy(_MIXED_BC_HEAT)


@pytest.fixture
def exact_solutions():
    """``(periodic_exact, mixed_exact)``: the exact solutions of the two tiny specs."""
    return periodic_exact, mixed_exact


@pytest.fixture(scope="module")
def single_thread():
    """Run a module's tests with one torch thread, restoring the setting afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


class CrnRunner:
    """A prepared PhyCRNet run (``run.task``, ``run.crn``) and its training engine
    (``run.engine``), one torch thread, for tests that look inside training."""

    def __init__(self, spec, model, *, log_path=None, checkpoint_path=None, extra_losses=None, **options) -> None:
        from phycrnet.methods.solve import prepare
        from phycrnet.training.engine import Engine

        self.crn = prepare(spec, model=model, extra_losses=extra_losses, **{"threads": 1, **options})
        self.task = self.crn.task
        self.resolved = self.crn.resolved
        self.engine = Engine(self.task, self.crn.options.training, log_path=log_path, checkpoint_path=checkpoint_path)

    def steps(self, n: int) -> list:
        """``n`` Adam iterations exactly as training runs them: their (terms, total)."""
        return [self.engine._adam_iteration() for _ in range(n)]

    def current_loss(self) -> float:
        """Unweighted sum of the loss terms of the current state (full window)."""
        with torch.no_grad():
            terms = self.task.losses(None, "final")
        return float(sum(float(v) for v in terms.values()))

    def train(self):
        """Train to the end: the result and the frames ``(T, C, ny, nx)`` of its state."""
        result = self.engine.train()
        return result, self.task.frames().double().numpy()


@pytest.fixture
def crn_run():
    """``crn_run(spec, model, **options)``: a :class:`CrnRunner`."""
    return CrnRunner


@pytest.fixture
def heat(periodic_heat_spec):
    """The tiny periodic heat problem, compiled."""
    from phycrnet.spec.problem import load_spec

    return load_spec(periodic_heat_spec)
