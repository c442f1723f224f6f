"""The ``auto`` options, resolved in one step without building a network
(phycrnet.methods.resolve): sub-steps, physics input, implicit diffusion, predictor steps,
step balance, refinement."""

from __future__ import annotations

import math

import pytest

import phycrnet.models.crn
from phycrnet.methods.resolve import Probe, Resolved, resolve
from phycrnet.options import THRESHOLDS as T
from phycrnet.options import crn_options
from phycrnet.spec.problem import load_spec


def resolved(spec: dict, model: dict | None = None, **options) -> Resolved:
    problem = load_spec(spec)
    return resolve(problem, crn_options(problem.option_sections(), {"threads": 1, **options}, model=model))


def probe(spec: dict, **options) -> Probe:
    problem = load_spec(spec)
    return Probe(problem, crn_options(problem.option_sections(), options))


def test_resolution_builds_no_network_and_is_repeatable(periodic_heat_spec, tiny_model, monkeypatch):
    """The rules are a pure function of the problem and the options: no network is built,
    and the same inputs give the same record."""

    def refuse(*args, **kwargs):
        raise AssertionError("resolve built a network")

    monkeypatch.setattr(phycrnet.models.crn.PhyCRNet, "__init__", refuse)
    first, second = resolved(periodic_heat_spec, tiny_model), resolved(periodic_heat_spec, tiny_model)
    assert first == second
    assert first.attributes(first.model(crn_options(model=tiny_model).model))["substeps"] == first.substeps


def test_automatic_substeps_and_physics_input_follow_the_stiffness(periodic_heat_spec, tiny_model):
    """Sub-steps grow with dt * rho (here through the diffusivity) up to the cap; far beyond
    it the physics input is switched off (and one step per frame kept); given values win."""
    explicit_only = {**tiny_model, "implicit_diffusion": False}

    def choices(a: float, model: dict = explicit_only, **options) -> Resolved:
        return resolved({**periodic_heat_spec, "equations": {"u": f"{a}*laplace(u)"}}, model, **options)

    mild, stiff, extreme = choices(1e-4), choices(0.05), choices(10.0)
    assert mild.stiffness < stiff.stiffness < extreme.stiffness
    assert mild.substeps == 1 and mild.physics_input is True
    assert stiff.stiffness / T.max_imex_substeps <= T.physics_input_limit < extreme.stiffness / T.max_imex_substeps
    assert stiff.substeps == min(T.max_explicit_substeps, math.ceil(stiff.stiffness / T.stiff_step)) > 1
    # Beyond the IMEX sub-step count explicit sub-steps are still added while they keep the step stable.
    stiffer = choices(0.05 * 1.5 * T.max_imex_substeps * T.stiff_step / stiff.stiffness)
    assert stiffer.physics_input is True
    assert T.max_imex_substeps < stiffer.substeps == math.ceil(stiffer.stiffness / T.stiff_step) <= T.max_explicit_substeps
    assert stiffer.stiffness / stiffer.substeps <= T.stiff_step * (1 + 1e-9) and stiffer.input_gain == 1.0
    assert extreme.physics_input is False and extreme.substeps == 1
    forced = choices(10.0, {**explicit_only, "physics_input": True})
    assert forced.physics_input is True and forced.substeps == T.max_explicit_substeps
    assert choices(0.05, substeps=2).substeps == 2
    assert resolved(periodic_heat_spec, {**tiny_model, "physics_input": False}).substeps == 1


@pytest.mark.parametrize("nu, resolves", [(0.05, True), (0.005, False), (0.0, False)])
def test_automatic_physics_input_is_off_where_the_grid_does_not_resolve_transport(periodic_heat_spec, tiny_model, nu, resolves):
    """The cell Peclet number |a| h / D decides ``physics_input: auto`` for advection:
    here a = 1 (the maximum of u0), h = 1/16, so Pe = 1.25 at nu = 0.05 and 12.5 at 0.005,
    infinite without diffusion; an explicit setting still wins."""
    advected = {**periodic_heat_spec, "equations": {"u": f"{nu}*laplace(u) - d_dx(u**2/2)"}}
    choices = resolved(advected, tiny_model)
    expected = 1.0 / 16 / nu if nu else math.inf
    assert choices.peclet == pytest.approx(expected, rel=1e-6)
    assert (choices.peclet <= T.peclet_limit) == resolves
    assert choices.physics_input is resolves
    assert resolved(advected, {**tiny_model, "physics_input": True}).physics_input is True


@pytest.mark.parametrize("k", [0.002, 0.02])
def test_automatic_physics_input_while_a_coefficient_is_learned_follows_the_stiffness(periodic_heat_spec, tiny_model, k):
    """Learning k, F is fed only where one explicit step per frame would be unstable."""
    known = {**periodic_heat_spec, "parameters": {"k": k}}
    learned = {**periodic_heat_spec, "parameters": {"k": {"init": k, "learn": True}}}
    assert resolved(known, tiny_model).physics_input is True
    choices = resolved(learned, tiny_model)
    stiff = choices.stiffness > 2.0
    assert stiff is (k == 0.02)  # the two cases lie on either side of the limit
    assert choices.physics_input is stiff
    assert resolved(learned, {**tiny_model, "physics_input": True}).physics_input is True
    assert resolved(learned, {**tiny_model, "physics_input": False}).physics_input is False


