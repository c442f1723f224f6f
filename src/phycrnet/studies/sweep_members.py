"""The members of a sweep: their overrides, their specs, compiled before anything runs.

* **Members**: the explicit ``members`` list, then every combination of ``product`` (the
  last key varying fastest); with neither, one member, the base. Member ``i`` is named
  ``member_000``, ``member_001``, ... (more digits past 1000 members).
* **Spec of a member**: the base spec as plain data (:meth:`SpecModel.dump`), with the
  sweep's ``options`` written into the sections of the method (``physics`` and
  ``training`` for solve, ``training`` and ``pinn`` for pinn, ``physics`` for classical)
  and its ``model`` into the ``model`` section, then each dotted override set. So a
  member's own override (``training.seed``) wins over the sweep's options, and each
  member's spec on disk says everything it was run with. ``threads`` and ``device`` are
  settings of the processes, not of the members, and stay out of the specs.
* **Keys**: a dotted key exists when its path exists in the base spec as plain data
  (``parameters.eps``, ``initial.u``, ``boundary.u.left.value``, ``grid.nx``, ``domain.x.1``
  with list indices) or when it names an option of a section (``training.seed``,
  ``model.lstm_channels``, even if the base does not write it) or a top-level key of the
  spec schema (``preset``). A scalar for a parameter written as ``{init, learn, ...}``
  replaces its ``init`` (``parameters.eps.init`` works too).
* **Checks**: each member compiles with :func:`~phycrnet.spec.load_spec` and its options
  merge for its method; a failure is one line naming the member, e.g.
  ``member 3 (parameters.epz=0.1): parameters.epz: no such key in the base spec``.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from phycrnet.errors import OptionsError, PhycrnetError, SpecError
from phycrnet.options import SECTIONS, ModelOptions, TrainingOptions, crn_options, describe_error, pinn_options
from phycrnet.spec.problem import Problem, load_spec
from phycrnet.spec.schema import SpecModel
from phycrnet.studies.sweep_file import SweepFile

#: Options that set up the processes (every method accepts them).
RUN_SETTINGS = ("threads", "device")
#: The sections a method's flat options go to, in the order they are looked up.
METHOD_SECTIONS = {"solve": ("physics", "training"), "pinn": ("training", "pinn"), "classical": ("physics",)}


@dataclass(frozen=True)
class Member:
    """One member of a sweep: its overrides, its spec as plain data, and that compiled."""

    index: int
    name: str
    overrides: dict[str, Any]
    spec: dict[str, Any]
    problem: Problem

    @property
    def label(self) -> str:
        return describe_overrides(self.overrides)


def describe_overrides(overrides: Mapping[str, Any]) -> str:
    """``key=value, ...`` (values as JSON, strings bare), or ``base`` for none."""
    return ", ".join(f"{k}={v if isinstance(v, str) else json.dumps(v, default=str)}" for k, v in overrides.items()) or "base"


def expand(members: Sequence[Mapping[str, Any]], product: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """The overrides of every member: ``members``, then the combinations of ``product``."""
    expanded = [dict(m) for m in members]
    keys = list(product)
    if keys:
        expanded += [dict(zip(keys, values)) for values in itertools.product(*(product[k] for k in keys))]
    return expanded or [{}]


def member_names(count: int) -> list[str]:
    """``member_000`` ... (at least three digits, as many as the last index needs)."""
    width = max(3, len(str(max(count - 1, 0))))
    return [f"member_{i:0{width}d}" for i in range(count)]


def build_members(sweep: SweepFile, folder: Path, origin: str) -> list[Member]:
    """Every member of ``sweep`` compiled and checked for its method (nothing runs)."""
    base, source_dir = base_spec(sweep, folder, origin)
    overrides = expand(sweep.members, sweep.product)
    return [_build(i, name, o, base, source_dir, sweep) for i, (name, o) in enumerate(zip(member_names(len(overrides)), overrides))]


def _build(index: int, name: str, overrides: dict[str, Any], base: dict[str, Any], source_dir: Path, sweep: SweepFile) -> Member:
    data = copy.deepcopy(base)
    try:
        for key, value in overrides.items():
            set_dotted(data, key, copy.deepcopy(value))
        problem = load_spec(data, source_dir=source_dir)
        check_method(problem, sweep)
    except PhycrnetError as exc:
        raise type(exc)(f"member {index} ({describe_overrides(overrides)}): {exc}") from None
    return Member(index, name, overrides, plain(problem.model.dump()), problem)


def check_method(problem: Problem, sweep: SweepFile) -> None:
    """Merge the member's option sections as its method will (presets, PINN base values)."""
    if sweep.method == "pinn":
        pinn_options(problem.option_sections())
    else:
        crn_options(problem.option_sections(), preset=sweep.preset)


