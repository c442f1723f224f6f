"""The training engine (phycrnet.training.engine) on PhyCRNet tasks: the L-BFGS finish,
checkpoints and resume in every phase, the log, the divergence policy and
learnable coefficients. The PINN runs on the same engine (tests/methods/test_pinn.py); each
loss weighting trains through it in tests/losses/test_weighting.py."""

from __future__ import annotations

import csv
import math
import time

import numpy as np
import pytest
import torch

import phycrnet.training.log
from phycrnet.errors import DataError, DivergenceError, OptionsError

ALL_SCHEMES = ("adaptive", "adaptive_detached", "fixed", "uncertainty", "lr_annealing", "relobralo", "softadapt")


def transform_losses(run, transform) -> None:
    """Make the task's losses return ``transform(terms)`` of the terms it computes."""
    original = run.task.losses
    run.task.losses = lambda window, phase: transform(original(window, phase))


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# --------------------------------------------------------------------------- the L-BFGS finish


@pytest.mark.parametrize("cap, fraction", [(40, 0.5), (7, 0.3), (3, 0.3)])
def test_lbfgs_evaluations_count_as_iterations_within_the_cap(periodic_heat_spec, tiny_model, crn_run, cap, fraction):
    run = crn_run(periodic_heat_spec, tiny_model, iterations=cap, lbfgs_fraction=fraction)
    adam_cap = round(cap * (1 - fraction))
    calls = []
    losses = run.task.losses

    def counted(window, phase):
        calls.append((run.engine.iteration, phase))
        return losses(window, phase)

    run.task.losses = counted
    result = run.engine.train()
    adam = sum(1 for _, phase in calls if phase == "adam")
    # Two evaluations are not iterations: scoring the state the last L-BFGS step ended in,
    # and evaluating the returned (best) state.
    lbfgs = len(calls) - adam - 2
    assert adam == adam_cap
    # Every L-BFGS evaluation (line-search trials too) is an iteration, and the cap holds
    # exactly even when it falls inside a line search.
    assert lbfgs == cap - adam_cap
    assert result.iterations == cap


def test_slow_lbfgs_evaluations_stop_at_the_time_budget(periodic_heat_spec, tiny_model, crn_run):
    """An outer L-BFGS step (up to 25 evaluations) does not run on past the time budget:
    each L-BFGS evaluation here takes 0.25 s, five times longer than the Adam iterations
    the first estimate rests on, and the run still ends within an evaluation or two of 2 s."""
    run = crn_run(periodic_heat_spec, tiny_model, time_budget=2.0, lbfgs_fraction=0.75)

    def slow_in_lbfgs(terms):
        if run.engine.phase == "lbfgs":
            time.sleep(0.25)
        return terms

    transform_losses(run, slow_in_lbfgs)
    result, frames = run.train()
    assert run.engine.seconds < 2.0 + 0.6
    assert np.isfinite(frames).all() and math.isfinite(result.best_loss)


def test_lbfgs_restarts_from_the_best_state_after_a_non_finite_loss(periodic_heat_spec, tiny_model, crn_run):
    """A line search that runs into a blown-up rollout does not end the L-BFGS phase: it
    goes back to the best state with half the step length and carries on to the cap."""
    run = crn_run(periodic_heat_spec, tiny_model, iterations=80, lbfgs_fraction=0.5)
    evaluations = []

    def nan_at_the_start_of_lbfgs(terms):
        if run.engine.phase == "lbfgs":
            evaluations.append(run.engine.iteration)
            if len(evaluations) == 1:
                terms = {k: v * float("nan") for k, v in terms.items()}
        return terms

    transform_losses(run, nan_at_the_start_of_lbfgs)
    result, frames = run.train()
    assert result.iterations == 80  # the phase went on after the non-finite loss
    # Every L-BFGS evaluation, then scoring the last step's state and the returned state.
    assert len(evaluations) == 40 + 2
    assert np.isfinite(frames).all() and math.isfinite(result.best_loss)
    # The restart halves the step length, so it does not retrace the path into the blow-up.
    assert run.engine.lbfgs.optimizer.param_groups[0]["lr"] == 0.5


