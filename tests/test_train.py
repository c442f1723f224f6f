"""Tests of phycrnet.train: the Trainer's loop, checkpoints, resume, divergence handling,
weighting schemes and boundary modes, on tiny problems (see conftest.py).

The Adam part of :meth:`Trainer.train` is replayed one iteration at a time by
:func:`run_steps` so that tests can stop, checkpoint and compare between iterations.
"""

from __future__ import annotations

import csv
import math
import time

import numpy as np
import pytest
import torch

from phycrnet.methods.config import model_config, training_config
from phycrnet.errors import DataError, DivergenceError, OptionsError
from phycrnet.physics.residual import Physics, PhysicsOptions
from phycrnet.spec.problem import load_spec
from phycrnet.training.trainer import Trainer
from phycrnet.losses.weighting import WEIGHTINGS

ALL_SCHEMES = ("adaptive", "adaptive_detached", "fixed", "uncertainty", "lr_annealing", "relobralo", "softadapt")


def make_trainer(spec, model, *, log_path=None, checkpoint_path=None, **options) -> Trainer:
    problem = load_spec(spec)
    config = training_config(problem.training, {"threads": 1, **options})
    return Trainer(problem, config, model_config(problem.network, model), log_path=log_path, checkpoint_path=checkpoint_path)


def run_steps(trainer: Trainer, n: int) -> list[tuple[dict[str, float], float]]:
    """``n`` Adam iterations exactly as :meth:`Trainer.train` does them; their (terms, total)."""
    history = []
    for _ in range(n):
        terms, total = trainer._adam_step()
        trainer.iteration += 1
        trainer._after_step(terms, total)
        history.append((terms, total))
    return history


def current_loss(trainer: Trainer) -> float:
    """Unweighted sum of the loss terms of the trainer's current state (full window)."""
    with torch.no_grad():
        terms = trainer.losses(trainer.rollout(), trainer.n_network_steps)
    return float(sum(float(v) for v in terms.values()))


# --------------------------------------------------------------------------- the schedule


def test_learning_rate_schedules(periodic_heat_spec, tiny_model):
    options = {"lr": 1e-2, "lr_decay": 0.5, "decay_every": 0.25, "final_lr_ratio": 0.01}
    step = make_trainer(periodic_heat_spec, tiny_model, schedule="step", **options)
    assert step.learning_rate(0.0) == pytest.approx(1e-2)
    assert step.learning_rate(0.3) == pytest.approx(5e-3)
    assert step.learning_rate(0.75) == pytest.approx(1.25e-3)
    cosine = make_trainer(periodic_heat_spec, tiny_model, schedule="cosine", **options)
    assert cosine.learning_rate(0.0) == pytest.approx(1e-2)
    assert cosine.learning_rate(1.0) == pytest.approx(1e-4)
    assert 1e-4 < cosine.learning_rate(0.5) < 1e-2
    exponential = make_trainer(periodic_heat_spec, tiny_model, schedule="exponential", **options)
    assert exponential.learning_rate(1.0) == pytest.approx(1e-4)
    assert exponential.learning_rate(0.5) == pytest.approx(1e-3)
    constant = make_trainer(periodic_heat_spec, tiny_model, schedule="constant", **options)
    assert constant.learning_rate(0.9) == pytest.approx(1e-2)


def test_progress_counts_iterations_and_time_marching_grows_the_window(periodic_heat_spec, tiny_model):
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=10, time_marching=2, substeps=1)
    assert trainer.n_network_steps == 4
    assert trainer.progress_fraction() == 0.0
    trainer.iteration = 5
    assert trainer.progress_fraction() == pytest.approx(0.5)
    windows = [trainer.window(p) for p in (0.0, 0.2, 0.3, 0.6, 1.0)]
    assert windows[0] < trainer.n_network_steps
    assert windows == sorted(windows)
    assert windows[-2:] == [trainer.n_network_steps] * 2
    plain = make_trainer(periodic_heat_spec, tiny_model, iterations=10, substeps=1)
    assert plain.window(0.0) == plain.n_network_steps


def transform_losses(trainer, transform) -> None:
    """Make ``trainer.losses`` return ``transform(terms)`` of the terms it computes."""
    original = trainer.losses

    def transformed(*args, **kwargs):
        return transform(original(*args, **kwargs))

    trainer.losses = transformed


@pytest.mark.parametrize("cap, fraction", [(40, 0.5), (7, 0.3), (3, 0.3)])
def test_lbfgs_evaluations_count_as_iterations_within_the_cap(periodic_heat_spec, tiny_model, cap, fraction):
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=cap, lbfgs_fraction=fraction)
    adam_cap = round(cap * (1 - fraction))
    calls = []
    losses = trainer.losses

    def counted(*args, **kwargs):
        calls.append(trainer.iteration)
        return losses(*args, **kwargs)

    trainer.losses = counted
    result = trainer.train()
    adam = sum(1 for i in calls if i < adam_cap)
    # Two calls are not iterations: scoring the state the last L-BFGS step ended in, and
    # evaluating the returned (best) state.
    lbfgs = len(calls) - adam - 2
    assert adam == adam_cap
    # Every L-BFGS evaluation (line-search trials too) is an iteration, and the cap holds
    # exactly even when it falls inside a line search.
    assert lbfgs == cap - adam_cap
    assert result.iterations == cap


def test_slow_lbfgs_evaluations_stop_at_the_time_budget(periodic_heat_spec, tiny_model):
    """An outer L-BFGS step (up to 25 evaluations) does not run on past the time budget:
    here each L-BFGS evaluation takes 0.25 s, five times longer than the Adam iterations the
    first estimate rests on, and the run still ends within an evaluation or two of its 2 s."""
    trainer = make_trainer(periodic_heat_spec, tiny_model, time_budget=2.0, iterations=None, lbfgs_fraction=0.75)

    def slow_in_lbfgs(terms):
        if trainer.progress_fraction() >= 0.25:
            time.sleep(0.25)
        return terms

    transform_losses(trainer, slow_in_lbfgs)
    result = trainer.train()
    assert trainer.seconds < 2.0 + 0.6
    assert np.isfinite(result.frames).all() and math.isfinite(result.best_loss)


def test_lbfgs_restarts_from_the_best_state_after_a_non_finite_loss(periodic_heat_spec, tiny_model):
    """A line search that runs into a blown-up rollout does not end the L-BFGS phase: it
    goes back to the best state and carries on to the cap with finite frames."""
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=80, lbfgs_fraction=0.5)
    evaluations = []

    def nan_at_the_start_of_lbfgs(terms):
        if trainer.iteration >= 40:
            evaluations.append(trainer.iteration)
            if len(evaluations) == 1:
                terms = {k: v * float("nan") for k, v in terms.items()}
        return terms

    transform_losses(trainer, nan_at_the_start_of_lbfgs)
    result = trainer.train()
    assert result.iterations == 80  # the phase went on after the non-finite loss
    # Every L-BFGS evaluation, then scoring the last step's state and the returned state.
    assert len(evaluations) == 40 + 2
    assert np.isfinite(result.frames).all() and math.isfinite(result.best_loss)
    # The restart halves the step length, so it does not retrace the path into the blow-up.
    assert trainer.lbfgs_step_length == 0.5