def test_a_stiff_periodic_problem_keeps_its_physics_input_while_a_coefficient_is_learned(periodic_heat_spec, tiny_model):
    """The rule for learned coefficients looks at the explicit step: far beyond its limit
    (dt * rho = 500 here) F stays on, with implicit diffusion, even though the IMEX step the
    network then sees is stable."""
    learned = {**periodic_heat_spec, "parameters": {"k": {"init": 5.0, "learn": True}}}
    choices = resolved(learned, tiny_model)
    assert choices.stiffness > 2.0 and choices.implicit_diffusion
    assert probe(learned).imex_stiffness(1) <= 2.0  # the IMEX step: the old rule switched F off on it
    assert choices.physics_input is True


def test_stiff_periodic_diffusion_gets_the_implicit_physics_input(periodic_heat_spec, tiny_model):
    """Far beyond the explicit limit a periodic problem with constant diffusion keeps its
    physics input with diffusion implicit, and the most IMEX sub-steps (the splitting is
    only first order); switched off, the physics input goes too."""
    stiff = {**periodic_heat_spec, "parameters": {"k": 5.0}}
    choices = resolved(stiff, tiny_model)
    assert choices.stiffness / T.max_imex_substeps > T.physics_input_limit
    assert choices.implicit_diffusion and choices.physics_input is True
    assert choices.substeps == T.max_imex_substeps and probe(stiff).imex_stiffness(1) <= min(1.0, T.stiff_step)
    assert choices.input_gain == 1.0 and choices.predictor_steps == 1
    off = resolved(stiff, {**tiny_model, "implicit_diffusion": False})
    assert not off.implicit_diffusion and off.physics_input is False


def test_implicit_diffusion_stays_off_where_explicit_sub_steps_suffice(periodic_heat_spec, mixed_bc_spec, tiny_model):
    """``auto`` keeps the explicit input on mild periodic problems and, on bounded grids,
    while the most explicit sub-steps of the most predictor steps keep the explicit
    predictor within its limit (here dt * rho = 24: eight sub-steps of two predictor steps,
    gain 1); ``true`` forces it where it applies."""
    mild = {**periodic_heat_spec, "parameters": {"k": 0.005}}  # dt * rho = 1.3
    assert not resolved(mild, tiny_model).implicit_diffusion
    moderate = resolved({**mixed_bc_spec, "parameters": {"k": 0.12}}, tiny_model)
    assert 16.0 < moderate.stiffness < 32.0
    assert not moderate.implicit_diffusion and moderate.substeps == T.max_explicit_substeps
    assert moderate.predictor_steps == 2 and moderate.input_gain == 1.0
    assert resolved(mild, {**tiny_model, "implicit_diffusion": True}).implicit_diffusion


def test_stiff_diffusion_on_a_bounded_grid_gets_the_implicit_physics_input(mixed_bc_spec, tiny_model):
    """Dirichlet, Neumann and Robin sides far beyond the explicit limit (dt * rho = 1e3):
    the physics input stays on with diffusion implicit. The IMEX step's dt * rho falls to
    about 2.4 (the residual's boundary closures differ from the filter's 3-point ones), so
    the explicit gain is only slightly damped."""
    stiff = {**mixed_bc_spec, "parameters": {"k": 5.0}}
    choices = resolved(stiff, tiny_model)
    assert choices.stiffness > 500
    assert choices.implicit_diffusion and choices.physics_input is True
    assert choices.substeps == 4 and probe(stiff).imex_stiffness(choices.substeps) < 2.5
    assert choices.input_gain > 0.7
    off = resolved(stiff, {**tiny_model, "implicit_diffusion": False})
    assert not off.implicit_diffusion and off.physics_input is False


def test_predictor_steps_damp_only_beyond_the_most_predictor_steps(mixed_bc_spec, tiny_model):
    """Eight sub-steps at dt * rho 3 each take two predictor steps at full gain; one
    predictor step per network step would have to be damped."""
    spec = {**mixed_bc_spec, "parameters": {"k": 0.12}, "equations": {"u": "k*laplace(u) - u**2"}}
    automatic = resolved(spec, tiny_model)
    assert automatic.substeps == 8 and automatic.stiffness / 8 > T.stiff_step
    assert automatic.predictor_steps == 2 and automatic.input_gain == 1.0
    assert resolved(spec, {**tiny_model, "predictor_steps": 1}).input_gain < 1.0


def test_step_balance_follows_the_classical_start(periodic_heat_spec, tiny_model):
    """``auto`` balances where the untrained network is a classical step, not a random one;
    a given value wins."""
    assert resolved(periodic_heat_spec, tiny_model).step_balance is True
    assert resolved(periodic_heat_spec, {**tiny_model, "physics_init": "random"}).step_balance is False
    assert resolved(periodic_heat_spec, {**tiny_model, "physics_input": False}).step_balance is False
    assert resolved(periodic_heat_spec, {**tiny_model, "physics_input": False}, step_balance=True).step_balance is True


def test_the_paper_preset_resolves_to_its_own_scheme(periodic_heat_spec):
    """The paper's method: second-order stencils, no physics input, one step per frame."""
    problem = load_spec(periodic_heat_spec)
    choices = resolve(problem, crn_options(problem.option_sections(), {"threads": 1}, preset="paper"))
    assert choices.derivatives == "fd2" and choices.physics_input is False and choices.substeps == 1
    assert choices.step_balance is False and choices.refine == 1
