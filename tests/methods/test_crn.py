"""PhyCRNet as a training task (phycrnet.methods.crn): the untrained network as a classical
step, the residual it trains on, step balance, sub-steps and the segmented rollout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import phycrnet.methods.resolve
import phycrnet.options.thresholds
from phycrnet.options import THRESHOLDS as T


def test_explicit_physics_init_starts_near_an_explicit_euler_rollout(periodic_heat_spec, tiny_model, crn_run):
    """With ``physics_init: explicit`` the untrained network passes F through its decoder:
    its rollout is close to explicit Euler's (here on heat, whose explicit step is stable)
    and its residual far below that of the random start."""
    mild = {**periodic_heat_spec, "parameters": {"k": 0.005}}  # dt * rho = 0.5: stable
    explicit = crn_run(mild, {**tiny_model, "physics_input": True, "physics_init": "explicit", "physics_predictor": "euler"}, substeps=1)
    random = crn_run(mild, {**tiny_model, "physics_input": True, "physics_init": "random"}, substeps=1)
    task = explicit.task
    assert explicit.resolved.input_gain == 1.0
    with torch.no_grad():
        frames = task.rollout()[:, 0].double()
    # sin(2 pi x) sin(2 pi y) is an eigenfunction of the (spectral) Laplacian: -8 pi^2.
    factor = 1 - task.dt_network * 0.005 * 8 * math.pi**2
    u0 = task.u0[0, 0].double()
    euler = torch.stack([u0 * factor**n for n in range(task.n_network_steps + 1)])
    assert torch.allclose(frames, euler, rtol=0, atol=1e-5)
    assert explicit.current_loss() < 0.1 * random.current_loss()


def test_heun_predictor_starts_as_heuns_method(periodic_heat_spec, tiny_model, crn_run):
    """With ``physics_predictor: heun`` the untrained explicit network takes Heun's steps,
    u * (1 + z + z^2 / 2) per step on an eigenmode (z = dt * lambda), a second-order start
    whose residual is far below explicit Euler's."""
    mild = {**periodic_heat_spec, "parameters": {"k": 0.005}}
    heun = crn_run(mild, {**tiny_model, "physics_predictor": "heun"}, substeps=1, step_balance=False)
    euler = crn_run(mild, {**tiny_model, "physics_predictor": "euler"}, substeps=1, step_balance=False)
    task = heun.task
    with torch.no_grad():
        frames = task.rollout()[:, 0].double()
    z = -task.dt_network * 0.005 * 8 * math.pi**2
    u0 = task.u0[0, 0].double()
    expected = torch.stack([u0 * (1 + z + z**2 / 2) ** n for n in range(task.n_network_steps + 1)])
    assert torch.allclose(frames, expected, rtol=0, atol=1e-5)
    assert heun.current_loss() < 0.05 * euler.current_loss()


def test_explicit_physics_init_damps_an_unstable_explicit_step(periodic_heat_spec, tiny_model, crn_run):
    """Where a full explicit sub-step would be unstable the gain on F shrinks so that
    gain * dt * rho stays below the limit, and the untrained rollout stays bounded."""
    stiff = {**periodic_heat_spec, "equations": {"u": "0.5*laplace(u)"}}
    model = {**tiny_model, "physics_input": True, "physics_init": "explicit", "implicit_diffusion": False, "predictor_steps": 1}
    run = crn_run(stiff, model, substeps=2)
    per_step = run.resolved.stiffness / run.resolved.substeps
    assert per_step > T.stiff_step and run.resolved.input_gain * per_step < T.stiff_step
    with torch.no_grad():
        assert float(run.task.rollout().abs().max()) < 2.0