def test_substeps_refine_the_network_step_but_not_the_output(periodic_heat_spec, tiny_model):
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=2, substeps=2)
    assert trainer.n_network_steps == 8
    assert trainer.dt_network == pytest.approx(0.025)
    result = trainer.train()
    assert result.frames.shape == (5, 1, 16, 16)
    assert np.isfinite(result.frames).all()


# --------------------------------------------------------------------------- boundary modes


@pytest.mark.parametrize("scheme", ["crank_nicolson", "bdf2", "central", "backward_euler"])
@pytest.mark.parametrize("derivatives", ["fd2", "fd4", "spectral", "auto"])
@pytest.mark.parametrize("mode", ["soft", "hard"])
def test_losses_vanish_on_an_exact_solution(mixed_bc_spec, exact_solutions, mode, derivatives, scheme):
    """u = x^2 + y^2 + 4kt: every stencil is exact on it, so every loss term is ~0."""
    problem = load_spec(mixed_bc_spec)
    physics = Physics(problem, PhysicsOptions(derivatives, mode, scheme), dtype=torch.float64)
    exact = exact_solutions[1](problem.grid.x.points, problem.grid.y.points, problem.times)
    frames = torch.tensor(exact).unsqueeze(1)
    t = torch.tensor(problem.times)
    terms = physics.losses(frames, t, problem.parameter_values())
    sides = {f"bc_u_{side}" for side in ("left", "right", "bottom", "top")}
    assert set(terms) == ({"pde_u"} | sides if mode == "soft" else {"pde_u"})
    for name, value in terms.items():
        assert float(value) < 1e-20, (name, float(value))


def test_soft_boundary_losses_measure_the_violated_sides(mixed_bc_spec, exact_solutions):
    """Adding a constant c breaks the Dirichlet and Robin (a=1) sides by c, not the Neumann ones."""
    problem = load_spec(mixed_bc_spec)
    physics = Physics(problem, PhysicsOptions("fd4", "soft"), dtype=torch.float64)
    exact = exact_solutions[1](problem.grid.x.points, problem.grid.y.points, problem.times)
    frames = torch.tensor(exact + 0.1).unsqueeze(1)
    terms = physics.losses(frames, torch.tensor(problem.times), problem.parameter_values())
    assert float(terms["bc_u_left"]) == pytest.approx(0.01, rel=1e-9)
    assert float(terms["bc_u_bottom"]) == pytest.approx(0.01, rel=1e-9)
    assert float(terms["bc_u_right"]) < 1e-20
    assert float(terms["bc_u_top"]) < 1e-20
    assert float(terms["pde_u"]) < 1e-20


def test_soft_mode_trains_with_boundary_terms(mixed_bc_spec, tiny_model):
    trainer = make_trainer(mixed_bc_spec, tiny_model, iterations=4, boundary="soft")
    result = trainer.train()
    assert set(result.loss_terms) == {"pde_u", "bc_u_left", "bc_u_right", "bc_u_bottom", "bc_u_top"}
    assert all(math.isfinite(v) for v in result.loss_terms.values())
    assert result.frames.shape == (5, 1, 12, 16)
    assert np.isfinite(result.frames).all()


@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-12), ("float32", 1e-6)])
def test_hard_mode_imposes_dirichlet_values_exactly(mixed_bc_spec, tiny_model, exact_solutions, dtype, tolerance):
    # Random decoder weights: the explicit start would be exact on this solution everywhere.
    trainer = make_trainer(mixed_bc_spec, {**tiny_model, "physics_init": "random"}, iterations=4, boundary="hard", dtype=dtype)
    result = trainer.train()
    assert set(result.loss_terms) == {"pde_u"}
    assert math.isfinite(result.loss_terms["pde_u"])
    frames = result.frames[:, 0]
    assert np.isfinite(frames).all()
    problem = trainer.problem
    exact = exact_solutions[1](problem.grid.x.points, problem.grid.y.points, problem.times)
    # The left side is Dirichlet: its nodes hold g(y, t) = y^2 + 4kt at every frame.
    np.testing.assert_allclose(frames[:, :, 0], exact[:, :, 0], rtol=0, atol=tolerance)
    # The other sides are not overwritten: the network's values stay there.
    assert not np.allclose(frames[1:, :, -1], exact[1:, :, -1], rtol=0, atol=tolerance)


@pytest.mark.parametrize(
    "options",
    [
        {"weighting": "uncertainty"},
        {"derivatives": "spectral"},
        {"time_marching": 4},
    ],
    ids=["uncertainty", "spectral", "time_marching"],
)
def test_central_time_scheme_trains(periodic_heat_spec, tiny_model, options):
    """The central residual needs two steps: no warm-up or window may give it fewer."""
    spec = dict(periodic_heat_spec, time={"t_end": 0.15, "dt": 0.05})
    options = {"derivatives": "fd4", **options}
    trainer = make_trainer(spec, tiny_model, iterations=4, time_scheme="central", **options)
    result = trainer.train()
    assert result.iterations == 4
    assert all(math.isfinite(v) for v in result.loss_terms.values())
    assert np.isfinite(result.frames).all()


# --------------------------------------------------------------------------- weighting


