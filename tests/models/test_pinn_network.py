"""The PINN network (phycrnet.models.pinn): forward-mode derivative jets against automatic
differentiation, the exactly periodic Fourier embedding, single precision (training and
residuals: tests/methods/test_pinn.py)."""

from __future__ import annotations

import pytest
import torch
from helpers import random_points

from phycrnet.models.pinn import FieldModel, Points, autograd_jet
from phycrnet.options import PinnOptions
from phycrnet.spec.problem import load_spec

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.mark.parametrize("case", ["periodic_heat", "mixed_bc"])
@pytest.mark.parametrize("hard", [True, False])
def test_forward_jets_match_automatic_differentiation(tiny_cases, case, hard):
    problem = load_spec(tiny_cases(case))
    model = FieldModel(problem, PinnOptions(hidden=(8, 8), hard_initial=hard)).double()
    pts = random_points(50)
    jet = model.jet(pts, ("x", "y", "t"), ("xx", "yy"))
    exact = autograd_jet(model, pts.x, pts.y, pts.t, ("x", "y", "t"), ("xx", "yy"))
    torch.testing.assert_close(jet.value, exact.value, rtol=0, atol=1e-12)
    for name in ("x", "y", "t", "xx", "yy"):
        torch.testing.assert_close(jet.derivative(name), exact.derivative(name), rtol=0, atol=1e-11)


def test_fourier_embedding_is_exactly_periodic(periodic_heat_spec):
    periodic_heat_spec["domain"] = {"x": [-1.0, 2.0], "y": [0.5, 1.25]}
    problem = load_spec(periodic_heat_spec)
    model = FieldModel(problem, PinnOptions(hidden=(16, 16), harmonics=3, hard_initial=False)).double()
    g = torch.Generator().manual_seed(1)
    y, t = 0.5 + 0.75 * torch.rand(40, generator=g, dtype=torch.float64), 0.2 * torch.rand(40, generator=g, dtype=torch.float64)
    x = -1.0 + 3.0 * torch.rand(40, generator=g, dtype=torch.float64)
    start, end = torch.full_like(y, -1.0), torch.full_like(y, 2.0)
    torch.testing.assert_close(model(start, y, t), model(end, y, t), rtol=0, atol=1e-12)
    torch.testing.assert_close(model(x, torch.full_like(x, 0.5), t), model(x, torch.full_like(x, 1.25), t), rtol=0, atol=1e-12)
    left = model.jet(Points(start, y, t), ("x",), ("xx",))
    right = model.jet(Points(end, y, t), ("x",), ("xx",))
    torch.testing.assert_close(left.first["x"], right.first["x"], rtol=0, atol=1e-11)
    torch.testing.assert_close(left.second["xx"], right.second["xx"], rtol=0, atol=1e-10)


def test_float32_periodic_output_matches_to_single_precision(periodic_heat_spec):
    model = FieldModel(load_spec(periodic_heat_spec), PinnOptions(hidden=(16, 16)))
    y, t = torch.linspace(0, 1, 11), torch.linspace(0, 0.2, 11)
    torch.testing.assert_close(model(torch.zeros(11), y, t), model(torch.ones(11), y, t), rtol=0, atol=1e-6)