def base_spec(sweep: SweepFile, folder: Path, origin: str) -> tuple[dict[str, Any], Path]:
    """The base spec as plain data with the sweep's options and model written into it, and
    the folder its relative paths (initial value files) refer to."""
    problem = _load_base(sweep.base, folder, origin)
    data = plain(problem.model.dump())
    sections, _ = route_options(sweep.options, sweep.method, origin)
    if sweep.model is not None:
        sections["model"] = _checked(ModelOptions, "model", sweep.model, f"{origin}: ")
    for section, values in sections.items():
        data[section] = {**(data.get(section) or {}), **values}
    return data, problem.source_dir


def _load_base(base: str | dict[str, Any], folder: Path, origin: str) -> Problem:
    try:
        if isinstance(base, dict):
            return load_spec(base, source_dir=folder)
        candidate = folder / base
        if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
            return load_spec(candidate)
        return load_spec(base)
    except PhycrnetError as exc:
        raise type(exc)(f"{origin}: base: {exc}") from None


def route_options(options: Mapping[str, Any], method: str, origin: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The sweep's flat ``options`` as ``{section: {key: value}}`` of the method's sections,
    and the process settings (``threads``, ``device``) apart; each section checked."""
    allowed = METHOD_SECTIONS[method]
    sections: dict[str, dict[str, Any]] = {}
    settings = {k: v for k, v in options.items() if k in RUN_SETTINGS}
    for key, value in options.items():
        if key in RUN_SETTINGS:
            continue
        owner = next((s for s in allowed if key in SECTIONS[s].model_fields), None)
        if owner is None:
            raise OptionsError(f"{origin}: options.{key}: not an option of method {method} (its sections: {', '.join(allowed)})")
        sections.setdefault(owner, {})[key] = value
    for section, values in sections.items():
        _checked(SECTIONS[section], section, values, f"{origin}: options: ")
    _checked(TrainingOptions, "options", settings, f"{origin}: ")
    return sections, settings


def _checked(cls: type, section: str, values: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """``values`` if they are valid keys and values of section ``cls``."""
    try:
        cls.model_validate(dict(values))  # type: ignore[attr-defined]
    except ValidationError as exc:
        raise OptionsError(prefix + describe_error(exc, section)) from None
    return dict(values)


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set ``data[a][b]...`` for ``key = "a.b..."``; the key must exist (see the module)."""
    parts = key.split(".")
    if len(parts) == 2 and parts[0] in SECTIONS and parts[1] in SECTIONS[parts[0]].model_fields:
        data[parts[0]] = {**(data.get(parts[0]) or {}), parts[1]: value}
        return
    if len(parts) == 1 and parts[0] in SpecModel.model_fields and parts[0] not in data:
        data[parts[0]] = value
        return
    node: Any = data
    for part in parts[:-1]:
        node = _child(node, part, key)
    last = parts[-1]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    elif isinstance(node, dict) and last in node:
        parameter = parts[0] == "parameters" and len(parts) == 2
        node[last] = {**node[last], "init": value} if parameter and isinstance(node[last], dict) and not isinstance(value, dict) else value
    else:
        raise SpecError(f"{key}: no such key in the base spec")


def _child(node: Any, part: str, key: str) -> Any:
    if isinstance(node, dict) and part in node:
        return node[part]
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    raise SpecError(f"{key}: no such key in the base spec")


def plain(data: Any) -> Any:
    """``data`` as JSON types (tuples become lists), so that specs compare and serialise."""
    return json.loads(json.dumps(data))