@pytest.mark.parametrize(
    "scheme, options",
    [(name, {}) for name in ALL_SCHEMES] + [("lr_annealing", {"every": 2}), ("fixed", {"weights": {"bc": 10.0}})],
    ids=[*ALL_SCHEMES, "lr_annealing-every2", "fixed-weights"],
)
def test_every_weighting_scheme_trains(tmp_path, mixed_bc_spec, tiny_model, scheme, options):
    log = tmp_path / "log.csv"
    # Adam only: an L-BFGS step spans several evaluations (iterations) and logs once.
    trainer = make_trainer(
        mixed_bc_spec, tiny_model, log_path=log, iterations=4, log_every=1, weighting=scheme, weighting_options=options, lbfgs_fraction=0.0
    )
    result = trainer.train()
    assert result.iterations == 4
    assert all(math.isfinite(v) for v in result.loss_terms.values())
    weights = trainer.weighting.weights
    assert set(weights) == set(result.loss_terms)
    assert all(math.isfinite(w) and w > 0 for w in weights.values()), weights
    with open(log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    for row in rows:
        for name in result.loss_terms:
            assert math.isfinite(float(row[name]))
            assert math.isfinite(float(row[f"w_{name}"]))
        assert math.isfinite(float(row["loss"]))


def test_fixed_weights_by_name_and_prefix(mixed_bc_spec, tiny_model):
    trainer = make_trainer(
        mixed_bc_spec, tiny_model, iterations=1, boundary="soft", weighting="fixed", weighting_options={"weights": {"bc": 10.0, "bc_u_top": 3.0}}
    )
    trainer.train()
    assert trainer.weighting.weights == {
        "pde_u": 1.0,
        "bc_u_left": 10.0,
        "bc_u_right": 10.0,
        "bc_u_bottom": 10.0,
        "bc_u_top": 3.0,
    }


def test_every_listed_scheme_is_registered():
    assert set(ALL_SCHEMES) <= set(WEIGHTINGS)


def test_unknown_weighting_scheme_or_option_is_an_options_error(mixed_bc_spec, tiny_model):
    with pytest.raises(OptionsError, match="nope"):
        make_trainer(mixed_bc_spec, tiny_model, weighting="nope")
    with pytest.raises(OptionsError, match="bogus"):
        make_trainer(mixed_bc_spec, tiny_model, weighting="adaptive", weighting_options={"bogus": 1})


# --------------------------------------------------------------------------- checkpoints and resume


@pytest.mark.parametrize("weighting", ["adaptive", "relobralo", "uncertainty", "softadapt"])
def test_resumed_trainer_continues_exactly(tmp_path, mixed_bc_spec, tiny_model, weighting):
    """A fresh Trainer loaded from the checkpoint at iteration K repeats K+1, K+2, K+3.

    The step schedule over a 10-iteration cap decays the learning rate inside this window,
    so the schedule, the optimiser moments and the weighting state must all be restored.
    """
    options = {"iterations": 10, "lr": 5e-3, "schedule": "step", "weighting": weighting}
    checkpoint = tmp_path / "run.ckpt.pt"
    first = make_trainer(mixed_bc_spec, tiny_model, checkpoint_path=checkpoint, **options)
    run_steps(first, 4)
    first.save_checkpoint()
    expected = run_steps(first, 3)
    expected_lr = first.current_lr

    second = make_trainer(mixed_bc_spec, tiny_model, checkpoint_path=checkpoint, **options)
    second.load_checkpoint(checkpoint)
    assert second.iteration == 4
    got = run_steps(second, 3)
    for (terms_a, total_a), (terms_b, total_b) in zip(expected, got):
        assert total_b == pytest.approx(total_a, rel=1e-6)
        assert terms_b == pytest.approx(terms_a, rel=1e-6)
    assert second.current_lr == pytest.approx(expected_lr, rel=1e-12)
    assert second.weighting.weights == pytest.approx(first.weighting.weights, rel=1e-6)
    for a, b in zip(first.model.parameters(), second.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_step_balance_weighs_every_step_of_the_untrained_network_alike(tmp_path, mixed_bc_spec, tiny_model):
    """``step_balance``: the untrained network's weighted residual is the same at every
    step (its unweighted residual is not), the loss keeps its scale, training uses the
    weighted loss, and a resumed run measures the same weights and continues exactly."""
    spec = {**mixed_bc_spec, "initial": {"u": "x**2 + y**2 + 0.3*sin(3*x)*cos(2*y)"}}
    options = {"iterations": 8, "step_balance": True}
    checkpoint = tmp_path / "run.ckpt.pt"
    trainer = make_trainer(spec, tiny_model, checkpoint_path=checkpoint, **options)
    plain = make_trainer(spec, tiny_model, step_balance=False)
    assert plain.step_weights is None and trainer.step_weights.shape == (trainer.n_network_steps, 1)
    # "auto" (the default): where the untrained network is a classical step, not a random one.
    assert make_trainer(spec, tiny_model).step_weights is not None
    assert make_trainer(spec, {**tiny_model, "physics_input": False}).step_weights is None
    with torch.no_grad():
        frames = trainer.rollout()
        residual = trainer.physics.pde_residual(frames, trainer.t_network, trainer.problem.parameter_values())
        per_step = trainer.physics.residual_mean_squares(residual, 0)
        weighted = per_step * trainer.step_weights[:, 0]
    assert float(per_step.max() / per_step.min()) > 3.0
    torch.testing.assert_close(weighted, torch.full_like(weighted, float(per_step.mean())), rtol=1e-4, atol=0)
    assert current_loss(trainer) == pytest.approx(current_loss(plain), rel=1e-4)
    run_steps(trainer, 3)
    with torch.no_grad():  # the training loss is the weighted one
        frames = trainer.rollout()
        used = float(trainer.losses(frames, trainer.n_network_steps)["pde_u"])
        residual = trainer.physics.pde_residual(frames, trainer.t_network, trainer.problem.parameter_values())
        per_step = trainer.physics.residual_mean_squares(residual, 0)
    assert used == pytest.approx(float((per_step * trainer.step_weights[:, 0]).mean()), rel=1e-5)
    assert used != pytest.approx(float(per_step.mean()), rel=1e-2)
    trainer.save_checkpoint()
    expected = run_steps(trainer, 2)
    resumed = make_trainer(spec, tiny_model, checkpoint_path=checkpoint, **options)
    resumed.load_checkpoint(checkpoint)
    torch.testing.assert_close(resumed.step_weights, trainer.step_weights)
    for (terms_a, _), (terms_b, _) in zip(expected, run_steps(resumed, 2)):
        assert terms_b == pytest.approx(terms_a, rel=1e-6)


def test_checkpoint_is_written_without_leftover_files(tmp_path, periodic_heat_spec, tiny_model):
    checkpoint = tmp_path / "run.ckpt.pt"
    trainer = make_trainer(periodic_heat_spec, tiny_model, checkpoint_path=checkpoint)
    run_steps(trainer, 2)
    trainer.save_checkpoint()
    run_steps(trainer, 1)
    trainer.save_checkpoint()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt.pt"]
    state = torch.load(checkpoint, weights_only=False)
    assert state["iteration"] == 3


def test_failed_checkpoint_write_keeps_the_old_checkpoint_and_no_temporary(tmp_path, periodic_heat_spec, tiny_model, monkeypatch):
    checkpoint = tmp_path / "run.ckpt.pt"
    trainer = make_trainer(periodic_heat_spec, tiny_model, checkpoint_path=checkpoint)
    run_steps(trainer, 1)
    trainer.save_checkpoint()
    before = checkpoint.read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    run_steps(trainer, 1)
    with pytest.raises(OSError):
        trainer.save_checkpoint()
    assert checkpoint.read_bytes() == before
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name != "run.ckpt.pt")
    assert leftovers == [], f"temporary files left behind: {leftovers}"


def test_checkpoint_of_another_spec_is_a_data_error(tmp_path, mixed_bc_spec, tiny_model):
    checkpoint = tmp_path / "run.ckpt.pt"
    trainer = make_trainer(mixed_bc_spec, tiny_model, checkpoint_path=checkpoint)
    run_steps(trainer, 1)
    trainer.save_checkpoint()
    other = dict(mixed_bc_spec, parameters={"k": 0.06})
    with pytest.raises(DataError, match="different spec"):
        make_trainer(other, tiny_model).load_checkpoint(checkpoint)


def test_missing_or_corrupt_checkpoint_is_a_data_error(tmp_path, periodic_heat_spec, tiny_model):
    trainer = make_trainer(periodic_heat_spec, tiny_model)
    with pytest.raises(DataError, match="no checkpoint"):
        trainer.load_checkpoint(tmp_path / "absent.ckpt.pt")
    corrupt = tmp_path / "corrupt.ckpt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(DataError) as info:
        trainer.load_checkpoint(corrupt)
    assert "\n" not in str(info.value)


def test_log_is_written_while_training_after_a_few_seconds(tmp_path, periodic_heat_spec, tiny_model, monkeypatch):
    """A slow run's rows reach the CSV before the row-count threshold (so it can be followed)."""
    import phycrnet.training.trainer as train_module

    log = tmp_path / "log.csv"
    trainer = make_trainer(periodic_heat_spec, tiny_model, log_path=log, log_every=1)
    run_steps(trainer, 2)
    assert not log.exists()  # buffered: fewer rows than LOG_FLUSH_ROWS, well within the time limit
    monkeypatch.setattr(train_module, "LOG_FLUSH_SECONDS", 0.0)
    run_steps(trainer, 1)
    with open(log, newline="") as handle:
        assert [int(r["iteration"]) for r in csv.DictReader(handle)] == [1, 2, 3]


def test_resume_truncates_log_rows_written_after_the_checkpoint(tmp_path, periodic_heat_spec, tiny_model):
    log, checkpoint = tmp_path / "log.csv", tmp_path / "run.ckpt.pt"
    first = make_trainer(periodic_heat_spec, tiny_model, log_path=log, checkpoint_path=checkpoint, log_every=1)
    run_steps(first, 3)
    first.save_checkpoint()
    run_steps(first, 3)
    first._flush_log()
    second = make_trainer(periodic_heat_spec, tiny_model, log_path=log, checkpoint_path=checkpoint, log_every=1)
    second.load_checkpoint(checkpoint)
    run_steps(second, 2)
    second._flush_log()
    with open(log, newline="") as handle:
        iterations = [int(r["iteration"]) for r in csv.DictReader(handle)]
    assert iterations == [1, 2, 3, 4, 5]


# --------------------------------------------------------------------------- divergence


def test_exploding_learning_rate_raises_divergence_error(periodic_heat_spec, tiny_model):
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=60, lr=1e6, schedule="constant")
    with pytest.raises(DivergenceError) as info:
        trainer.train()
    message = str(info.value)
    assert "\n" not in message
    assert "diverged" in message
    assert trainer.recoveries == trainer.config.max_recoveries
    assert info.value.exit_code == 3


