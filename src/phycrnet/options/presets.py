"""Presets and the merge of options from every source, in one place.

A run's options come, in increasing priority, from

1. the section defaults (:mod:`phycrnet.options.sections`),
2. the method's base values (the PINN trains with its own learning rate and schedule),
3. the preset (``--preset NAME`` or ``preset:`` in the spec; PhyCRNet only),
4. the spec's sections (only the keys written there),
5. the overrides of the command line or the Python API.

The result is a frozen record (:class:`CrnOptions`, :class:`PinnRunOptions`) that the
outputs store as JSON. The ``auto`` values in it are resolved later, against the problem,
by :func:`phycrnet.methods.resolve.resolve`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from phycrnet.errors import OptionsError
from phycrnet.options.sections import ModelOptions, PhysicsOptions, PinnOptions, Section, TrainingOptions

#: Presets of PhyCRNet: partial ``physics`` / ``model`` / ``training`` sections.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # The network starts as a classical step (Heun with sub-steps, on the project's
    # stencils) and learns a correction to it: the section defaults.
    "hybrid": {},
    # The network learns the physics itself: no classical step inside it. The paper's
    # widths (a 64-channel ConvLSTM reached a third of the accuracy per iteration), its
    # fixed random initial state (learned or zero states trained worse), the current state
    # fed to the decoder, a 3x3 output layer; Adam at a constant 1e-3 (decaying schedules
    # and the L-BFGS finish slowed this network down), whose moving average of the last
    # ~50 steps is the result (closer to the truth than the best iterate). docs/method.md,
    # "The crn preset".
    "crn": {
        "model": {
            "physics_input": False,
            "physics_init": "random",
            "encoder_channels": (8, 32, 128),
            "lstm_channels": 128,
            "initial_state": "random",
            "input_skip": True,
            "decoder_kernel": 3,
        },
        "training": {"lr": 1e-3, "schedule": "constant", "lbfgs_fraction": 0.0, "weight_average": 0.98},
    },
    # The published method as its authors ran it (Li, Lu, Liu 2025; docs/method.md).
    "paper": {
        "physics": {"derivatives": "fd2", "time_scheme": "central", "boundary": "soft"},
        "model": {
            "encoder_channels": (8, 32, 128),
            "lstm_channels": 128,
            "initial_state": "random",
            "input_skip": False,
            "physics_input": False,
            "physics_init": "random",
        },
        "training": {
            "weighting": "adaptive",
            "lr": 1e-3,
            "schedule": "steplr",
            "lr_decay": 0.97,
            "step_size": 100,
            "lbfgs_fraction": 0.0,
            "refine": 1,
            "step_balance": False,
        },
    },
}
#: The preset a run uses when neither the spec nor the caller names one.
DEFAULT_PRESET = "hybrid"

#: The PINN's own training values: Adam at a lower rate, decaying exponentially over the
#: Adam phase only, then a longer L-BFGS finish with a longer history.
PINN_TRAINING: dict[str, Any] = {
    "lr": 2e-3,
    "schedule": "exponential",
    "schedule_span": "adam",
    "final_lr_ratio": 0.05,
    "lr_decay": 0.5,
    "decay_every": 0.25,
    "lbfgs_fraction": 0.85,
    "lbfgs_history": 100,
    "log_every": 50,
}

#: Iterations when neither an iteration count nor a time budget is given (the paper's).
DEFAULT_ITERATIONS = 20_000


@dataclass(frozen=True)
class CrnOptions:
    """Everything a PhyCRNet run is configured with (``auto`` values not yet resolved)."""

    preset: str
    physics: PhysicsOptions
    model: ModelOptions
    training: TrainingOptions

    def to_json(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "physics": self.physics.model_dump(mode="json"),
            "model": self.model.model_dump(mode="json"),
            "training": self.training.model_dump(mode="json"),
        }


@dataclass(frozen=True)
class PinnRunOptions:
    """Everything a PINN run is configured with."""

    training: TrainingOptions
    pinn: PinnOptions

    def to_json(self) -> dict[str, Any]:
        return {"training": self.training.model_dump(mode="json"), "pinn": self.pinn.model_dump(mode="json")}


def known_preset(name: str | None) -> str | None:
    """``name`` if it names a preset (or is ``None``); a ``ValueError`` listing them otherwise
    (for pydantic validators)."""
    if name is not None and name not in PRESETS:
        raise ValueError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return name


def total_iterations(training: TrainingOptions) -> int | None:
    """The iteration cap: the given count, :data:`DEFAULT_ITERATIONS` without any budget, or none."""
    if training.iterations is not None:
        return training.iterations
    return None if training.time_budget is not None else DEFAULT_ITERATIONS


def crn_options(
    spec_sections: Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    preset: str | None = None,
    model: Mapping[str, Any] | None = None,
) -> CrnOptions:
    """PhyCRNet's options from the spec's sections, a preset and overrides.

    Args:
        spec_sections: the spec's ``preset``, ``physics``, ``model`` and ``training``
            entries (sections as mappings of the keys written, or as parsed sections).
        overrides: flat options of the caller; each goes to the section that has it.
        preset: the preset to use (default: the spec's, else :data:`DEFAULT_PRESET`).
        model: overrides of the ``model`` section.
    """
    spec_sections = spec_sections or {}
    name = preset or spec_sections.get("preset") or DEFAULT_PRESET
    if name not in PRESETS:
        raise OptionsError(f"preset: unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    routed = _route(overrides or {}, (PhysicsOptions, TrainingOptions))
    sections = {}
    for key, cls in (("physics", PhysicsOptions), ("model", ModelOptions), ("training", TrainingOptions)):
        extra = dict(model or {}) if key == "model" else routed.get(key, {})
        sections[key] = _build(cls, key, PRESETS[name].get(key, {}), written(spec_sections.get(key)), extra)
    return CrnOptions(preset=name, **sections)


def pinn_options(spec_sections: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None) -> PinnRunOptions:
    """The PINN's options: :data:`PINN_TRAINING`, then the spec's ``training`` and ``pinn``
    sections, then the flat ``overrides`` (each to the section that has it)."""
    spec_sections = spec_sections or {}
    routed = _route(overrides or {}, (TrainingOptions, PinnOptions))
    training = _build(TrainingOptions, "training", PINN_TRAINING, written(spec_sections.get("training")), routed.get("training", {}))
    pinn = _build(PinnOptions, "pinn", {}, written(spec_sections.get("pinn")), routed.get("pinn", {}))
    return PinnRunOptions(training=training, pinn=pinn)


def written(section: Any) -> dict[str, Any]:
    """The keys a spec section sets explicitly (a parsed section keeps track of them)."""
    if section is None:
        return {}
    if isinstance(section, Section):
        return {k: getattr(section, k) for k in section.model_fields_set}
    return dict(section)


def section_name(cls: type[Section]) -> str:
    return {PhysicsOptions: "physics", ModelOptions: "model", TrainingOptions: "training", PinnOptions: "pinn"}[cls]


def _route(overrides: Mapping[str, Any], classes: tuple[type[Section], ...]) -> dict[str, dict[str, Any]]:
    """Flat ``overrides`` (``None`` values dropped) sorted into the sections that have them."""
    routed: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        owner = next((cls for cls in classes if key in cls.model_fields), None)
        if owner is None:
            known = sorted(k for cls in classes for k in cls.model_fields)
            raise OptionsError(f"{key}: unknown option (known: {', '.join(known)})")
        routed.setdefault(section_name(owner), {})[key] = value
    return routed


def _build(cls: type[Section], name: str, *layers: Mapping[str, Any]) -> Any:
    data: dict[str, Any] = {}
    for layer in layers:
        data.update(layer)
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise OptionsError(describe_error(exc, name)) from None


def describe_error(exc: ValidationError, section: str) -> str:
    """A one-line message naming the first offending key of ``section``."""
    error = exc.errors()[0]
    key = ".".join(str(p) for p in error["loc"])
    where = f"{section}.{key}" if key else section
    if error["type"] == "extra_forbidden":
        return f"{where}: unknown option"
    value = error.get("input")
    suffix = f", got {value!r}" if isinstance(value, (str, int, float)) and not isinstance(value, bool) and key else ""
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}{suffix}"