def test_predictor_steps_start_the_network_as_that_many_heun_steps(periodic_heat_spec, tiny_model, crn_run):
    """``predictor_steps: 3`` feeds the mean direction of three Heun steps of dt / 3: on an
    eigenmode the untrained network multiplies u by (1 + z + z^2 / 2)^3 per network step
    (z = dt / 3 * lambda), not by one Heun step's factor."""
    mild = {**periodic_heat_spec, "parameters": {"k": 0.02}}
    run = crn_run(mild, {**tiny_model, "physics_input": True, "predictor_steps": 3}, substeps=1)
    task = run.task
    assert run.resolved.predictor_steps == 3 and run.resolved.input_gain == 1.0
    with torch.no_grad():
        frames = task.rollout()[:, 0].double()
    z = -task.dt_network / 3 * 0.02 * 8 * math.pi**2
    u0 = task.u0[0, 0].double()
    expected = torch.stack([u0 * (1 + z + z**2 / 2) ** (3 * n) for n in range(task.n_network_steps + 1)])
    one_step = torch.stack([u0 * (1 + 3 * z + (3 * z) ** 2 / 2) ** n for n in range(task.n_network_steps + 1)])
    assert torch.allclose(frames, expected, rtol=0, atol=1e-5)
    assert float((frames - one_step).abs().max()) > 1e-4  # ten times the tolerance above


def test_automatic_predictor_steps_follow_a_classical_solver_on_a_bounded_grid(mixed_bc_spec, tiny_model, crn_run):
    """Where a network step is beyond the explicit limit (dt * rho = 24 over eight sub-steps:
    3 per step), two Heun steps per network step are taken, and the untrained network is
    exactly Heun's method with dt / 16 and the boundary values imposed after every step
    (written out by hand, on a nonlinear problem with Dirichlet, Neumann and Robin sides)."""
    spec = {**mixed_bc_spec, "parameters": {"k": 0.12}, "equations": {"u": "k*laplace(u) - u**2"}, "initial": {"u": "x**2 + y**2 + 0.3*sin(3*x)*cos(2*y)"}}
    run = crn_run(spec, tiny_model)
    task = run.task
    assert run.resolved.substeps == 8 and run.resolved.predictor_steps == 2
    with torch.no_grad():
        frames = task.rollout()[:, 0].double()
    physics, parameters = task.physics, task.problem.parameter_values()
    assert physics.hard

    def at(t):
        return torch.full((1,), t, dtype=task.dtype)

    u = physics.enforce(task.u0, at(0.0), parameters)
    h, t, expected = task.dt_network / 2, 0.0, [u]
    for _ in range(task.n_network_steps):
        for _ in range(2):
            first = physics.rhs(u, at(t), parameters)
            stage = physics.enforce(u + h * first, at(t + h), parameters)
            u = physics.enforce(u + 0.5 * h * (first + physics.rhs(stage, at(t + h), parameters)), at(t + h), parameters)
            t += h
        expected.append(u)
    expected = torch.cat(expected)[:, 0].double()
    assert float((frames - expected).abs().max()) < 1e-4 * float(expected.abs().max())


def test_stiff_periodic_rollout_follows_the_imex_solution(periodic_heat_spec, tiny_model, crn_run):
    """With diffusion implicit in the physics input (dt * rho = 500 here) the untrained
    network follows the IMEX solution of this eigenmode, Heun's average of the two IMEX
    Euler stages (p = 1 / (1 + dt k 8 pi^2) per stage, so u0 * ((1 + p^2) / 2)^n)."""
    run = crn_run({**periodic_heat_spec, "parameters": {"k": 5.0}}, {**tiny_model, "physics_init": "explicit"})
    task = run.task
    assert run.resolved.implicit_diffusion
    with torch.no_grad():
        frames = task.rollout()[:, 0].double()
    u0 = task.u0[0, 0].double()
    p = 1 / (1 + task.dt_network * 5.0 * 8 * math.pi**2)
    imex = torch.stack([u0 * ((1 + p**2) / 2) ** n for n in range(task.n_network_steps + 1)])
    assert float((frames - imex).norm(dim=(1, 2)).max()) < 0.05 * float(u0.norm())