def test_non_finite_loss_without_a_good_state_raises_at_once(periodic_heat_spec, tiny_model):
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=10)
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(DivergenceError):
        trainer.train()
    assert trainer.iteration == 1


def test_recovery_restores_the_state_that_had_the_best_loss(periodic_heat_spec, tiny_model):
    """After a blow-up the trainer must go back to the parameters whose loss was best_loss.

    One Adam step with a huge learning rate ruins the parameters; the next iteration sees
    the exploded loss and recovers. The restored state must not be the ruined one.
    """
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=100, lr=5e-3, schedule="constant", max_recoveries=5)
    run_steps(trainer, 22)
    trainer.lr_scale = 1e7
    run_steps(trainer, 1)
    run_steps(trainer, 1)
    assert trainer.recoveries == 1
    assert math.isfinite(trainer.best_loss)
    assert current_loss(trainer) == pytest.approx(trainer.best_loss, rel=1e-5)


def test_recovery_restores_adams_moments_of_the_best_state(periodic_heat_spec, tiny_model):
    """The ruinous step's huge gradient must not stay in Adam's moments, nor may the moments
    be wiped (a wiped Adam moves every weight by about lr at once): after the recovery they
    are those saved with the best state."""
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=100, lr=5e-3, schedule="constant", max_recoveries=5)
    run_steps(trainer, 22)
    trainer.lr_scale = 1e7
    run_steps(trainer, 2)
    assert trainer.recoveries == 1
    saved = trainer.best_state["optimizer"]["state"]
    current = trainer.optimizer.state_dict()["state"]
    assert saved and saved.keys() == current.keys()
    for key in saved:
        assert int(current[key]["step"]) == int(saved[key]["step"]) > 0
        assert torch.equal(current[key]["exp_avg_sq"], saved[key]["exp_avg_sq"])


def test_result_reports_the_losses_of_the_best_state(periodic_heat_spec, tiny_model):
    """The returned frames come from the restored best state; their losses are best_loss."""
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=5, lr=5e-3, schedule="constant")
    result = trainer.train()
    assert sum(result.loss_terms.values()) == pytest.approx(result.best_loss, rel=1e-5)


# --------------------------------------------------------------------------- learnable coefficients