def test_a_stalled_lbfgs_step_clears_the_curvature_history(periodic_heat_spec, tiny_model, crn_run):
    """An outer step that cannot lower the loss (a loss that does not depend on the
    weights) counts as a stall and starts a fresh L-BFGS; the phase still runs to the cap."""
    run = crn_run(periodic_heat_spec, tiny_model, iterations=30, lbfgs_fraction=0.5)
    steps = []

    def frozen_in_lbfgs(terms):
        if run.engine.phase == "lbfgs":
            steps.append(run.engine.iteration)
            terms = {k: 0.0 * v + 1.0 for k, v in terms.items()}
        return terms

    transform_losses(run, frozen_in_lbfgs)
    result = run.engine.train()
    assert result.iterations == 30
    outer_steps = len(set(steps[:-2]))  # each outer step starts at a new iteration count
    assert result.lbfgs_stalls == outer_steps - 1 > 0


def test_lbfgs_makes_progress_on_a_tiny_loss(periodic_heat_spec, tiny_model, crn_run):
    """The L-BFGS finish works on the loss relative to its start: a loss of order 1e-12
    (torch's LBFGS tests absolute thresholds such as a gradient of 1e-7) still falls."""
    run = crn_run(periodic_heat_spec, tiny_model, iterations=60, lbfgs_fraction=0.5)
    in_lbfgs = []

    def tiny(terms):
        terms = {k: 1e-12 * v for k, v in terms.items()}
        if run.engine.phase == "lbfgs":
            in_lbfgs.append(float(sum(terms.values()).detach()))
        return terms

    transform_losses(run, tiny)
    run.engine.train()
    assert min(in_lbfgs) < 0.5 * in_lbfgs[0]


# --------------------------------------------------------------------------- weighting






# --------------------------------------------------------------------------- checkpoints and resume


@pytest.mark.parametrize("weighting", ["adaptive", "relobralo", "uncertainty", "softadapt"])
def test_resumed_run_continues_exactly(tmp_path, mixed_bc_spec, tiny_model, crn_run, weighting):
    """A fresh engine loaded from the checkpoint at iteration K repeats K+1, K+2, K+3. The
    step schedule over a 10-iteration cap decays the learning rate inside this window, so
    the schedule, the optimiser moments and the weighting state must all be restored."""
    options = {"iterations": 10, "lr": 5e-3, "schedule": "step", "weighting": weighting}
    checkpoint = tmp_path / "run.ckpt.pt"
    first = crn_run(mixed_bc_spec, tiny_model, checkpoint_path=checkpoint, **options)
    first.steps(4)
    first.engine.save_checkpoint()
    expected = first.steps(3)
    second = crn_run(mixed_bc_spec, tiny_model, checkpoint_path=checkpoint, **options)
    second.engine.load_checkpoint(checkpoint)
    assert second.engine.iteration == 4
    got = second.steps(3)
    for (terms_a, total_a), (terms_b, total_b) in zip(expected, got):
        torch.testing.assert_close(total_b, total_a, rtol=1e-6, atol=0)
        for key in terms_a:
            torch.testing.assert_close(terms_b[key], terms_a[key], rtol=1e-6, atol=0)
    assert second.engine.current_lr == pytest.approx(first.engine.current_lr, rel=1e-12)
    assert second.engine.weighting.weights == pytest.approx(first.engine.weighting.weights, rel=1e-6)
    for a, b in zip(first.task.model.parameters(), second.task.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_checkpoints_are_written_inside_the_lbfgs_finish_and_resume_there(tmp_path, periodic_heat_spec, tiny_model, crn_run):
    """A run whose L-BFGS finish outlasts ``checkpoint_every`` writes checkpoints during it;
    a run resumed from one continues inside the finish, to the cap, with a finite loss."""
    checkpoint = tmp_path / "run.ckpt.pt"
    options = {"iterations": 60, "lbfgs_fraction": 0.8, "checkpoint_every": 1e-9}
    run = crn_run(periodic_heat_spec, tiny_model, checkpoint_path=checkpoint, **options)
    written = []
    save = run.engine.save_checkpoint

    def recording():
        save()
        written.append((run.engine.phase, run.engine.iteration))

    run.engine.save_checkpoint = recording
    run.engine.train()
    inside = [iteration for phase, iteration in written if phase == "lbfgs"]
    assert len(inside) >= 3 and min(inside) < 60
    state = torch.load(checkpoint, weights_only=False)
    assert state["counters"]["phase"] == "lbfgs" and state["lbfgs"] is not None
    # Resume from a checkpoint written mid-finish.
    run = crn_run(periodic_heat_spec, tiny_model, checkpoint_path=checkpoint, iterations=80, lbfgs_fraction=0.8, checkpoint_every=30.0)
    run.engine.load_checkpoint(checkpoint)
    assert run.engine.phase == "lbfgs" and run.engine.lbfgs is not None
    result = run.engine.train()
    assert result.iterations == 80 and math.isfinite(sum(result.loss_terms.values()))


def test_checkpoint_is_written_without_leftover_files(tmp_path, periodic_heat_spec, tiny_model, crn_run):
    checkpoint = tmp_path / "run.ckpt.pt"
    run = crn_run(periodic_heat_spec, tiny_model, checkpoint_path=checkpoint)
    run.steps(2)
    run.engine.save_checkpoint()
    run.steps(1)
    run.engine.save_checkpoint()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.ckpt.pt"]
    assert torch.load(checkpoint, weights_only=False)["counters"]["iteration"] == 3


def test_failed_checkpoint_write_keeps_the_old_checkpoint_and_no_temporary(tmp_path, periodic_heat_spec, tiny_model, crn_run, monkeypatch):
    checkpoint = tmp_path / "run.ckpt.pt"
    run = crn_run(periodic_heat_spec, tiny_model, checkpoint_path=checkpoint)
    run.steps(1)
    run.engine.save_checkpoint()
    before = checkpoint.read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        with open(f, "wb") as handle:
            handle.write(b"partial")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", failing_save)
    run.steps(1)
    with pytest.raises(OSError):
        run.engine.save_checkpoint()
    assert checkpoint.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "run.ckpt.pt") == []