def test_stiff_bounded_rollout_stays_bounded(mixed_bc_spec, tiny_model, crn_run):
    """u = x^2 + y^2 + 4 k t stays below 6 on the unit square until t = 0.2 at k = 5; the
    untrained IMEX rollout (dt * rho = 1e3) stays of that size."""
    run = crn_run({**mixed_bc_spec, "parameters": {"k": 5.0}}, {**tiny_model, "physics_init": "explicit"})
    with torch.no_grad():
        frames = run.task.rollout()[:, 0].double()
    assert torch.isfinite(frames).all() and float(frames.abs().max()) < 12.0


@pytest.mark.parametrize("scheme", ["crank_nicolson", "bdf2", "central", "backward_euler"])
def test_residual_reuses_the_rollouts_right_hand_side_without_changing_it(mixed_bc_spec, tiny_model, crn_run, scheme):
    """The loss built from F(u_k) the network already saw equals the one evaluated afresh,
    values and gradients alike (hard Dirichlet nodes and ghost nodes included)."""
    spec = {**mixed_bc_spec, "initial": {"u": "x**2 + y**2 + 0.3*sin(3*x)*cos(2*y)"}}
    task = crn_run(spec, tiny_model, time_scheme=scheme, boundary="hard", substeps=2, step_balance=False).task
    frames = task.rollout()
    assert task._known_rhs is not None and task._known_rhs[0] is frames
    reused = task.loss_terms(frames, task.n_network_steps)
    fresh = task.physics.losses(frames, task.t_network, task.coefficients.values())
    assert reused.keys() == fresh.keys()
    params = list(task.model.parameters())
    for key in reused:
        assert float(reused[key].detach()) == pytest.approx(float(fresh[key].detach()), rel=1e-5)
        g_reused = torch.autograd.grad(reused[key], params, retain_graph=True, allow_unused=True)
        g_fresh = torch.autograd.grad(fresh[key], params, retain_graph=True, allow_unused=True)
        for a, b in zip(g_reused, g_fresh):
            if a is not None or b is not None:
                assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_a_learned_coefficient_reaches_the_loss_through_the_residual_not_the_physics_input(periodic_heat_spec, tiny_model, crn_run):
    """With F fed to the network while k is learned, k enters the input as a constant: the
    frames carry no gradient to k, and the loss's gradient to k is the residual's, evaluated
    afresh (the rollout's F, computed with a detached k, is not reused)."""
    learned = {**periodic_heat_spec, "parameters": {"k": {"init": 0.02, "learn": True}}}
    task = crn_run(learned, {**tiny_model, "physics_input": True}).task
    raw = list(task.coefficients.parameters())
    frames = task.rollout()
    assert task._known_rhs is None
    (to_k,) = torch.autograd.grad(frames.square().sum(), raw, retain_graph=True, allow_unused=True)
    assert to_k is None or float(to_k.abs().max()) == 0.0
    loss = sum(task.loss_terms(frames, task.n_network_steps).values())
    fresh = sum(task.physics.losses(frames, task.t_network, task.coefficients.values(), step_weights=task.step_weights).values())
    (g_loss,) = torch.autograd.grad(loss, raw, retain_graph=True)
    (g_fresh,) = torch.autograd.grad(fresh, raw)
    assert float(g_loss.abs().max()) > 0.0
    assert torch.allclose(g_loss, g_fresh, rtol=1e-5)


def test_untrained_rollout_stays_bounded_with_a_long_time_step(periodic_heat_spec, crn_run, monkeypatch):
    """The output layer starts smaller when the network step is longer than the reference
    step, so an untrained rollout with dt = 5 stays of the initial value's size; at the
    unscaled initialisation the same rollout grows by orders of magnitude."""
    spec = {**periodic_heat_spec, "time": {"t_end": 100.0, "dt": 5.0}, "equations": {"u": "1e-4*laplace(u)"}}

    def largest_value() -> float:
        task = crn_run(spec, {"physics_input": False}).task  # the default network's width
        with torch.no_grad():
            return float(task.rollout().abs().max())

    assert largest_value() < 3.0
    monkeypatch.setattr(phycrnet.methods.resolve, "T", phycrnet.options.thresholds.Thresholds(reference_step=1e9))
    assert largest_value() > 30.0