def test_learnable_coefficient_waits_for_the_warmup_and_is_logged_through_lbfgs(tmp_path, periodic_heat_spec, tiny_model):
    spec = dict(periodic_heat_spec, parameters={"k": {"init": 0.05, "learn": True}})
    log = tmp_path / "log.csv"
    trainer = make_trainer(spec, tiny_model, iterations=20, lr=1e-2, coefficient_warmup=0.25, lbfgs_fraction=0.25, log_path=log, log_every=1)
    history = []
    for _ in range(15):  # the Adam phase, as train() runs it
        terms, total = trainer._adam_step()
        trainer.iteration += 1
        trainer._after_step(terms, total)
        history.append(trainer.coefficients.learned()["k"])
    assert history[:5] == [pytest.approx(0.05, rel=1e-7)] * 5  # frozen for 25 % of the run
    assert history[-1] != pytest.approx(0.05, rel=1e-6)
    trainer._lbfgs()
    trainer._flush_log()
    with open(log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    # The L-BFGS rows carry the coefficient as it moves, not the value Adam left.
    assert float(rows[-1]["param_k"]) == pytest.approx(trainer.coefficients.learned()["k"], rel=1e-6)


def train_with_k_pulled_to_0_08(tmp_path, spec, model, **options):
    """Train 120 iterations (90 % L-BFGS) with k learnable from 0.05 and the logged
    ``(iteration, k)`` rows. The physics alone holds for any k: a term that pulls k to 0.08
    stands in for data."""
    spec = dict(spec, parameters={"k": {"init": 0.05, "learn": True}})
    log = tmp_path / "log.csv"
    trainer = make_trainer(spec, model, iterations=120, lr=1e-2, lbfgs_fraction=0.9, log_path=log, log_every=1, **options)
    trainer.extra_losses = lambda frames, t, parameters: {"pull": 100 * (parameters["k"] - 0.08) ** 2}
    trainer.train()
    with open(log, newline="") as handle:
        return trainer, [(int(r["iteration"]), float(r["param_k"])) for r in csv.DictReader(handle)]


def test_coefficient_warmup_holds_in_the_lbfgs_phase_too_and_then_releases(tmp_path, periodic_heat_spec, tiny_model):
    """A warm-up longer than the Adam phase keeps the coefficient through the first L-BFGS
    steps; once it is over, L-BFGS moves the coefficient as well. Without the physics input,
    so that the network alone follows k (with it, this stiff heat problem's frames lean on
    F's explicit step at the k it was given)."""
    model = {**tiny_model, "physics_input": False}
    trainer, rows = train_with_k_pulled_to_0_08(tmp_path, periodic_heat_spec, model, coefficient_warmup=0.5, identification_share=1.0)
    held = [k for iteration, k in rows if iteration < 0.5 * 120 - 20]  # an outer step is at most 20 evaluations
    assert len(held) > 2 and all(k == pytest.approx(0.05, rel=1e-7) for k in held)
    assert trainer.coefficients.learned()["k"] == pytest.approx(0.08, rel=1e-2)


def test_coefficients_are_fixed_after_the_identification_share(tmp_path, periodic_heat_spec, tiny_model):
    """Past ``identification_share`` the coefficient keeps the value it had, through L-BFGS."""
    _, rows = train_with_k_pulled_to_0_08(tmp_path, periodic_heat_spec, tiny_model, identification_share=0.3)
    late = [k for iteration, k in rows if iteration > 0.3 * 120 + 20]  # an outer step is at most 20 evaluations
    assert len(late) > 2 and max(late) == pytest.approx(min(late), rel=1e-7)
    assert late[0] != pytest.approx(0.05, rel=1e-4)  # it did move before


def test_coefficient_warmup_must_end_before_the_identification(periodic_heat_spec, tiny_model):
    with pytest.raises(OptionsError, match="coefficient_warmup"):
        make_trainer(periodic_heat_spec, tiny_model, coefficient_warmup=0.8, identification_share=0.75)


def test_learnable_coefficient_is_trained_and_bounded(periodic_heat_spec, tiny_model):
    spec = dict(periodic_heat_spec, parameters={"k": {"init": 0.05, "learn": True, "bounds": [0.01, 0.1]}})
    trainer = make_trainer(spec, tiny_model, iterations=5, lr=1e-2)
    assert trainer.coefficients.learned()["k"] == pytest.approx(0.05, rel=1e-5)
    result = trainer.train()
    assert set(result.parameters) == {"k"}
    assert 0.01 < result.parameters["k"] < 0.1
    assert result.parameters["k"] != pytest.approx(0.05, rel=1e-7)


# --------------------------------------------------------------------------- sub-steps


def test_spectral_radius_estimate_matches_the_discrete_laplacian():
    """On periodic heat the Jacobian is a * laplacian, whose largest eigenvalue with second-
    order stencils is a * 8 / h**2 (the checkerboard mode)."""
    spec = {
        "name": "heat", "parameters": {"a": 0.02}, "domain": {"x": [0, 1], "y": [0, 1]},
        "grid": {"nx": 16, "ny": 16}, "time": {"t_end": 0.1, "dt": 0.05},
        "equations": {"u": "a*laplace(u)"}, "initial": {"u": "sin(2*pi*x)"}, "boundary": "periodic",
    }
    problem = load_spec(spec)
    physics = Physics(problem, PhysicsOptions(derivatives="fd2"), dtype=torch.float64)
    state = torch.as_tensor(problem.initial_values(), dtype=torch.float64).unsqueeze(0)
    rho = physics.spectral_radius(state, torch.zeros(1, dtype=torch.float64), {"a": 0.02}, iterations=200)
    assert rho == pytest.approx(0.02 * 8 * 16**2, rel=1e-3)


def test_automatic_substeps_and_physics_input_follow_the_stiffness(periodic_heat_spec, tiny_model):
    """Sub-steps grow with dt * rho (here through the diffusivity) up to the cap; far beyond
    it the physics input is switched off (and one step per frame kept); given values win."""
    from phycrnet.training.trainer import MAX_AUTO_SUBSTEPS, MAX_EXPLICIT_SUBSTEPS, PHYSICS_INPUT_LIMIT, STIFF_STEP

    explicit_only = {**tiny_model, "implicit_diffusion": False}

    def trainer_for(a: float, **options) -> Trainer:
        return make_trainer({**periodic_heat_spec, "equations": {"u": f"{a}*laplace(u)"}}, explicit_only, **options)

    mild, stiff, extreme = trainer_for(1e-4), trainer_for(0.05), trainer_for(10.0)
    assert mild.stiffness < stiff.stiffness < extreme.stiffness
    assert mild.substeps == 1 and mild.model.config.physics_input is True
    assert stiff.stiffness / MAX_AUTO_SUBSTEPS <= PHYSICS_INPUT_LIMIT < extreme.stiffness / MAX_AUTO_SUBSTEPS
    assert stiff.substeps == min(MAX_EXPLICIT_SUBSTEPS, math.ceil(stiff.stiffness / STIFF_STEP)) > 1
    # Beyond MAX_AUTO_SUBSTEPS explicit sub-steps are still added while they keep the step stable.
    stiffer = trainer_for(0.05 * 1.5 * MAX_AUTO_SUBSTEPS * STIFF_STEP / stiff.stiffness)
    assert stiffer.model.config.physics_input is True
    assert MAX_AUTO_SUBSTEPS < stiffer.substeps == math.ceil(stiffer.stiffness / STIFF_STEP) <= MAX_EXPLICIT_SUBSTEPS
    assert stiffer.step_stiffness(stiffer.substeps) <= STIFF_STEP * (1 + 1e-9) and stiffer.explicit_step_gain() == 1.0
    assert extreme.model.config.physics_input is False and extreme.substeps == 1
    forced = make_trainer({**periodic_heat_spec, "equations": {"u": "10.0*laplace(u)"}}, {**explicit_only, "physics_input": True})
    assert forced.model.config.physics_input is True and forced.substeps == MAX_EXPLICIT_SUBSTEPS
    assert trainer_for(0.05, substeps=2).substeps == 2
    assert make_trainer(periodic_heat_spec, {**tiny_model, "physics_input": False}).substeps == 1


@pytest.mark.parametrize("scheme", ["crank_nicolson", "bdf2", "central", "backward_euler"])
def test_residual_reuses_the_rollouts_right_hand_side_without_changing_it(mixed_bc_spec, tiny_model, scheme):
    """The loss built from F(u_k) the network already saw equals the one evaluated afresh,
    values and gradients alike (hard Dirichlet nodes and ghost nodes included). The initial
    value is not the exact polynomial solution, whose residual the untrained predictor
    steps make vanish to round-off (and with it any meaningful gradient)."""
    spec = {**mixed_bc_spec, "initial": {"u": "x**2 + y**2 + 0.3*sin(3*x)*cos(2*y)"}}
    trainer = make_trainer(spec, tiny_model, time_scheme=scheme, boundary="hard", substeps=2, step_balance=False)
    frames = trainer.rollout()
    assert trainer._known_rhs is not None and trainer._known_rhs[0] is frames
    reused = trainer.losses(frames, trainer.n_network_steps)
    fresh = trainer.physics.losses(frames, trainer.t_network, trainer.coefficients.values())
    assert reused.keys() == fresh.keys()
    params = list(trainer.model.parameters())
    for key in reused:
        assert float(reused[key]) == pytest.approx(float(fresh[key]), rel=1e-5)
        g_reused = torch.autograd.grad(reused[key], params, retain_graph=True, allow_unused=True)
        g_fresh = torch.autograd.grad(fresh[key], params, retain_graph=True, allow_unused=True)
        for a, b in zip(g_reused, g_fresh):
            if a is not None or b is not None:
                assert torch.allclose(a, b, rtol=1e-4, atol=1e-7)


def test_untrained_rollout_stays_bounded_with_a_long_time_step(periodic_heat_spec, tiny_model, monkeypatch):
    """The output layer starts smaller when the network step is longer than the paper's
    0.05, so an untrained rollout with dt = 5 stays of the initial value's size; at the
    unscaled initialisation the same rollout grows by orders of magnitude."""
    import phycrnet.training.trainer as train_module

    spec = {**periodic_heat_spec, "time": {"t_end": 100.0, "dt": 5.0}, "equations": {"u": "1e-4*laplace(u)"}}

    def largest_value() -> float:
        trainer = make_trainer(spec, {"physics_input": False})  # the default network's width
        with torch.no_grad():
            return float(trainer.rollout().abs().max())

    assert largest_value() < 3.0
    monkeypatch.setattr(train_module, "REFERENCE_STEP", 1e9)
    assert largest_value() > 30.0


@pytest.mark.parametrize("nu, resolved", [(0.05, True), (0.005, False), (0.0, False)])
def test_automatic_physics_input_is_off_where_the_grid_does_not_resolve_transport(periodic_heat_spec, tiny_model, nu, resolved):
    """The cell Peclet number |a| h / D decides ``physics_input: auto`` for advection:
    here a = 1 (the maximum of u0), h = 1/16, so Pe = 1.25 at nu = 0.05 and 12.5 at 0.005,
    infinite without diffusion; an explicit setting still wins."""
    from phycrnet.training.trainer import PECLET_LIMIT

    advected = {**periodic_heat_spec, "equations": {"u": f"{nu}*laplace(u) - d_dx(u**2/2)"}}
    trainer = make_trainer(advected, tiny_model)
    expected = 1.0 / 16 / nu if nu else math.inf
    assert trainer.peclet == pytest.approx(expected, rel=1e-6)
    assert (trainer.peclet <= PECLET_LIMIT) == resolved
    assert trainer.model.config.physics_input is resolved
    forced = make_trainer(advected, {**tiny_model, "physics_input": True})
    assert forced.model.config.physics_input is True


@pytest.mark.parametrize("k", [0.002, 0.02])
def test_automatic_physics_input_while_a_coefficient_is_learned_follows_the_stiffness(periodic_heat_spec, tiny_model, k):
    """Learning k, F is fed only where one explicit step per frame would be unstable."""
    known = {**periodic_heat_spec, "parameters": {"k": k}}
    learned = {**periodic_heat_spec, "parameters": {"k": {"init": k, "learn": True}}}
    assert make_trainer(known, tiny_model).model.config.physics_input is True
    trainer = make_trainer(learned, tiny_model)
    stiff = trainer.step_stiffness(1) > 2.0
    assert stiff is (k == 0.02)  # the two cases lie on either side of the limit
    assert trainer.model.config.physics_input is stiff
    assert make_trainer(learned, {**tiny_model, "physics_input": True}).model.config.physics_input is True
    assert make_trainer(learned, {**tiny_model, "physics_input": False}).model.config.physics_input is False


def test_a_stiff_periodic_problem_keeps_its_physics_input_while_a_coefficient_is_learned(periodic_heat_spec, tiny_model):
    """The rule for learned coefficients looks at the explicit step: far beyond its limit
    (dt * rho = 500 here) F stays on, with implicit diffusion, even though the IMEX step the
    network then sees is stable."""
    learned = {**periodic_heat_spec, "parameters": {"k": {"init": 5.0, "learn": True}}}
    trainer = make_trainer(learned, tiny_model)
    assert trainer.stiffness > 2.0 and trainer.implicit_diffusion
    assert trainer.step_stiffness(1) <= 2.0  # the IMEX step: the old rule switched F off on it
    assert trainer.model.config.physics_input is True


def test_a_learned_coefficient_reaches_the_loss_through_the_residual_not_the_physics_input(periodic_heat_spec, tiny_model):
    """With F fed to the network while k is learned, k enters the input as a constant: the
    frames carry no gradient to k, and the loss's gradient to k is the residual's, evaluated
    afresh (the rollout's F, computed with a detached k, is not reused)."""
    learned = {**periodic_heat_spec, "parameters": {"k": {"init": 0.02, "learn": True}}}
    trainer = make_trainer(learned, {**tiny_model, "physics_input": True})
    raw = list(trainer.coefficients.parameters())
    frames = trainer.rollout()
    assert trainer._known_rhs is None
    (to_k,) = torch.autograd.grad(frames.square().sum(), raw, retain_graph=True, allow_unused=True)
    assert to_k is None or float(to_k.abs().max()) == 0.0
    loss = sum(trainer.losses(frames, trainer.n_network_steps).values())
    fresh = sum(trainer.physics.losses(frames, trainer.t_network, trainer.coefficients.values(), step_weights=trainer.step_weights).values())
    (g_loss,) = torch.autograd.grad(loss, raw, retain_graph=True)
    (g_fresh,) = torch.autograd.grad(fresh, raw)
    assert float(g_loss.abs().max()) > 0.0
    assert torch.allclose(g_loss, g_fresh, rtol=1e-5)


def test_a_stalled_lbfgs_step_clears_the_curvature_history(periodic_heat_spec, tiny_model):
    """An outer step that cannot lower the loss (here: a loss that does not depend on the
    weights) counts as a stall and starts a fresh L-BFGS; the phase still runs to the cap."""
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=30, lbfgs_fraction=0.5)
    steps = []

    def frozen_in_lbfgs(terms):
        if trainer.iteration >= 15:
            steps.append(trainer.iteration)
            terms = {k: 0.0 * v + 1.0 for k, v in terms.items()}
        return terms

    transform_losses(trainer, frozen_in_lbfgs)
    result = trainer.train()
    assert result.iterations == 30
    outer_steps = len(set(steps[:-2]))  # each outer step starts at a new iteration count
    assert trainer.lbfgs_stalls == outer_steps - 1 > 0


