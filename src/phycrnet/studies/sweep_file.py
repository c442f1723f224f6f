"""The sweep file: its keys and types (pydantic), and the checks across keys.

A sweep file (YAML, or the same as a mapping)::

    base: allen_cahn_periodic          # catalog case, spec path (relative to the sweep
                                       # file) or an inline spec mapping
    method: solve                      # solve | pinn | classical
    options: {iterations: 200}         # flat options of every member (sections of the
                                       # method; threads and device for the processes)
    preset: hybrid                     # solve, classical: the preset
    model: {lstm_channels: 64}         # solve: the model section of every member
    scheme: implicit                   # classical: implicit | explicit
    substeps: 2                        # classical: implicit steps per frame
    members:                           # explicit members: dotted overrides of the spec
      - {parameters.eps: 0.001}
    product:                           # cartesian product, after the members
      parameters.eps: [0.001, 0.002]
      training.seed: [0, 1]
    reference: true                    # or {refinement, richardson, tolerance, time_limit}
    batch: 1                           # members trained together (solve only)

Keys and types fail here with one line naming the key, prefixed by the file's name; the
members themselves are checked when they are built (:mod:`phycrnet.studies.sweep_members`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError, field_validator

from phycrnet.errors import OptionsError, SpecError
from phycrnet.options.presets import known_preset

#: The methods a sweep runs.
METHODS = ("solve", "pinn", "classical")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReferenceSettings(_Strict):
    """How each member's reference is solved (:func:`phycrnet.reference.solver.solve_reference`)."""

    refinement: Annotated[StrictInt, Field(ge=1)] | None = None
    richardson: bool = True
    tolerance: float = Field(1e-4, gt=0)
    time_limit: float = Field(60.0, gt=0)


class SweepFile(_Strict):
    """A sweep file's keys and types (defaults: one member, the base, solved by PhyCRNet)."""

    base: str | dict[str, Any]
    method: Literal["solve", "pinn", "classical"] = "solve"
    options: dict[str, Any] = Field(default_factory=dict)
    preset: str | None = None
    model: dict[str, Any] | None = None
    scheme: Literal["implicit", "explicit"] | None = None
    substeps: Annotated[StrictInt, Field(ge=1)] | None = None
    members: list[dict[str, Any]] = Field(default_factory=list)
    product: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    reference: bool | ReferenceSettings = False
    batch: Annotated[StrictInt, Field(ge=1)] = 1

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str | None) -> str | None:
        return known_preset(name)

    def reference_settings(self) -> dict[str, Any] | None:
        """Keyword arguments of the reference solver, ``None`` without references."""
        if self.reference is False:
            return None
        settings = self.reference if isinstance(self.reference, ReferenceSettings) else ReferenceSettings.model_validate({})
        return settings.model_dump()


def read_sweep(source: str | Path | Mapping[str, Any], base_dir: Path | None = None) -> tuple[SweepFile, Path, str]:
    """The sweep file at ``source`` (or the mapping), checked; the directory its ``base``
    path is relative to (the file's, else ``base_dir`` or the working directory); and the
    name its errors start with."""
    if isinstance(source, Mapping):
        origin, data, folder = "sweep", dict(source), base_dir or Path.cwd()
    else:
        path = Path(source)
        if not path.is_file():
            raise SpecError(f"sweep file {str(path)!r} not found")
        origin, folder = path.name, base_dir or path.parent
        data = _parse(path.read_text(), origin)
    try:
        sweep = SweepFile.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{origin}: {_describe(exc)}") from None
    check_combination(sweep, origin)
    return sweep, folder, origin


def _parse(text: str, origin: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise SpecError(f"{origin}: YAML syntax error{where}: {getattr(exc, 'problem', None) or 'unreadable'}") from None
    if not isinstance(data, Mapping):
        raise SpecError(f"{origin}: a sweep file must be a YAML mapping of keys, got {type(data).__name__}")
    return dict(data)


def check_combination(sweep: SweepFile, origin: str) -> None:
    """The checks across keys: each method's own keys, and batches for PhyCRNet only."""
    only = {"preset": ("solve", "classical"), "model": ("solve",), "scheme": ("classical",), "substeps": ("classical",)}
    for key, methods in only.items():
        if getattr(sweep, key) is not None and sweep.method not in methods:
            raise OptionsError(f"{origin}: {key}: applies to method {' and '.join(methods)}, not {sweep.method}")
    if sweep.batch > 1 and sweep.method != "solve":
        raise OptionsError(f"{origin}: batch: {sweep.batch} (members trained together) needs method solve, not {sweep.method} (use batch: 1)")
    for index, member in enumerate(sweep.members):
        for key in member:
            if not key or not all(key.split(".")):
                raise SpecError(f"{origin}: members.{index}: {key!r} is not a dotted key like parameters.eps")
    for key in sweep.product:
        if not key or not all(key.split(".")):
            raise SpecError(f"{origin}: product: {key!r} is not a dotted key like parameters.eps")


#: Names pydantic puts into error locations for the members of a union; they are not keys.
_UNION_TAGS = {"str", "bool", "int", "float", "ReferenceSettings", "constrained-int", "constrained-list"}


def _describe(exc: ValidationError) -> str:
    """The first problem of a validation error as ``key: message`` (unknown and missing
    keys first, then the most specific location)."""
    errors = sorted(exc.errors(), key=lambda e: (e["type"] not in ("extra_forbidden", "missing"), -len(e["loc"])))
    error = errors[0]
    loc = [str(p) for p in error["loc"] if not (isinstance(p, str) and (p in _UNION_TAGS or p.startswith(("dict[", "list[", "function-"))))]
    path = ".".join(loc) or "<sweep>"
    if error["type"] == "extra_forbidden":
        owner = ReferenceSettings if loc[0] == "reference" else SweepFile
        return f"{path}: unknown key (keys: {', '.join(owner.model_fields)})"
    if error["type"] == "missing":
        return f"{path}: missing required key"
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, (str, int, float)) and not isinstance(value, bool) and error["type"] != "value_error":
        message += f", got {value!r}"
    return f"{path}: {message}"
