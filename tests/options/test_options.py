"""The typed option sections, presets and merge (phycrnet.options), and docs/options.md."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from phycrnet.errors import OptionsError, SpecError
from phycrnet.options import PRESETS, SECTIONS, crn_options, pinn_options
from phycrnet.options.docs import render
from phycrnet.spec.problem import load_spec

DOCS = Path(__file__).resolve().parents[2] / "docs" / "options.md"


def test_docs_options_is_current():
    """docs/options.md is what the option types generate (regenerate it with
    ``python -m phycrnet.options.docs > docs/options.md``)."""
    assert DOCS.read_text() == render()


def test_every_option_is_documented_with_a_description():
    for name, cls in SECTIONS.items():
        for key, field in cls.model_fields.items():
            assert field.description, f"{name}.{key} has no description"
            assert key in render()


def test_options_parse_without_torch():
    code = "import sys; import phycrnet.spec, phycrnet.options; phycrnet.spec.load_spec('allen_cahn_periodic'); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_a_typo_in_a_spec_section_fails_at_load_time_with_its_key(periodic_heat_spec):
    for section, key in (("training", "lrr"), ("model", "lstm_chanels"), ("physics", "derivative"), ("pinn", "hiden")):
        with pytest.raises(SpecError, match=f"{section}.{key}"):
            load_spec({**periodic_heat_spec, section: {key: 1}})
    with pytest.raises(SpecError, match="training.lr"):
        load_spec({**periodic_heat_spec, "training": {"lr": -1}})
    with pytest.raises(SpecError, match="preset: .*unknown preset 'fancy'"):
        load_spec({**periodic_heat_spec, "preset": "fancy"})


def test_explicit_options_override_the_preset_and_the_spec_overrides_it_too(periodic_heat_spec):
    spec = load_spec({**periodic_heat_spec, "preset": "paper", "training": {"lr": 5e-4}, "model": {"lstm_channels": 64}})
    options = crn_options(spec.option_sections())
    assert options.preset == "paper"
    assert options.training.lr == 5e-4 and options.training.schedule == "steplr"  # the spec over the preset
    assert options.model.lstm_channels == 64 and options.model.encoder_channels == (8, 32, 128)
    assert options.physics.time_scheme == "central"
    overridden = crn_options(spec.option_sections(), {"lr": 2e-3, "time_scheme": "bdf2"}, preset="crn")
    assert overridden.preset == "crn" and overridden.training.lr == 2e-3 and overridden.physics.time_scheme == "bdf2"
    assert overridden.model.physics_input is False and overridden.model.lstm_channels == 64


def test_unknown_presets_and_options_are_one_line_errors():
    with pytest.raises(OptionsError, match="preset: unknown preset 'fancy'"):
        crn_options(preset="fancy")
    with pytest.raises(OptionsError, match="bogus: unknown option"):
        crn_options(overrides={"bogus": 1})
    with pytest.raises(OptionsError, match="model.lstm_kernel: must be odd"):
        crn_options(model={"lstm_kernel": 4})


def test_the_pinn_takes_its_own_base_values_then_the_spec_training_section(periodic_heat_spec):
    plain = pinn_options()
    assert plain.training.lr == 2e-3 and plain.training.schedule_span == "adam"
    spec = load_spec({**periodic_heat_spec, "training": {"lr": 1e-3}, "pinn": {"hidden": [8, 8]}})
    options = pinn_options(spec.option_sections(), {"n_interior": 10})
    assert options.training.lr == 1e-3 and options.pinn.hidden == (8, 8) and options.pinn.n_interior == 10


def test_every_preset_names_known_options():
    for name, sections in PRESETS.items():
        options = crn_options(preset=name)
        for section, values in sections.items():
            for key, value in values.items():
                assert getattr(getattr(options, section), key) == value, (name, section, key)