def test_lbfgs_makes_progress_on_a_tiny_loss(periodic_heat_spec, tiny_model):
    """The L-BFGS finish works on the loss relative to its start: a loss of order 1e-12 (torch's
    LBFGS tests absolute thresholds such as a gradient of 1e-7) still falls in that phase."""
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=60, lbfgs_fraction=0.5)
    in_lbfgs = []

    def tiny(terms):
        terms = {k: 1e-12 * v for k, v in terms.items()}
        if trainer.iteration >= 30:
            in_lbfgs.append(float(sum(terms.values())))
        return terms

    transform_losses(trainer, tiny)
    trainer.train()
    assert min(in_lbfgs) < 0.5 * in_lbfgs[0]


def test_explicit_physics_init_starts_near_an_explicit_euler_rollout(periodic_heat_spec, tiny_model):
    """With ``physics_init: explicit`` the untrained network passes F through its decoder:
    its rollout is close to explicit Euler's (here on heat, whose explicit step is stable)
    and its residual far below that of the random start."""
    mild = {**periodic_heat_spec, "parameters": {"k": 0.005}}  # dt * rho = 0.5: stable
    explicit = make_trainer(mild, {**tiny_model, "physics_input": True, "physics_init": "explicit", "physics_predictor": "euler"}, substeps=1)
    random = make_trainer(mild, {**tiny_model, "physics_input": True, "physics_init": "random"}, substeps=1)
    assert explicit.explicit_step_gain() == 1.0
    with torch.no_grad():
        frames = explicit.rollout()[:, 0].double()
    # sin(2 pi x) sin(2 pi y) is an eigenfunction of the (spectral) Laplacian: -8 pi^2.
    factor = 1 - explicit.dt_network * 0.005 * 8 * math.pi**2
    u0 = explicit.u0[0, 0].double()
    euler = torch.stack([u0 * factor**n for n in range(explicit.n_network_steps + 1)])
    assert torch.allclose(frames, euler, rtol=0, atol=1e-5)
    assert current_loss(explicit) < 0.1 * current_loss(random)


