"""Loss weighting (phycrnet.losses.weighting): each scheme's total and weights on known loss
values, and every scheme training a tiny PhyCRNet run through the engine with finite,
logged weights."""

from __future__ import annotations

import csv
import math

import pytest
import torch

from phycrnet.errors import OptionsError
from phycrnet.losses.weighting import WEIGHTINGS, make_weighting

ALL_SCHEMES = ("adaptive", "adaptive_detached", "fixed", "uncertainty", "lr_annealing", "relobralo", "softadapt")


def read_rows(path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def losses(a: float = 1.0, b: float = 3.0) -> dict[str, torch.Tensor]:
    return {"pde_u": torch.tensor(a, dtype=torch.float64, requires_grad=True), "bc_u_left": torch.tensor(b, dtype=torch.float64, requires_grad=True)}


# --------------------------------------------------------------------------- on known values


@pytest.mark.parametrize("scheme, gradient", [("adaptive", (2 * 1 * 4 - 10) / 16), ("adaptive_detached", 1 / 4)])
def test_adaptive_weights_are_each_terms_share_of_the_total(scheme, gradient):
    """L = sum L_i^2 / sum L_i = (1 + 9) / 4; d L / d L_1 is (2 L_1 S - sum L^2) / S^2 with the
    weights differentiated (the paper's code) and w_1 = L_1 / S with them held constant."""
    terms = losses()
    total = make_weighting(scheme).combine(terms, step=0)
    assert total.item() == pytest.approx(2.5)
    total.backward()
    assert terms["pde_u"].grad.item() == pytest.approx(gradient)


def test_fixed_weights_by_full_name_before_prefix_and_one_otherwise():
    scheme = make_weighting("fixed", weights={"bc": 10.0, "bc_u_top": 3.0})
    assert [scheme.weight_of(n) for n in ("pde_u", "bc_u_left", "bc_u_top", "data_u")] == [1.0, 10.0, 3.0, 1.0]
    assert make_weighting("fixed", weights={"bc": 10.0}).combine(losses(), step=0).item() == pytest.approx(31.0)


def test_uncertainty_weighting_starts_each_log_variance_at_its_terms_scale():
    """s_i starts at ln L_i, so every weighted term starts at 1/2 and the total at
    sum (1 + ln L_i) / 2; there d/ds_i (exp(-s_i) L_i + s_i) / 2 = (1 - exp(-s_i) L_i) / 2 = 0."""
    scheme = make_weighting("uncertainty")
    total = scheme.combine(losses(), step=0)
    assert total.item() == pytest.approx(0.5 * (1 + math.log(1.0)) + 0.5 * (1 + math.log(3.0)))
    assert scheme.weights == pytest.approx({"pde_u": 0.5, "bc_u_left": 0.5 / 3.0})
    total.backward()
    assert [p.grad.item() for p in scheme.parameters()] == pytest.approx([0.0, 0.0], abs=1e-12)
    scheme.zero_grad()
    scheme.combine(losses(1.0, 6.0), step=1).backward()  # the second term doubled: descent raises its s
    assert scheme.log_variances["bc_u_left"].grad.item() == pytest.approx(0.5 * (1 - 6.0 / 3.0))
    assert scheme.log_variances["pde_u"].grad.item() == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- through the engine


@pytest.mark.parametrize(
    "scheme, options",
    [(name, {}) for name in ALL_SCHEMES] + [("lr_annealing", {"every": 2}), ("fixed", {"weights": {"bc": 10.0}})],
    ids=[*ALL_SCHEMES, "lr_annealing-every2", "fixed-weights"],
)
def test_every_weighting_scheme_trains(tmp_path, mixed_bc_spec, tiny_model, crn_run, scheme, options):
    log = tmp_path / "log.csv"
    # Adam only: an L-BFGS step spans several evaluations (iterations) and logs once.
    run = crn_run(mixed_bc_spec, tiny_model, log_path=log, iterations=4, log_every=1, weighting=scheme, weighting_options=options, lbfgs_fraction=0.0)
    result = run.engine.train()
    assert result.iterations == 4
    assert all(math.isfinite(v) for v in result.loss_terms.values())
    weights = run.engine.weighting.weights
    assert set(weights) == set(result.loss_terms)
    assert all(math.isfinite(w) and w > 0 for w in weights.values()), weights
    rows = read_rows(log)
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    for row in rows:
        for name in result.loss_terms:
            assert math.isfinite(float(row[name])) and math.isfinite(float(row[f"w_{name}"]))
        assert math.isfinite(float(row["loss"]))


def test_fixed_weights_by_name_and_prefix(mixed_bc_spec, tiny_model, crn_run):
    run = crn_run(mixed_bc_spec, tiny_model, iterations=1, boundary="soft", weighting="fixed", weighting_options={"weights": {"bc": 10.0, "bc_u_top": 3.0}})
    run.engine.train()
    assert run.engine.weighting.weights == {"pde_u": 1.0, "bc_u_left": 10.0, "bc_u_right": 10.0, "bc_u_bottom": 10.0, "bc_u_top": 3.0}


def test_every_listed_scheme_is_registered():
    assert set(ALL_SCHEMES) <= set(WEIGHTINGS)


def test_unknown_weighting_scheme_or_option_is_an_options_error(mixed_bc_spec, tiny_model, crn_run):
    with pytest.raises(OptionsError, match="nope"):
        crn_run(mixed_bc_spec, tiny_model, weighting="nope")
    with pytest.raises(OptionsError, match="bogus"):
        crn_run(mixed_bc_spec, tiny_model, weighting="adaptive", weighting_options={"bogus": 1})
