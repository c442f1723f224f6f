"""The raw schema of a spec: keys and types, checked by pydantic.

The first of two passes (:mod:`phycrnet.spec.problem` checks the meaning). The option
sections ``physics``, ``model``, ``training`` and ``pinn`` are typed by
:mod:`phycrnet.options`, so a typo in them fails here, with its key named.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from phycrnet.errors import SpecError
from phycrnet.options import ModelOptions, PhysicsOptions, PinnOptions, TrainingOptions, written
from phycrnet.options.presets import known_preset

ExpressionValue = Union[float, str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ParameterModel(_Strict):
    """A named coefficient; ``learn: true`` makes it trainable (coefficient identification)."""

    init: float
    learn: bool = False
    bounds: tuple[float, float] | None = None

    @field_validator("bounds")
    @classmethod
    def _ordered(cls, bounds):
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError("bounds must be [low, high] with low < high")
        return bounds


class DomainModel(_Strict):
    x: tuple[float, float] = (0.0, 1.0)
    y: tuple[float, float] = (0.0, 1.0)

    @field_validator("x", "y")
    @classmethod
    def _increasing(cls, interval):
        if not all(math.isfinite(v) for v in interval) or not interval[0] < interval[1]:
            raise ValueError("must be [start, end] with start < end")
        return interval


class GridModel(_Strict):
    nx: StrictInt
    ny: StrictInt


class TimeModel(_Strict):
    t_end: float
    dt: float


class SideModel(_Strict):
    """The condition on one side: a*u + b*du/dn = value (outward normal n)."""

    type: Literal["periodic", "dirichlet", "neumann", "robin"]
    value: ExpressionValue = 0.0
    a: float | None = None
    b: float | None = None


class RandomFieldModel(_Strict):
    seed: StrictInt = 0
    scale: float = 0.1
    length: float = 0.2
    mean: float = 0.0


class RandomInitialModel(_Strict):
    random: RandomFieldModel


class FileInitialModel(_Strict):
    file: str


InitialValue = Union[float, str, FileInitialModel, RandomInitialModel]
FieldBoundary = Union[Literal["periodic"], dict[str, SideModel]]


class SpecModel(_Strict):
    """The raw schema of a spec (keys and types only)."""

    name: str = "problem"
    description: str = ""
    parameters: dict[str, float | ParameterModel] = Field(default_factory=dict)
    domain: DomainModel = Field(default_factory=DomainModel)
    grid: GridModel
    time: TimeModel
    equations: dict[str, ExpressionValue]
    initial: dict[str, InitialValue]
    boundary: Literal["periodic"] | dict[str, FieldBoundary]
    preset: str | None = None
    physics: PhysicsOptions | None = None
    model: ModelOptions | None = None
    training: TrainingOptions | None = None
    pinn: PinnOptions | None = None

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str | None) -> str | None:
        return known_preset(name)

    def dump(self) -> dict[str, Any]:
        """The spec as plain data: its own keys with defaults filled in, the option sections
        with only the keys written in them (so presets still apply to the rest)."""
        data = self.model_dump(mode="json", exclude_none=True, exclude=set(OPTION_SECTIONS))
        for key in OPTION_SECTIONS:
            section = getattr(self, key)
            if section is not None:
                data[key] = written(section)
        return data


#: The keys of the spec that hold option sections.
OPTION_SECTIONS = ("physics", "model", "training", "pinn")


def validate_schema(data: Mapping[str, Any]) -> SpecModel:
    try:
        return SpecModel.model_validate(dict(data))
    except ValidationError as exc:
        raise SpecError(_describe_validation_error(exc)) from None


def _describe_validation_error(exc: ValidationError) -> str:
    errors = exc.errors()
    # Prefer the most specific error: unknown and missing keys, then the deepest location.
    errors.sort(key=lambda e: (e["type"] not in ("extra_forbidden", "missing"), -len(e["loc"])))
    error = errors[0]
    loc = [str(p) for p in error["loc"] if not _is_union_tag(p)]
    path = ".".join(loc) or "<spec>"
    if error["type"] == "extra_forbidden":
        parent = ".".join(loc[:-1]) or "top level"
        return f"{path}: unknown key {loc[-1]!r} (in {parent})"
    if error["type"] == "missing":
        return f"{path}: missing required key"
    message = error["msg"]
    value = error.get("input")
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        message += f", got {value!r}"
    return f"{path}: {message}"


def _is_union_tag(part: Any) -> bool:
    """Pydantic names the member of a union it tried in error locations; those are not keys."""
    if not isinstance(part, str):
        return False
    members = {"float", "str", "int", "ParameterModel", "FileInitialModel", "RandomInitialModel", "SideModel"}
    return part in members or part.startswith(("literal[", "dict[", "function-"))