def test_checkpoint_of_another_spec_is_a_data_error(tmp_path, mixed_bc_spec, tiny_model, crn_run):
    checkpoint = tmp_path / "run.ckpt.pt"
    run = crn_run(mixed_bc_spec, tiny_model, checkpoint_path=checkpoint)
    run.steps(1)
    run.engine.save_checkpoint()
    other = dict(mixed_bc_spec, parameters={"k": 0.06})
    with pytest.raises(DataError, match="different spec"):
        crn_run(other, tiny_model).engine.load_checkpoint(checkpoint)


def test_missing_or_corrupt_checkpoint_is_a_data_error(tmp_path, periodic_heat_spec, tiny_model, crn_run):
    engine = crn_run(periodic_heat_spec, tiny_model).engine
    with pytest.raises(DataError, match="no checkpoint"):
        engine.load_checkpoint(tmp_path / "absent.ckpt.pt")
    corrupt = tmp_path / "corrupt.ckpt.pt"
    corrupt.write_bytes(b"this is not a checkpoint")
    with pytest.raises(DataError) as info:
        engine.load_checkpoint(corrupt)
    assert "\n" not in str(info.value)


def test_log_is_written_while_training_after_a_few_seconds(tmp_path, periodic_heat_spec, tiny_model, crn_run, monkeypatch):
    """A slow run's rows reach the CSV before the row-count threshold (so it can be followed)."""
    log = tmp_path / "log.csv"
    run = crn_run(periodic_heat_spec, tiny_model, log_path=log, log_every=1)
    run.steps(2)
    assert not log.exists()  # buffered: fewer rows than FLUSH_ROWS, well within the time limit
    monkeypatch.setattr(phycrnet.training.log, "FLUSH_SECONDS", 0.0)
    run.steps(1)
    assert [int(r["iteration"]) for r in read_rows(log)] == [1, 2, 3]


def test_resume_truncates_log_rows_written_after_the_checkpoint(tmp_path, periodic_heat_spec, tiny_model, crn_run):
    log, checkpoint = tmp_path / "log.csv", tmp_path / "run.ckpt.pt"
    first = crn_run(periodic_heat_spec, tiny_model, log_path=log, checkpoint_path=checkpoint, log_every=1)
    first.steps(3)
    first.engine.save_checkpoint()
    first.steps(3)
    first.engine.log.flush()
    second = crn_run(periodic_heat_spec, tiny_model, log_path=log, checkpoint_path=checkpoint, log_every=1)
    second.engine.load_checkpoint(checkpoint)
    second.steps(2)
    second.engine.log.flush()
    assert [int(r["iteration"]) for r in read_rows(log)] == [1, 2, 3, 4, 5]