def test_step_balance_weighs_every_step_of_the_untrained_network_alike(tmp_path, mixed_bc_spec, tiny_model, crn_run):
    """The untrained network's weighted residual is the same at every step (its unweighted
    residual is not), the loss keeps its scale, training uses the weighted loss, and a
    resumed run measures the same weights and continues exactly."""
    spec = {**mixed_bc_spec, "initial": {"u": "x**2 + y**2 + 0.3*sin(3*x)*cos(2*y)"}}
    options = {"iterations": 8, "step_balance": True}
    checkpoint = tmp_path / "run.ckpt.pt"
    run = crn_run(spec, tiny_model, checkpoint_path=checkpoint, **options)
    plain = crn_run(spec, tiny_model, step_balance=False)
    task = run.task
    assert plain.task.step_weights is None and task.step_weights.shape == (task.n_network_steps, 1)
    with torch.no_grad():
        frames = task.rollout()
        residual = task.physics.pde_residual(frames, task.t_network, task.problem.parameter_values())
        per_step = task.physics.residual_mean_squares(residual)[:, 0]
        weighted = per_step * task.step_weights[:, 0]
    assert float(per_step.max() / per_step.min()) > 3.0
    torch.testing.assert_close(weighted, torch.full_like(weighted, float(per_step.mean())), rtol=1e-4, atol=0)
    assert run.current_loss() == pytest.approx(plain.current_loss(), rel=1e-4)
    run.steps(3)
    with torch.no_grad():  # the training loss is the weighted one
        frames = task.rollout()
        used = float(task.loss_terms(frames, task.n_network_steps)["pde_u"])
        residual = task.physics.pde_residual(frames, task.t_network, task.problem.parameter_values())
        per_step = task.physics.residual_mean_squares(residual)[:, 0]
    assert used == pytest.approx(float((per_step * task.step_weights[:, 0]).mean()), rel=1e-5)
    assert used != pytest.approx(float(per_step.mean()), rel=1e-2)
    run.engine.save_checkpoint()
    expected = run.steps(2)
    resumed = crn_run(spec, tiny_model, checkpoint_path=checkpoint, **options)
    resumed.engine.load_checkpoint(checkpoint)
    torch.testing.assert_close(resumed.task.step_weights, task.step_weights)
    for (terms_a, _), (terms_b, _) in zip(expected, resumed.steps(2)):
        for key in terms_a:
            assert float(terms_b[key]) == pytest.approx(float(terms_a[key]), rel=1e-6)


def test_substeps_refine_the_network_step_but_not_the_output(periodic_heat_spec, tiny_model, crn_run):
    run = crn_run(periodic_heat_spec, tiny_model, iterations=2, substeps=2)
    assert run.task.n_network_steps == 8
    assert run.task.dt_network == pytest.approx(0.025)
    _, frames = run.train()
    assert frames.shape == (5, 1, 16, 16)
    assert np.isfinite(frames).all()


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-6)])
def test_hard_mode_imposes_dirichlet_values_exactly(mixed_bc_spec, tiny_model, exact_solutions, crn_run, dtype, tolerance):
    # Random decoder weights: the explicit start would be exact on this solution everywhere.
    run = crn_run(mixed_bc_spec, {**tiny_model, "physics_init": "random"}, iterations=4, boundary="hard", dtype=dtype)
    result, frames = run.train()
    assert set(result.loss_terms) == {"pde_u"} and math.isfinite(result.loss_terms["pde_u"])
    frames = frames[:, 0]
    problem = run.task.problem
    exact = exact_solutions[1](problem.grid.x.points, problem.grid.y.points, problem.times)
    # The left side is Dirichlet: its nodes hold g(y, t) = y^2 + 4kt at every frame.
    np.testing.assert_allclose(frames[:, :, 0], exact[:, :, 0], rtol=0, atol=tolerance)
    # The other sides are not overwritten: the network's values stay there.
    assert not np.allclose(frames[1:, :, -1], exact[1:, :, -1], rtol=0, atol=tolerance)


