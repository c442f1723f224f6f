"""Independent members trained as one batch (phycrnet.methods.batch): each member follows
the steps it would take alone, groups follow the resolved structure, and what cannot be
batched is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from phycrnet.errors import OptionsError
from phycrnet.methods.batch import solve_batch, structure_key
from phycrnet.methods.solve import prepare, solve
from phycrnet.spec.problem import load_spec

pytestmark = pytest.mark.usefixtures("single_thread")


def members(spec: dict, values: list[tuple[float, int]]) -> list:
    base = load_spec(spec)
    return [base.with_changes(parameters={"k": k}, training={"seed": seed}) for k, seed in values]


@pytest.mark.parametrize("preset", ["hybrid", "crn"])
def test_each_member_trains_as_it_would_alone(tmp_path, periodic_heat_spec, tiny_model, preset):
    """Three members (coefficients and seeds differ) trained as one batch end where each
    ends trained alone (float64, Adam): the weights are separate networks, and Adam's
    update is elementwise."""
    problems = members(periodic_heat_spec, [(0.002, 0), (0.003, 1), (0.004, 2)])
    options = {"iterations": 12, "lbfgs_fraction": 0.0, "dtype": "float64", "threads": 1, "model": tiny_model, "preset": preset}
    outs = [tmp_path / f"m{i}.nc" for i in range(3)]
    batched = solve_batch(problems, outs, **options)
    alone = [solve(p, **options) for p in problems]
    assert all(out.exists() for out in outs)
    for b, a in zip(batched, alone):
        assert b.attrs["batch"] == 3 and int(b.attrs["iterations"]) == 12
        np.testing.assert_allclose(b["u"].values, a["u"].values, rtol=0, atol=1e-7 * np.abs(a["u"].values).max())
    # different members, different solutions
    assert np.abs(batched[0]["u"].values - batched[2]["u"].values).max() > 1e-3


def test_members_share_the_most_steps_and_split_where_choices_differ(periodic_heat_spec, tiny_model):
    """A stiffer coefficient needs more sub-steps: the batch takes them for every member.
    Far stiffer, diffusion turns implicit in the physics input: that member trains apart."""
    problems = members(periodic_heat_spec, [(0.002, 0), (0.01, 1), (5.0, 0)])
    runs = [prepare(p, model=tiny_model, threads=1) for p in problems]
    assert runs[0].resolved.substeps < runs[1].resolved.substeps
    keys = [structure_key(run) for run in runs]
    assert keys[0] == keys[1] != keys[2]
    solutions = solve_batch(problems, [None] * 3, iterations=3, threads=1, model=tiny_model)
    assert [int(s.attrs["batch"]) for s in solutions] == [2, 2, 1]
    assert solutions[0].attrs["substeps"] == solutions[1].attrs["substeps"] == runs[1].resolved.substeps


def test_a_diverging_member_does_not_stop_the_others(periodic_heat_spec, tiny_model):
    """A coefficient of 1e30 overflows one member's loss; it is reported as ``None`` and
    the others train to the end, through the L-BFGS finish."""
    problems = members(periodic_heat_spec, [(0.002, 0), (1e30, 1), (0.002, 2)])
    options = {"iterations": 10, "threads": 1, "model": {**tiny_model, "physics_input": False}, "lbfgs_fraction": 0.3}
    solutions = solve_batch(problems, [None] * 3, **options)
    assert solutions[1] is None
    assert solutions[0] is not None and solutions[2] is not None
    assert np.isfinite(solutions[0]["u"].values).all()


@pytest.mark.parametrize(
    "options, spec_change, message",
    [
        ({"weighting": "relobralo"}, {}, "relobralo"),
        ({"memory_budget_gb": 1.0}, {}, "memory_budget_gb"),
        ({}, {"parameters": {"k": {"init": 0.02, "learn": True}}}, "learned coefficients"),
    ],
)
def test_what_cannot_be_batched_is_refused(periodic_heat_spec, tiny_model, options, spec_change, message):
    problems = [load_spec({**periodic_heat_spec, **spec_change})] * 2
    with pytest.raises(OptionsError, match=message):
        solve_batch(problems, [None, None], iterations=2, threads=1, model=tiny_model, **options)


def test_native_convolutions_are_scoped_to_the_batch():
    """The batch trains with oneDNN off (its grouped convolutions are slower there) and
    leaves the setting as it found it, also when training raises."""
    import torch

    from phycrnet.methods.batch import _native_convolutions

    before = torch._C._get_mkldnn_enabled()
    with pytest.raises(RuntimeError):
        with _native_convolutions():
            assert not torch._C._get_mkldnn_enabled()
            raise RuntimeError("training failed")
    assert torch._C._get_mkldnn_enabled() == before