# --------------------------------------------------------------------------- divergence


def test_exploding_learning_rate_raises_divergence_error(periodic_heat_spec, tiny_model, crn_run):
    run = crn_run(periodic_heat_spec, tiny_model, iterations=60, lr=1e6, schedule="constant")
    with pytest.raises(DivergenceError) as info:
        run.engine.train()
    message = str(info.value)
    assert "\n" not in message and "diverged" in message
    assert int(run.engine.guard.recoveries[0]) == run.engine.options.max_recoveries
    assert info.value.exit_code == 3


def test_non_finite_loss_without_a_good_state_raises_at_once(periodic_heat_spec, tiny_model, crn_run):
    run = crn_run(periodic_heat_spec, tiny_model, iterations=10)
    with torch.no_grad():
        next(run.task.model.parameters()).fill_(float("nan"))
    with pytest.raises(DivergenceError):
        run.engine.train()
    assert run.engine.iteration == 1


def test_recovery_restores_the_state_that_had_the_best_loss(periodic_heat_spec, tiny_model, crn_run):
    """One Adam step with a huge learning rate ruins the parameters; the next iteration
    sees the exploded loss and recovers to the parameters whose loss was the best."""
    run = crn_run(periodic_heat_spec, tiny_model, iterations=100, lr=5e-3, schedule="constant", max_recoveries=5)
    run.steps(22)
    run.engine.lr_scale = 1e7
    run.steps(2)
    guard = run.engine.guard
    assert int(guard.recoveries[0]) == 1 and math.isfinite(float(guard.best_loss[0]))
    assert run.current_loss() == pytest.approx(float(guard.best_loss[0]), rel=1e-5)


def test_recovery_restores_adams_moments_of_the_best_state(periodic_heat_spec, tiny_model, crn_run):
    """The ruinous step's huge gradient must not stay in Adam's moments, nor may the moments
    be wiped (a wiped Adam moves every weight by about lr at once)."""
    run = crn_run(periodic_heat_spec, tiny_model, iterations=100, lr=5e-3, schedule="constant", max_recoveries=5)
    run.steps(22)
    run.engine.lr_scale = 1e7
    run.steps(2)
    assert int(run.engine.guard.recoveries[0]) == 1
    saved = run.engine.guard.best_state["optimizer"]["state"]
    current = run.engine.optimizer.state_dict()["state"]
    assert saved and saved.keys() == current.keys()
    for key in saved:
        assert int(current[key]["step"]) == int(saved[key]["step"]) > 0
        assert torch.equal(current[key]["exp_avg_sq"], saved[key]["exp_avg_sq"])


def test_divergence_is_measured_against_the_standstill_loss_too(periodic_heat_spec, tiny_model, crn_run):
    """A loss 1e4 times the best seen is no blow-up while it is far below the loss of a
    solution that never moves (a network started as a good predictor begins near zero);
    far above both it is one."""
    run = crn_run(periodic_heat_spec, tiny_model, iterations=100, max_recoveries=5)
    guard = run.engine.guard
    standstill = float(guard.standstill[0])
    assert standstill > 0
    guard.best_loss = torch.tensor([1e-9 * standstill], dtype=torch.float64)
    assert not bool(guard.blown_up(torch.tensor([1e-3 * standstill], dtype=torch.float64), 21).any())
    assert bool(guard.blown_up(torch.tensor([1e5 * standstill], dtype=torch.float64), 21).all())


def test_result_reports_the_losses_of_the_best_state(periodic_heat_spec, tiny_model, crn_run):
    """The returned frames come from the restored best state; their losses are best_loss."""
    result = crn_run(periodic_heat_spec, tiny_model, iterations=5, lr=5e-3, schedule="constant").engine.train()
    assert sum(result.loss_terms.values()) == pytest.approx(result.best_loss, rel=1e-5)


# --------------------------------------------------------------------------- learnable coefficients