def test_heun_predictor_starts_as_heuns_method(periodic_heat_spec, tiny_model):
    """With ``physics_predictor: heun`` the untrained explicit network takes Heun's steps,
    u * (1 + z + z^2 / 2) per step on an eigenmode (z = dt * lambda), a second-order start
    whose residual is far below explicit Euler's."""
    mild = {**periodic_heat_spec, "parameters": {"k": 0.005}}
    heun = make_trainer(mild, {**tiny_model, "physics_predictor": "heun"}, substeps=1)
    euler = make_trainer(mild, {**tiny_model, "physics_predictor": "euler"}, substeps=1)
    with torch.no_grad():
        frames = heun.rollout()[:, 0].double()
    z = -heun.dt_network * 0.005 * 8 * math.pi**2
    u0 = heun.u0[0, 0].double()
    expected = torch.stack([u0 * (1 + z + z**2 / 2) ** n for n in range(heun.n_network_steps + 1)])
    assert torch.allclose(frames, expected, rtol=0, atol=1e-5)
    assert current_loss(heun) < 0.05 * current_loss(euler)


def test_explicit_physics_init_damps_an_unstable_explicit_step(periodic_heat_spec, tiny_model):
    """Where a full explicit sub-step would be unstable (dt * rho per sub-step above
    ``STIFF_STEP``) the gain on F shrinks so that gain * dt * rho stays below it, and the
    untrained rollout stays bounded."""
    from phycrnet.training.trainer import STIFF_STEP

    stiff = {**periodic_heat_spec, "equations": {"u": "0.5*laplace(u)"}}
    model = {**tiny_model, "physics_input": True, "physics_init": "explicit", "implicit_diffusion": False, "predictor_steps": 1}
    trainer = make_trainer(stiff, model, substeps=2)
    per_step = trainer.stiffness / trainer.substeps
    assert per_step > STIFF_STEP and trainer.explicit_step_gain() * per_step < STIFF_STEP
    with torch.no_grad():
        assert float(trainer.rollout().abs().max()) < 2.0


def test_predictor_steps_start_the_network_as_that_many_heun_steps(periodic_heat_spec, tiny_model):
    """``predictor_steps: 3`` feeds the mean direction of three Heun steps of dt / 3: on an
    eigenmode the untrained network multiplies u by (1 + z + z^2 / 2)^3 per network step
    (z = dt / 3 * lambda), not by one Heun step's factor."""
    mild = {**periodic_heat_spec, "parameters": {"k": 0.02}}
    trainer = make_trainer(mild, {**tiny_model, "physics_input": True, "predictor_steps": 3}, substeps=1)
    assert trainer.predictor_steps == 3 and trainer.input_gain == 1.0
    with torch.no_grad():
        frames = trainer.rollout()[:, 0].double()
    z = -trainer.dt_network / 3 * 0.02 * 8 * math.pi**2
    u0 = trainer.u0[0, 0].double()
    expected = torch.stack([u0 * (1 + z + z**2 / 2) ** (3 * n) for n in range(trainer.n_network_steps + 1)])
    one_step = torch.stack([u0 * (1 + 3 * z + (3 * z) ** 2 / 2) ** n for n in range(trainer.n_network_steps + 1)])
    assert torch.allclose(frames, expected, rtol=0, atol=1e-5)
    assert float((frames - one_step).abs().max()) > 1e-4  # ten times the tolerance above