def test_soft_mode_trains_with_boundary_terms(mixed_bc_spec, tiny_model, crn_run):
    result, frames = crn_run(mixed_bc_spec, tiny_model, iterations=4, boundary="soft").train()
    assert set(result.loss_terms) == {"pde_u", "bc_u_left", "bc_u_right", "bc_u_bottom", "bc_u_top"}
    assert all(math.isfinite(v) for v in result.loss_terms.values())
    assert frames.shape == (5, 1, 12, 16) and np.isfinite(frames).all()


@pytest.mark.parametrize("options", [{"weighting": "uncertainty"}, {"derivatives": "spectral"}, {"curriculum": [1, 2]}], ids=["uncertainty", "spectral", "curriculum"])
def test_central_time_scheme_trains(periodic_heat_spec, tiny_model, crn_run, options):
    """The central residual needs two steps: no warm-up or window may give it fewer."""
    spec = dict(periodic_heat_spec, time={"t_end": 0.15, "dt": 0.05})
    run = crn_run(spec, tiny_model, iterations=4, time_scheme="central", **{"derivatives": "fd4", **options})
    result, frames = run.train()
    assert result.iterations == 4
    assert all(math.isfinite(v) for v in result.loss_terms.values())
    assert np.isfinite(frames).all()


def test_curriculum_trains_longer_windows_stage_by_stage(periodic_heat_spec, tiny_model, crn_run):
    """``curriculum: [1, 2]`` splits the Adam phase into three stages (1, 2, then all four
    frames), each restarting its learning-rate schedule."""
    run = crn_run(periodic_heat_spec, tiny_model, iterations=12, substeps=1, curriculum=[1, 2], lbfgs_fraction=0.0, schedule="cosine")
    assert run.engine.windows == [1, 2, None]
    seen, rates = [], []
    losses = run.task.losses

    def recording(window, phase):
        seen.append(window)
        rates.append(run.engine.current_lr)
        return losses(window, phase)

    run.task.losses = recording
    run.engine.train()
    # The start is scored on the whole window first (the first candidate for the best state).
    assert seen[0] is None
    adam, rates = seen[1 : run.engine.iteration + 1], rates[1:]
    assert adam == [1] * 4 + [2] * 4 + [None] * 4
    assert rates[4] == pytest.approx(rates[0]) and rates[8] == pytest.approx(rates[0])  # each stage restarts


def test_segmented_rollout_gives_the_same_loss_and_gradients(periodic_heat_spec, tiny_model, crn_run):
    """Recomputing the rollout in segments and the residual in chunks (a tiny memory budget)
    changes neither the loss nor its gradients; it stores far less for the backward pass."""
    from phycrnet.training.memory import saved_bytes

    plain = crn_run(periodic_heat_spec, tiny_model, substeps=2, step_balance=False)
    segmented = crn_run(periodic_heat_spec, tiny_model, substeps=2, step_balance=False, memory_budget_gb=1e-9)
    assert plain.task.segment is None and segmented.task.segment == 1 and segmented.task.residual_chunk == 1
    grads = []
    for run in (plain, segmented):
        loss = sum(run.task.losses(None, "adam").values())
        grads.append(torch.autograd.grad(loss, list(run.task.model.parameters()), allow_unused=True))
        assert float(loss.detach()) == pytest.approx(float(sum(plain.task.losses(None, "adam").values()).detach()), rel=1e-6)
    for a, b in zip(*grads):
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-8)
    stored = [saved_bytes(lambda run=run: sum(run.task.losses(None, "adam").values())) for run in (plain, segmented)]
    assert stored[1] < 0.2 * stored[0]
