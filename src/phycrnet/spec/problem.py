"""The compiled problem: loading a spec, checking its meaning, and what solvers consume.

A spec (YAML text, a YAML file, a catalog case name or a plain dict; see docs/design.md) is
validated in two passes: :mod:`phycrnet.spec.schema` checks keys and types, then
:func:`compile_spec` checks the meaning (fields, sides, expressions) and produces a
:class:`Problem`, the compiled form every solver consumes. Any problem ends in a
:class:`~phycrnet.errors.SpecError` whose one-line message starts with the offending key.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy
import yaml

from phycrnet.errors import SpecError
from phycrnet.spec import catalog
from phycrnet.spec.expressions import RESERVED_NAMES, evaluate, parse_expression
from phycrnet.spec.grid import SIDES, Axis, Grid
from phycrnet.spec.initial import initial_field
from phycrnet.spec.schema import OPTION_SECTIONS, ParameterModel, SideModel, SpecModel, validate_schema

#: Fewest nodes per axis: the fourth-order one-sided closures span six nodes.
MIN_NODES = 6

# --------------------------------------------------------------------------- compiled form


@dataclass(frozen=True)
class Parameter:
    """A coefficient of the problem."""

    name: str
    value: float
    learn: bool = False
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class BoundaryCondition:
    """``a*u + b*du/dn = value`` on one side, with ``n`` the outward normal.

    Dirichlet is ``a=1, b=0``, Neumann ``a=0, b=1``. ``value`` is an expression of
    ``x, y, t`` and the parameters.
    """

    kind: str
    value: sympy.Expr
    a: float
    b: float

    @property
    def time_dependent(self) -> bool:
        return sympy.Symbol("t") in self.value.free_symbols

    def evaluate_value(self, x: Any, y: Any, t: Any, parameters: Mapping[str, Any]) -> Any:
        """The right-hand side ``value`` at the given points (broadcasting)."""
        return evaluate(self.value, {"x": x, "y": y, "t": t, **parameters})


@dataclass
class Problem:
    """A validated, compiled spec: what solvers consume."""

    model: SpecModel
    grid: Grid
    fields: list[str]
    parameters: dict[str, Parameter]
    equations: dict[str, sympy.Expr]
    initial: dict[str, Any]
    boundary: dict[str, dict[str, BoundaryCondition]]
    n_steps: int
    source_dir: Path = field(default_factory=Path.cwd)

    # -- convenience ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self.model.name

    @property
    def dt(self) -> float:
        return self.model.time.dt

    @property
    def t_end(self) -> float:
        return self.model.time.t_end

    @property
    def times(self) -> np.ndarray:
        """Frame times t_k = k*dt, k = 0..n_steps, shape ``(n_steps + 1,)``."""
        return self.dt * np.arange(self.n_steps + 1, dtype=np.float64)

    @property
    def periodic(self) -> tuple[bool, bool]:
        return self.grid.periodic

    def option_sections(self) -> dict[str, Any]:
        """The spec's ``preset`` and option sections (``physics``, ``model``, ``training``,
        ``pinn``), as written (see :mod:`phycrnet.options.presets`)."""
        return {key: getattr(self.model, key) for key in ("preset", *OPTION_SECTIONS)}

    def parameter_values(self) -> dict[str, float]:
        return {name: p.value for name, p in self.parameters.items()}

    def initial_values(self) -> np.ndarray:
        """Initial state, shape ``(n_fields, ny, nx)``, float64."""
        return np.stack([self.initial[f] for f in self.fields])

    def to_yaml(self) -> str:
        """The spec as YAML text (defaults filled in)."""
        return yaml.safe_dump(self.model.dump(), sort_keys=False)

    def with_changes(self, **changes: Any) -> Problem:
        """A new problem from this spec with top-level keys replaced or deep-merged."""
        data = self.model.dump()
        for key, value in changes.items():
            if isinstance(value, Mapping) and isinstance(data.get(key), Mapping):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        return compile_spec(data, source_dir=self.source_dir)


# --------------------------------------------------------------------------- loading


def load_spec(source: Any, *, source_dir: Path | None = None) -> Problem:
    """Load and compile a spec.

    Args:
        source: a :class:`Problem` (returned as is), a mapping, a path to a YAML file, YAML
            text, or the name of a catalog case.
        source_dir: directory that relative file paths in the spec refer to.
    """
    if isinstance(source, Problem):
        return source
    if isinstance(source, SpecModel):
        return compile_spec(source.dump(), source_dir=source_dir)
    if isinstance(source, Mapping):
        return compile_spec(source, source_dir=source_dir)
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source):
        path = Path(source)
        if path.suffix in (".yaml", ".yml") or path.is_file():
            if not path.is_file():
                raise SpecError(f"spec file {str(path)!r} not found")
            return compile_spec(_parse_yaml(path.read_text(), str(path)), source_dir=path.parent)
        if str(source) in catalog.list_cases():
            return compile_spec(_parse_yaml(catalog.case_text(str(source)), str(source)))
        raise SpecError(
            f"{str(source)!r} is neither a spec file nor a catalog case "
            f"(cases: {', '.join(catalog.list_cases())})"
        )
    if isinstance(source, str):
        return compile_spec(_parse_yaml(source, "<spec>"), source_dir=source_dir)
    raise SpecError(f"cannot read a spec from a {type(source).__name__}")


def _parse_yaml(text: str, origin: str) -> Any:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"YAML syntax error in {origin}{where}: {problem}") from None
    if not isinstance(data, Mapping):
        raise SpecError(f"{origin}: a spec must be a YAML mapping of keys, got {type(data).__name__}")
    return data


def compile_spec(data: Mapping[str, Any], *, source_dir: Path | None = None) -> Problem:
    """Validate a spec mapping and compile it into a :class:`Problem`."""
    model = validate_schema(data)
    source_dir = source_dir or Path.cwd()
    grid = _compile_grid(model)
    fields = _compile_fields(model)
    parameters = _compile_parameters(model, fields)
    n_steps = _compile_time(model)
    equation_names = set(fields) | set(parameters) | {"x", "y", "t"}
    equations = {
        f: parse_expression(model.equations[f], where=f"equations.{f}", names=equation_names, allow_operators=True)
        for f in fields
    }
    boundary = _compile_boundary(model, fields, set(parameters), grid)
    problem = Problem(
        model=model,
        grid=grid,
        fields=fields,
        parameters=parameters,
        equations=equations,
        initial={},
        boundary=boundary,
        n_steps=n_steps,
        source_dir=source_dir,
    )
    values = {name: p.value for name, p in parameters.items()}
    problem.initial = {
        f: initial_field(f, model.initial[f], grid=grid, fields=fields, parameters=values, source_dir=source_dir) for f in fields
    }
    return problem


def _compile_grid(model: SpecModel) -> Grid:
    periodic_x, periodic_y = _periodic_axes(model)
    for key, n in (("grid.nx", model.grid.nx), ("grid.ny", model.grid.ny)):
        if n < MIN_NODES:
            raise SpecError(f"{key}: {n} nodes is smaller than the finite-difference stencils need (at least {MIN_NODES})")
    return Grid(
        x=Axis(*model.domain.x, model.grid.nx, periodic_x),
        y=Axis(*model.domain.y, model.grid.ny, periodic_y),
    )


def _periodic_axes(model: SpecModel) -> tuple[bool, bool]:
    if model.boundary == "periodic":
        return True, True
    flags: dict[str, set[bool]] = {"x": set(), "y": set()}
    for name, sides in model.boundary.items():
        if sides == "periodic":
            flags["x"].add(True)
            flags["y"].add(True)
            continue
        for axis, (low, high) in {"x": ("left", "right"), "y": ("bottom", "top")}.items():
            low_p = low in sides and sides[low].type == "periodic"
            high_p = high in sides and sides[high].type == "periodic"
            if low_p != high_p:
                side = low if low_p else high
                other = high if low_p else low
                raise SpecError(f"boundary.{name}.{side}: periodic on {side} needs periodic on {other} too")
            flags[axis].add(low_p)
    for axis, seen in flags.items():
        if len(seen) > 1:
            raise SpecError(f"boundary: axis {axis} is periodic for some fields but not for others")
    return (True in flags["x"], True in flags["y"])


def _compile_fields(model: SpecModel) -> list[str]:
    fields = list(model.equations)
    if not fields:
        raise SpecError("equations: at least one field equation is needed")
    for name in fields:
        if not name.isidentifier() or name in RESERVED_NAMES:
            raise SpecError(f"equations.{name}: {name!r} cannot be a field name")
        if name not in model.initial:
            raise SpecError(f"initial.{name}: field {name!r} has an equation but no initial value")
    for name in model.initial:
        if name not in model.equations:
            raise SpecError(f"initial.{name}: {name!r} has an initial value but no equation")
    if isinstance(model.boundary, Mapping):
        for name in model.boundary:
            if name not in model.equations:
                raise SpecError(f"boundary.{name}: {name!r} is not a field with an equation")
        for name in fields:
            if name not in model.boundary:
                raise SpecError(f"boundary.{name}: field {name!r} has no boundary conditions")
    return fields


def _compile_parameters(model: SpecModel, fields: list[str]) -> dict[str, Parameter]:
    parameters = {}
    for name, raw in model.parameters.items():
        where = f"parameters.{name}"
        if not name.isidentifier() or name in RESERVED_NAMES or name in fields:
            raise SpecError(f"{where}: {name!r} cannot be a parameter name")
        spec = raw if isinstance(raw, ParameterModel) else ParameterModel(init=raw)
        if not math.isfinite(spec.init):
            raise SpecError(f"{where}: value must be finite")
        if spec.bounds and not spec.bounds[0] <= spec.init <= spec.bounds[1]:
            raise SpecError(f"{where}: init {spec.init} lies outside bounds {list(spec.bounds)}")
        parameters[name] = Parameter(name, float(spec.init), spec.learn, spec.bounds)
    return parameters


def _compile_time(model: SpecModel) -> int:
    t_end, dt = model.time.t_end, model.time.dt
    if not (math.isfinite(t_end) and t_end > 0):
        raise SpecError(f"time.t_end: must be positive, got {t_end}")
    if not (math.isfinite(dt) and dt > 0):
        raise SpecError(f"time.dt: must be positive, got {dt}")
    if dt > t_end * (1 + 1e-12):
        raise SpecError(f"time.dt: dt={dt} is larger than t_end={t_end}")
    n_steps = round(t_end / dt)
    if abs(n_steps * dt - t_end) > 1e-6 * dt:
        raise SpecError(f"time.dt: t_end={t_end} is not a whole number of steps of dt={dt}")
    return n_steps


def _compile_boundary(
    model: SpecModel, fields: list[str], parameters: set[str], grid: Grid
) -> dict[str, dict[str, BoundaryCondition]]:
    """Non-periodic conditions per field and side (periodic sides are left out)."""
    result: dict[str, dict[str, BoundaryCondition]] = {}
    for name in fields:
        sides = "periodic" if model.boundary == "periodic" else model.boundary[name]
        result[name] = {}
        if sides == "periodic":
            continue
        for side in sides:
            if side not in SIDES:
                raise SpecError(f"boundary.{name}.{side}: unknown side (sides: {', '.join(SIDES)})")
        for side in SIDES:
            if side not in sides:
                raise SpecError(f"boundary.{name}.{side}: missing side")
            condition = _compile_side(sides[side], f"boundary.{name}.{side}", parameters)
            if condition is not None:
                result[name][side] = condition
    return result


def _compile_side(side: SideModel, where: str, parameters: set[str]) -> BoundaryCondition | None:
    if side.type == "periodic":
        if side.a is not None or side.b is not None:
            raise SpecError(f"{where}: 'a' and 'b' are only for robin conditions")
        return None
    value = parse_expression(side.value, where=f"{where}.value", names=parameters | {"x", "y", "t"}, allow_operators=False)
    if side.type == "robin":
        if side.a is None or side.b is None:
            raise SpecError(f"{where}: robin needs both 'a' and 'b' (a*u + b*du/dn = value)")
        if not (math.isfinite(side.a) and math.isfinite(side.b)):
            raise SpecError(f"{where}: robin 'a' and 'b' must be finite")
        if side.a == 0 and side.b == 0:
            raise SpecError(f"{where}: robin with a = b = 0 is not a boundary condition")
        if side.b == 0:
            return BoundaryCondition("dirichlet", value / float(side.a), 1.0, 0.0)
        return BoundaryCondition("robin", value, float(side.a), float(side.b))
    if side.a is not None or side.b is not None:
        raise SpecError(f"{where}: 'a' and 'b' are only for robin conditions")
    if side.type == "dirichlet":
        return BoundaryCondition("dirichlet", value, 1.0, 0.0)
    return BoundaryCondition("neumann", value, 0.0, 1.0)
