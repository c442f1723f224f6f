"""The residual of a compiled spec: zero on exact solutions, soft boundary terms that measure
the violated sides, and the spectral radius that the automatic choices rest on."""

from __future__ import annotations

import pytest
import torch

from phycrnet.options import PhysicsOptions
from phycrnet.physics import Physics
from phycrnet.spec.problem import load_spec


@pytest.mark.parametrize("scheme", ["crank_nicolson", "bdf2", "central", "backward_euler"])
@pytest.mark.parametrize("derivatives", ["fd2", "fd4", "spectral", "auto"])
@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_losses_vanish_on_an_exact_solution(mixed_bc_spec, exact_solutions, mode, derivatives, scheme):
    """u = x^2 + y^2 + 4kt: every stencil is exact on it, so every loss term is ~0."""
    problem = load_spec(mixed_bc_spec)
    physics = Physics(problem, PhysicsOptions(derivatives=derivatives, boundary=mode, time_scheme=scheme), dtype=torch.float64)
    exact = exact_solutions[1](problem.grid.x.points, problem.grid.y.points, problem.times)
    frames = torch.tensor(exact).unsqueeze(1)
    terms = physics.losses(frames, torch.tensor(problem.times), problem.parameter_values())
    sides = {f"bc_u_{side}" for side in ("left", "right", "bottom", "top")}
    assert set(terms) == ({"pde_u"} | sides if mode == "soft" else {"pde_u"})
    for name, value in terms.items():
        assert float(value) < 1e-20, (name, float(value))


def test_soft_boundary_losses_measure_the_violated_sides(mixed_bc_spec, exact_solutions):
    """Adding a constant c breaks the Dirichlet and Robin (a=1) sides by c, not the Neumann ones."""
    problem = load_spec(mixed_bc_spec)
    physics = Physics(problem, PhysicsOptions(derivatives="fd4", boundary="soft"), dtype=torch.float64)
    exact = exact_solutions[1](problem.grid.x.points, problem.grid.y.points, problem.times)
    frames = torch.tensor(exact + 0.1).unsqueeze(1)
    terms = physics.losses(frames, torch.tensor(problem.times), problem.parameter_values())
    assert float(terms["bc_u_left"]) == pytest.approx(0.01, rel=1e-9)
    assert float(terms["bc_u_bottom"]) == pytest.approx(0.01, rel=1e-9)
    assert float(terms["bc_u_right"]) < 1e-20
    assert float(terms["bc_u_top"]) < 1e-20
    assert float(terms["pde_u"]) < 1e-20


def test_spectral_radius_estimate_matches_the_discrete_laplacian():
    """On periodic heat the Jacobian is a * laplacian, whose largest eigenvalue with second-
    order stencils is a * 8 / h**2 (the checkerboard mode)."""
    spec = {
        "name": "heat", "parameters": {"a": 0.02}, "domain": {"x": [0, 1], "y": [0, 1]},
        "grid": {"nx": 16, "ny": 16}, "time": {"t_end": 0.1, "dt": 0.05},
        "equations": {"u": "a*laplace(u)"}, "initial": {"u": "sin(2*pi*x)"}, "boundary": "periodic",
    }  # fmt: skip
    problem = load_spec(spec)
    physics = Physics(problem, PhysicsOptions(derivatives="fd2"), dtype=torch.float64)
    state = torch.as_tensor(problem.initial_values(), dtype=torch.float64).unsqueeze(0)
    rho = physics.spectral_radius(state, torch.zeros(1, dtype=torch.float64), {"a": 0.02}, iterations=200)
    assert rho == pytest.approx(0.02 * 8 * 16**2, rel=1e-3)


@pytest.mark.parametrize("scheme", ["crank_nicolson", "bdf2", "central", "backward_euler", "adams_moulton"])
@pytest.mark.parametrize("chunk", [1, 2, 3, 5])
def test_chunked_residual_gives_the_same_steps_and_gradients(mixed_bc_spec, scheme, chunk):
    """The residual formed a few steps at a time under checkpointing (long rollouts in
    bounded memory) has the same per-step mean squares and gradients as the whole one, for
    schemes that look back (bdf2, Adams-Moulton) and span three frames (central) alike;
    it stores less for the backward pass."""
    from phycrnet.training.memory import saved_bytes

    problem = load_spec({**mixed_bc_spec, "time": {"t_end": 0.9, "dt": 0.1}})
    physics = Physics(problem, PhysicsOptions(derivatives="fd4", boundary="hard", time_scheme=scheme), dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    base = torch.as_tensor(problem.initial_values()).unsqueeze(0)
    frames = (base + 0.1 * torch.randn(len(problem.times), *base.shape[1:], generator=generator, dtype=torch.float64)).requires_grad_(True)
    t, parameters = torch.tensor(problem.times), problem.parameter_values()

    def squares(chunk):
        return physics.step_mean_squares(frames, t, parameters, chunk=chunk)

    whole, chunked = squares(None), squares(chunk)
    assert whole.shape == chunked.shape == (len(problem.times) - (2 if scheme == "central" else 1), 1)
    torch.testing.assert_close(chunked, whole, rtol=1e-12, atol=0)
    with torch.no_grad():  # pieces without checkpointing: the same values
        torch.testing.assert_close(squares(chunk), whole.detach(), rtol=1e-12, atol=0)
    weights = torch.linspace(1, 2, whole.shape[0], dtype=torch.float64).unsqueeze(1)
    gradients = [torch.autograd.grad((weights * squares(c)).sum(), frames)[0] for c in (None, chunk)]
    torch.testing.assert_close(gradients[1], gradients[0], rtol=1e-10, atol=1e-14)
    stored = [saved_bytes(lambda c=c: squares(c).sum()) for c in (None, chunk)]
    assert stored[1] < 0.5 * stored[0]


def test_the_residual_leaves_no_reference_cycles_that_hold_the_frames(mixed_bc_spec):
    """Evaluating F leaves nothing that only the cyclic garbage collector frees: the frames
    and every intermediate tensor go as soon as the caller drops them (a long rollout's
    residual otherwise held gigabytes until the next collection)."""
    import gc
    import weakref

    problem = load_spec(mixed_bc_spec)
    physics = Physics(problem, PhysicsOptions(derivatives="fd4", boundary="hard"), dtype=torch.float64)
    frames = torch.as_tensor(problem.initial_values()).unsqueeze(0).repeat(3, 1, 1, 1)
    t = torch.tensor(problem.times[:3])
    gc.collect()
    gc.disable()
    try:
        value = physics.rhs(frames, t, problem.parameter_values())
        alive = weakref.ref(frames)
        del frames, value
        assert alive() is None
    finally:
        gc.enable()
