"""Run options: the typed spec sections, presets, and the thresholds of the ``auto`` rules.

A leaf of the package (no torch): the spec, the command line and the methods all read
their options from here. ``docs/options.md`` is generated from these types
(:mod:`phycrnet.options.docs`).
"""

from phycrnet.options.presets import (
    DEFAULT_ITERATIONS,
    DEFAULT_PRESET,
    PINN_TRAINING,
    PRESETS,
    CrnOptions,
    PinnRunOptions,
    crn_options,
    describe_error,
    pinn_options,
    total_iterations,
    written,
)
from phycrnet.options.sections import SECTIONS, ModelOptions, PhysicsOptions, PinnOptions, Section, TrainingOptions
from phycrnet.options.thresholds import THRESHOLDS, Thresholds

__all__ = [
    "DEFAULT_ITERATIONS",
    "DEFAULT_PRESET",
    "PINN_TRAINING",
    "PRESETS",
    "SECTIONS",
    "THRESHOLDS",
    "CrnOptions",
    "ModelOptions",
    "PhysicsOptions",
    "PinnOptions",
    "PinnRunOptions",
    "Section",
    "Thresholds",
    "TrainingOptions",
    "crn_options",
    "describe_error",
    "pinn_options",
    "total_iterations",
    "written",
]