def test_learnable_coefficient_waits_for_the_warmup_and_is_logged_through_lbfgs(tmp_path, periodic_heat_spec, tiny_model, crn_run):
    spec = dict(periodic_heat_spec, parameters={"k": {"init": 0.05, "learn": True}})
    log = tmp_path / "log.csv"
    run = crn_run(spec, tiny_model, iterations=20, lr=1e-2, coefficient_warmup=0.25, lbfgs_fraction=0.25, log_path=log, log_every=1)
    history = []
    for _ in range(15):  # the Adam phase
        run.steps(1)
        history.append(run.task.coefficients.learned()["k"])
    assert history[:5] == [pytest.approx(0.05, rel=1e-7)] * 5  # frozen for 25 % of the run
    assert history[-1] != pytest.approx(0.05, rel=1e-6)
    run.engine.train()  # the L-BFGS finish
    rows = read_rows(log)
    # The L-BFGS rows carry the coefficient as it moves, not the value Adam left.
    assert float(rows[-1]["param_k"]) == pytest.approx(run.task.coefficients.learned()["k"], rel=1e-6)


def train_with_k_pulled_to_0_08(tmp_path, crn_run, spec, model, **options):
    """Train 120 iterations (90 % L-BFGS) with k learnable from 0.05 and the logged
    ``(iteration, k)`` rows. The physics alone holds for any k: a term that pulls k to 0.08
    stands in for data."""
    spec = dict(spec, parameters={"k": {"init": 0.05, "learn": True}})
    log = tmp_path / "log.csv"
    pull = lambda frames, t, parameters: {"pull": 100 * (parameters["k"] - 0.08) ** 2}  # noqa: E731
    run = crn_run(spec, model, iterations=120, lr=1e-2, lbfgs_fraction=0.9, log_path=log, log_every=1, extra_losses=pull, **options)
    run.engine.train()
    return run, [(int(r["iteration"]), float(r["param_k"])) for r in read_rows(log)]


def test_coefficient_warmup_holds_in_the_lbfgs_phase_too_and_then_releases(tmp_path, periodic_heat_spec, tiny_model, crn_run):
    """A warm-up longer than the Adam phase keeps the coefficient through the first L-BFGS
    steps; once it is over, L-BFGS moves the coefficient as well (without the physics
    input, so that the network alone follows k)."""
    model = {**tiny_model, "physics_input": False}
    run, rows = train_with_k_pulled_to_0_08(tmp_path, crn_run, periodic_heat_spec, model, coefficient_warmup=0.5, identification_share=1.0)
    held = [k for iteration, k in rows if iteration < 0.5 * 120 - 20]  # an outer step is at most 20 evaluations
    assert len(held) > 2 and all(k == pytest.approx(0.05, rel=1e-7) for k in held)
    assert run.task.coefficients.learned()["k"] == pytest.approx(0.08, rel=1e-2)


def test_coefficients_are_fixed_after_the_identification_share(tmp_path, periodic_heat_spec, tiny_model, crn_run):
    """Past ``identification_share`` the coefficient keeps the value it had, through L-BFGS."""
    _, rows = train_with_k_pulled_to_0_08(tmp_path, crn_run, periodic_heat_spec, tiny_model, identification_share=0.3)
    late = [k for iteration, k in rows if iteration > 0.3 * 120 + 20]  # an outer step is at most 20 evaluations
    assert len(late) > 2 and max(late) == pytest.approx(min(late), rel=1e-7)
    assert late[0] != pytest.approx(0.05, rel=1e-4)  # it did move before


def test_coefficient_warmup_must_end_before_the_identification(periodic_heat_spec, tiny_model, crn_run):
    with pytest.raises(OptionsError, match="coefficient_warmup"):
        crn_run(periodic_heat_spec, tiny_model, coefficient_warmup=0.8, identification_share=0.75)


def test_learnable_coefficient_is_trained_and_bounded(periodic_heat_spec, tiny_model, crn_run):
    spec = dict(periodic_heat_spec, parameters={"k": {"init": 0.05, "learn": True, "bounds": [0.01, 0.1]}})
    run = crn_run(spec, tiny_model, iterations=5, lr=1e-2)
    assert run.task.coefficients.learned()["k"] == pytest.approx(0.05, rel=1e-5)
    result = run.engine.train()
    assert set(result.parameters) == {"k"}
    assert 0.01 < result.parameters["k"] < 0.1 and result.parameters["k"] != pytest.approx(0.05, rel=1e-7)


