"""Schedules, progress and curriculum stages (phycrnet.training.schedule)."""

from __future__ import annotations

import pytest

from phycrnet.options import TrainingOptions
from phycrnet.training.schedule import Budget, schedule_factor

OPTIONS = TrainingOptions(lr=1e-2, lr_decay=0.5, decay_every=0.25, final_lr_ratio=0.01, step_size=10)


def test_learning_rate_schedules():
    def factor(name: str, q: float, iteration: int = 0) -> float:
        return schedule_factor(name, q, iteration=iteration, options=OPTIONS)

    assert factor("step", 0.0) == 1.0 and factor("step", 0.3) == 0.5 and factor("step", 0.75) == 0.125
    assert factor("cosine", 0.0) == pytest.approx(1.0) and factor("cosine", 1.0) == pytest.approx(0.01)
    assert 0.01 < factor("cosine", 0.5) < 1.0
    assert factor("exponential", 1.0) == pytest.approx(0.01) and factor("exponential", 0.5) == pytest.approx(0.1)
    assert factor("constant", 0.9) == 1.0
    # steplr: torch's StepLR, in iterations whatever the progress
    assert factor("steplr", 0.9, iteration=9) == 1.0 and factor("steplr", 0.0, iteration=25) == 0.25


def test_progress_is_the_larger_of_iterations_and_seconds():
    budget = Budget(cap=100, seconds=10.0, adam_share=0.8)
    assert budget.progress(0, 0.0) == 0.0
    assert budget.progress(50, 1.0) == pytest.approx(0.5)
    assert budget.progress(10, 6.0) == pytest.approx(0.6)
    assert budget.adam_done(79, 0.0) is None and budget.adam_done(80, 0.0) == "iterations"
    assert budget.adam_done(1, 8.0) == "time budget" and budget.done(1, 10.0) == "time budget"
    assert Budget.of(TrainingOptions()).cap == 20_000  # neither cap nor budget: the paper's count
    assert Budget.of(TrainingOptions(time_budget=5.0)).cap is None


def test_curriculum_stages_split_the_adam_phase_and_restart_the_schedule():
    budget = Budget(cap=100, seconds=None, adam_share=0.6, stages=3)
    assert [budget.stage(p) for p in (0.0, 0.19, 0.21, 0.45, 0.7, 1.0)] == [0, 0, 1, 2, 2, 2]
    assert budget.schedule_progress(0.0, "run") == 0.0
    assert budget.schedule_progress(0.1, "run") == pytest.approx(0.5)
    assert budget.schedule_progress(0.2, "run") == pytest.approx(0.0, abs=1e-12)
    plain = Budget(cap=100, seconds=None, adam_share=0.5)
    assert plain.schedule_progress(0.25, "run") == 0.25 and plain.schedule_progress(0.25, "adam") == pytest.approx(0.5)