def test_automatic_predictor_steps_follow_a_classical_solver_on_a_bounded_grid(mixed_bc_spec, tiny_model):
    """Where a network step is beyond the explicit limit (dt * rho = 24 over eight sub-steps:
    3 per step), ``predictor_steps: auto`` takes two Heun steps per network step instead of
    damping one, and the untrained network is then exactly Heun's method with dt / 16 and
    the boundary values imposed after every step (here written out by hand, on a nonlinear
    problem with Dirichlet, Neumann and Robin sides)."""
    from phycrnet.training.trainer import STIFF_STEP

    spec = {**mixed_bc_spec, "parameters": {"k": 0.12}, "equations": {"u": "k*laplace(u) - u**2"}, "initial": {"u": "x**2 + y**2 + 0.3*sin(3*x)*cos(2*y)"}}
    trainer = make_trainer(spec, tiny_model)
    assert trainer.model.config.physics_input is True and not trainer.implicit_diffusion
    assert trainer.substeps == 8 and trainer.stiffness / 8 > STIFF_STEP
    assert trainer.predictor_steps == 2 and trainer.explicit_step_gain() == 1.0
    with torch.no_grad():
        frames = trainer.rollout()[:, 0].double()
    physics, parameters = trainer.physics, trainer.problem.parameter_values()
    assert physics.hard

    def at(t):
        return torch.full((1,), t, dtype=trainer.dtype)

    u = physics.enforce(trainer.u0, at(0.0), parameters)
    h, t, expected = trainer.dt_network / 2, 0.0, [u]
    for _ in range(trainer.n_network_steps):
        for _ in range(2):
            first = physics.rhs(u, at(t), parameters)
            stage = physics.enforce(u + h * first, at(t + h), parameters)
            u = physics.enforce(u + 0.5 * h * (first + physics.rhs(stage, at(t + h), parameters)), at(t + h), parameters)
            t += h
        expected.append(u)
    expected = torch.cat(expected)[:, 0].double()
    assert float((frames - expected).abs().max()) < 1e-4 * float(expected.abs().max())
    single = make_trainer(spec, {**tiny_model, "predictor_steps": 1})
    assert single.explicit_step_gain() < 1.0  # one step per network step would be damped


def test_stiff_periodic_diffusion_gets_the_implicit_physics_input(periodic_heat_spec, tiny_model):
    """Far beyond the explicit limit (dt * rho = 500 here) a periodic problem with constant
    diffusion keeps its physics input, with diffusion treated implicitly: one sub-step is
    stable (dt * rho(P J) <= 1), and the explicitly initialised network's untrained rollout
    follows the IMEX solution of this eigenmode, Heun's average of the two IMEX Euler
    stages (p = 1 / (1 + dt k 8 pi^2) per stage, so u0 * ((1 + p^2) / 2)^n). The IMEX
    splitting is only first order, so it takes the most automatic sub-steps."""
    from phycrnet.training.trainer import MAX_AUTO_SUBSTEPS, PHYSICS_INPUT_LIMIT, STIFF_STEP

    stiff = {**periodic_heat_spec, "parameters": {"k": 5.0}}
    trainer = make_trainer(stiff, {**tiny_model, "physics_init": "explicit"})
    assert trainer.stiffness / MAX_AUTO_SUBSTEPS > PHYSICS_INPUT_LIMIT
    assert trainer.implicit_diffusion and trainer.model.config.physics_input is True
    assert trainer.substeps == MAX_AUTO_SUBSTEPS and trainer.step_stiffness(1) <= min(1.0, STIFF_STEP)
    assert trainer.explicit_step_gain() == 1.0
    with torch.no_grad():
        frames = trainer.rollout()[:, 0].double()
    u0 = trainer.u0[0, 0].double()
    p = 1 / (1 + trainer.dt_network * 5.0 * 8 * math.pi**2)
    imex = torch.stack([u0 * ((1 + p**2) / 2) ** n for n in range(trainer.n_network_steps + 1)])
    assert float((frames - imex).norm(dim=(1, 2)).max()) < 0.05 * float(u0.norm())
    off = make_trainer(stiff, {**tiny_model, "implicit_diffusion": False})
    assert not off.implicit_diffusion and off.model.config.physics_input is False


def test_implicit_diffusion_stays_off_where_explicit_sub_steps_suffice(periodic_heat_spec, mixed_bc_spec, tiny_model):
    """``auto`` keeps the explicit input on mild periodic problems and, on bounded grids,
    while ``MAX_EXPLICIT_SUBSTEPS`` sub-steps of ``MAX_PREDICTOR_STEPS`` predictor steps
    each keep the explicit predictor within its limit (here dt * rho = 24: eight sub-steps
    of two predictor steps, gain 1); ``true`` forces it where it applies."""
    from phycrnet.training.trainer import MAX_EXPLICIT_SUBSTEPS

    mild = {**periodic_heat_spec, "parameters": {"k": 0.005}}  # dt * rho = 1.3
    assert not make_trainer(mild, tiny_model).implicit_diffusion
    moderate = make_trainer({**mixed_bc_spec, "parameters": {"k": 0.12}}, tiny_model)
    assert 16.0 < moderate.stiffness < 32.0
    assert not moderate.implicit_diffusion and moderate.substeps == MAX_EXPLICIT_SUBSTEPS
    assert moderate.predictor_steps == 2 and moderate.explicit_step_gain() == 1.0
    forced = make_trainer(mild, {**tiny_model, "implicit_diffusion": True})
    assert forced.implicit_diffusion and forced.input_filter is not None


def test_stiff_diffusion_on_a_bounded_grid_gets_the_implicit_physics_input(mixed_bc_spec, tiny_model):
    """Dirichlet, Neumann and Robin sides far beyond the explicit limit (dt * rho = 1e3):
    the physics input stays on with diffusion implicit. The IMEX step's dt * rho falls to
    about 2.4 (the residual's boundary closures differ from the filter's 3-point ones), so
    the explicit gain is only slightly damped, and the untrained rollout stays bounded."""
    stiff = {**mixed_bc_spec, "parameters": {"k": 5.0}}
    trainer = make_trainer(stiff, {**tiny_model, "physics_init": "explicit"})
    assert trainer.stiffness > 500
    assert trainer.implicit_diffusion and trainer.model.config.physics_input is True
    assert trainer.substeps == 4 and trainer.step_stiffness(trainer.substeps) < 2.5
    assert trainer.explicit_step_gain() > 0.7
    with torch.no_grad():
        frames = trainer.rollout()[:, 0].double()
    # u = x^2 + y^2 + 4 k t stays below 2 + 4 * 5 * 0.2 = 6 on the unit square until t = 0.2
    assert torch.isfinite(frames).all() and float(frames.abs().max()) < 12.0
    off = make_trainer(stiff, {**tiny_model, "implicit_diffusion": False})
    assert not off.implicit_diffusion and off.model.config.physics_input is False


def test_divergence_is_measured_against_the_standstill_loss_too(periodic_heat_spec, tiny_model):
    """A loss 1e4 times the best seen is no blow-up while it is far below the loss of a
    solution that never moves (a network started as a good predictor begins near zero);
    far above both it is one."""
    trainer = make_trainer(periodic_heat_spec, tiny_model, iterations=100, max_recoveries=5)
    assert trainer.standstill_loss > 0
    run_steps(trainer, 21)
    trainer.best_loss = 1e-9 * trainer.standstill_loss
    terms = {"pde_u": 1e-3 * trainer.standstill_loss}
    trainer._after_step(terms, terms["pde_u"])
    assert trainer.recoveries == 0
    terms = {"pde_u": 1e5 * trainer.standstill_loss}
    trainer._after_step(terms, terms["pde_u"])
    assert trainer.recoveries == 1