def test_a_curriculum_never_returns_a_state_worse_than_its_start(periodic_heat_spec, tiny_model, crn_run):
    """The starting state is scored on the whole window before the curriculum's short
    windows train: an Adam step far too large for the network that starts as a classical
    step ruins the long rollout, and the run returns the start instead of the ruin."""
    options = {"iterations": 4, "substeps": 1, "curriculum": [1], "lbfgs_fraction": 0.0, "lr": 0.5, "schedule": "constant"}
    run = crn_run(periodic_heat_spec, tiny_model, **options)
    start = run.current_loss()
    result, frames = run.train()
    assert run.current_loss() == pytest.approx(start, rel=1e-6)
    assert result.best_loss == pytest.approx(start, rel=1e-6)
    # Without the start as a candidate the same steps end far worse.
    ruined = crn_run(periodic_heat_spec, tiny_model, **options)
    ruined.engine.track_current_state = lambda phase: None
    ruined.train()
    assert ruined.current_loss() > 10 * start


# --------------------------------------------------------------------------- weight averaging


def test_weight_average_is_an_exponential_moving_average():
    from phycrnet.training.averaging import WeightAverage

    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    average = WeightAverage([w], decay=0.75)
    average.update()  # starts at the current weights
    with torch.no_grad():
        w.copy_(torch.tensor([5.0, 6.0]))
    average.update()
    with torch.no_grad():
        w.zero_()
    average.load_into_parameters()
    torch.testing.assert_close(w.detach(), 0.75 * torch.tensor([1.0, 2.0]) + 0.25 * torch.tensor([5.0, 6.0]))


def test_the_weight_average_is_the_result_and_survives_a_resume(tmp_path, periodic_heat_spec, tiny_model, crn_run):
    """With ``weight_average`` the averaged weights (not the last or best iterate) are what
    a run returns; a run resumed from a checkpoint continues the same average."""
    from phycrnet.training.averaging import WeightAverage

    options = {"iterations": 12, "lbfgs_fraction": 0.0, "weight_average": 0.8, "schedule": "constant", "lr": 2e-3}
    run = crn_run(periodic_heat_spec, tiny_model, **options)
    shadow = WeightAverage(list(run.task.model.parameters()), 0.8)
    steps = run.engine._adam_step

    def step_and_follow():
        out = steps()
        shadow.update()
        return out

    run.engine._adam_step = step_and_follow
    run.engine.train()
    assert run.engine.average.steps == 12
    for returned, expected in zip(run.task.model.parameters(), shadow.average):
        torch.testing.assert_close(returned.detach(), expected)
    # Killed after 5 iterations and resumed: the same result.
    checkpoint = tmp_path / "run.ckpt.pt"
    first = crn_run(periodic_heat_spec, tiny_model, checkpoint_path=checkpoint, **options)
    first.steps(5)
    first.engine.save_checkpoint()
    second = crn_run(periodic_heat_spec, tiny_model, checkpoint_path=checkpoint, **options)
    second.engine.load_checkpoint(checkpoint)
    second.engine.train()
    for a, b in zip(run.task.model.parameters(), second.task.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_weight_average_far_worse_than_the_best_is_not_adopted(periodic_heat_spec, tiny_model, crn_run):
    """An average whose loss is not finite (or exceeds the best by the divergence factor)
    leaves the best iterate as the result."""
    run = crn_run(periodic_heat_spec, tiny_model, iterations=6, lbfgs_fraction=0.0, weight_average=0.9)
    losses = run.task.losses

    def average_blows_up(window, phase):
        terms = losses(window, phase)
        if run.engine.iteration == 6 and phase == "adam":  # the scoring of the average after the last step
            terms = {k: v * float("inf") for k, v in terms.items()}
        return terms

    run.task.losses = average_blows_up
    result = run.engine.train()
    assert math.isfinite(result.best_loss)
    averaged = [a.clone() for a in run.engine.average.average]
    assert any(not torch.equal(p.detach(), a) for p, a in zip(run.task.model.parameters(), averaged))
