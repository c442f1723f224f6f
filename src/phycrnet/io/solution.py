"""Reading and writing solution files (netCDF via xarray).

A solution file holds one data variable per field, each with dims ``("t", "y", "x")``
and shape ``(T, ny, nx)``, and the 1-D float64 coordinates ``t`` (including t = 0),
``y`` and ``x`` (docs/design.md, "Grid convention" and "Output format"). Global attributes:

``spec``             the problem specification as YAML text
``solver``           solver name (``"phycrnet"``, ``"pinn"``, ``"classical"``, ``"py-pde reference"``, ``"spectral reference"``)
``phycrnet_version`` package version that wrote the file
``wall_seconds``     wall-clock seconds of the run
``iterations``       training iterations / solver steps
``loss_terms``       final loss terms as JSON text (name -> value)
``periodic_x``, ``periodic_y``  1 if the axis is periodic, else 0
``created``          ISO 8601 creation time (UTC)

netCDF attributes can only be strings and numbers, so dicts and lists are stored as
JSON text (read them back with :func:`decode_json_attr`), booleans as 0/1, and
``None`` values are left out.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from phycrnet._version import __version__
from phycrnet.errors import DataError

if TYPE_CHECKING:
    from phycrnet.spec.problem import Problem

__all__ = [
    "FIELD_DIMS",
    "solution_dataset",
    "write_solution",
    "read_solution",
    "validate_solution",
    "fields_of",
    "decode_json_attr",
    "periodic_of",
    "package_version",
]

#: Dimension order of every field variable.
FIELD_DIMS: tuple[str, str, str] = ("t", "y", "x")

_COORD_NAMES: tuple[str, str, str] = ("t", "y", "x")
_ENGINES: tuple[str, ...] = ("netcdf4", "h5netcdf", "scipy")


# --------------------------------------------------------------------------- attributes


def package_version() -> str:
    """The phycrnet version that writes the file."""
    return __version__


def _json_default(value: Any) -> Any:
    """Make numpy scalars/arrays and other objects JSON-encodable (``json.dumps`` hook)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, _dt.datetime, _dt.date)):
        return str(value)
    raise TypeError(f"object of type {type(value).__name__} is not JSON serialisable")


def _attr_value(name: str, value: Any) -> str | int | float | None:
    """Convert one attribute value to a netCDF-compatible str/int/float (None: drop it)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    if isinstance(value, str):
        return value
    if isinstance(value, (Mapping, list, tuple, np.ndarray)):
        try:
            return json.dumps(value, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise DataError(f"attribute '{name}' cannot be stored as JSON: {exc}") from None
    if isinstance(value, (Path, _dt.datetime, _dt.date)):
        return str(value)
    raise DataError(
        f"attribute '{name}' has unsupported type {type(value).__name__} "
        "(use str, number, bool, list or dict)"
    )


def _clean_attrs(attrs: Mapping[str, Any]) -> dict[str, str | int | float]:
    """Return ``attrs`` with every value converted by :func:`_attr_value`, ``None`` dropped."""
    cleaned: dict[str, str | int | float] = {}
    for name, value in attrs.items():
        converted = _attr_value(str(name), value)
        if converted is not None:
            cleaned[str(name)] = converted
    return cleaned


def decode_json_attr(ds: xr.Dataset, name: str, default: Any = None) -> Any:
    """Return attribute ``name`` of ``ds`` decoded from JSON text.

    Missing attributes give ``default``; numbers are returned unchanged. Raises
    :class:`DataError` if the attribute is a string that is not valid JSON.
    """
    value = ds.attrs.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        return value.item() if isinstance(value, np.generic) else value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        raise DataError(f"attribute '{name}' is not valid JSON: {value[:60]!r}") from None


def periodic_of(ds: xr.Dataset) -> tuple[bool, bool]:
    """Return ``(periodic_x, periodic_y)`` from the dataset attributes (missing: False)."""
    return (_flag(ds.attrs.get("periodic_x")), _flag(ds.attrs.get("periodic_y")))


def _flag(value: Any) -> bool:
    """Interpret a stored 0/1 (or bool, or "true"/"false") attribute as a bool."""
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(np.asarray(value).item())


# --------------------------------------------------------------------------- building


def _coordinate(name: str, values: Any, *, strictly_increasing: bool = True) -> np.ndarray:
    """Validate a coordinate: 1-D, non-empty, finite float64, strictly increasing."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"coordinate '{name}' is not numeric") from None
    if array.ndim != 1 or array.size == 0:
        raise DataError(
            f"coordinate '{name}' must be a non-empty 1-D array, got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise DataError(f"coordinate '{name}' contains NaN or infinite values")
    if strictly_increasing and array.size > 1 and np.any(np.diff(array) <= 0):
        raise DataError(f"coordinate '{name}' must be strictly increasing")
    return array


def _field_array(name: str, values: Any, shape: tuple[int, int, int]) -> np.ndarray:
    """Validate one field array against the expected shape ``(T, ny, nx)``."""
    try:
        array = np.asarray(values)
    except (TypeError, ValueError):
        raise DataError(f"field '{name}' is not an array") from None
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise DataError(f"field '{name}' must be real-valued, got dtype {array.dtype}")
    if array.shape != shape:
        raise DataError(
            f"field '{name}' has shape {array.shape}, expected (T, ny, nx) = {shape}"
        )
    return array if np.issubdtype(array.dtype, np.floating) else array.astype(np.float64)


def trained_solution(
    problem: Any,
    frames: np.ndarray,
    times: Any,
    *,
    solver: str,
    result: Any,
    attrs: Mapping[str, Any],
) -> xr.Dataset:
    """The solution of a trained network (PhyCRNet or PINN) in the output format.

    Args:
        problem: the :class:`~phycrnet.spec.Problem` that was solved.
        frames: ``(T, C, ny, nx)`` in the problem's field order.
        times: the frames' times ``(T,)``.
        solver: ``"phycrnet"`` or ``"pinn"``.
        result: the training result; its ``seconds``, ``iterations``, ``loss_terms``,
            ``stopped_by``, ``best_loss`` (if any) and learned ``parameters`` are recorded.
        attrs: the solver's own attributes (its configuration, device, ...).
    """
    standard: dict[str, Any] = {"t_train_end": problem.t_end, "stopped_by": result.stopped_by}
    if getattr(result, "best_loss", None) is not None:
        standard["best_loss"] = result.best_loss
    if result.parameters:
        standard["identified_parameters"] = json.dumps(result.parameters)
    return solution_dataset(
        {name: frames[:, c] for c, name in enumerate(problem.fields)},
        times,
        problem.grid.x.points,
        problem.grid.y.points,
        solver=solver,
        spec_yaml=problem.to_yaml(),
        periodic=problem.periodic,
        wall_seconds=result.seconds,
        iterations=result.iterations,
        loss_terms=result.loss_terms,
        attrs={**standard, **attrs},
    )


def problem_dataset(
    problem: Problem,
    frames: np.ndarray,
    *,
    solver: str,
    wall_seconds: float,
    iterations: int,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """:func:`solution_dataset` of ``problem``'s fields, frames and nodes from frames of shape
    ``(T, C, ny, nx)`` (fields in the problem's order), with its spec and periodic axes."""
    return solution_dataset(
        {name: frames[:, c] for c, name in enumerate(problem.fields)},
        problem.times,
        problem.grid.x.points,
        problem.grid.y.points,
        solver=solver,
        spec_yaml=problem.to_yaml(),
        periodic=problem.periodic,
        wall_seconds=wall_seconds,
        iterations=iterations,
        attrs=attrs,
    )


def solution_dataset(
    fields: Mapping[str, np.ndarray],
    t: Any,
    x: Any,
    y: Any,
    *,
    solver: str,
    spec_yaml: str | None = None,
    periodic: tuple[bool, bool] = (False, False),
    wall_seconds: float | None = None,
    iterations: int | None = None,
    loss_terms: Mapping[str, float] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Build a solution dataset in the package's output format.

    Args:
        fields: field name -> array of shape ``(T, ny, nx)`` (``len(t), len(y), len(x)``).
        t: output times, shape ``(T,)``, strictly increasing, including t = 0.
        x: node x coordinates, shape ``(nx,)``, strictly increasing.
        y: node y coordinates, shape ``(ny,)``, strictly increasing.
        solver: solver name stored in attribute ``solver``.
        spec_yaml: problem specification as YAML text (attribute ``spec``).
        periodic: ``(periodic_x, periodic_y)``, stored as 0/1 attributes.
        wall_seconds: wall-clock run time in seconds.
        iterations: number of training iterations / solver steps.
        loss_terms: final loss terms (stored as JSON text).
        attrs: further attributes; dict/list values are JSON-encoded, bools stored as
            0/1, ``None`` values dropped. They override the standard ones.

    Returns:
        A dataset with one float variable per field, dims ``("t", "y", "x")``.

    Raises:
        DataError: empty ``fields``, bad coordinates or a field of the wrong shape.
    """
    if not fields:
        raise DataError("a solution needs at least one field")
    t_arr = _coordinate("t", t)
    x_arr = _coordinate("x", x)
    y_arr = _coordinate("y", y)
    data_vars = _data_variables(fields, (t_arr.size, y_arr.size, x_arr.size))
    standard = _standard_attrs(
        solver=solver,
        spec_yaml=spec_yaml,
        periodic=periodic,
        wall_seconds=wall_seconds,
        iterations=iterations,
        loss_terms=loss_terms,
    )
    standard.update(attrs or {})
    coords = {"t": ("t", t_arr), "y": ("y", y_arr), "x": ("x", x_arr)}
    return xr.Dataset(data_vars, coords=coords, attrs=_clean_attrs(standard))


def _data_variables(
    fields: Mapping[str, np.ndarray], shape: tuple[int, int, int]
) -> dict[str, tuple[tuple[str, ...], np.ndarray]]:
    """The field variables with dims ``("t", "y", "x")``, each validated against ``shape``."""
    data_vars: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
    for name, values in fields.items():
        if not isinstance(name, str) or not name or name in _COORD_NAMES:
            raise DataError(f"invalid field name {name!r} (must be a string other than t, x, y)")
        data_vars[name] = (FIELD_DIMS, _field_array(name, values, shape))
    return data_vars


def _standard_attrs(
    *,
    solver: str,
    spec_yaml: str | None,
    periodic: tuple[bool, bool],
    wall_seconds: float | None,
    iterations: int | None,
    loss_terms: Mapping[str, float] | None,
) -> dict[str, Any]:
    """The attributes every solution carries (module docstring), before conversion."""
    return {
        "spec": spec_yaml,
        "solver": solver,
        "phycrnet_version": package_version(),
        "wall_seconds": None if wall_seconds is None else float(wall_seconds),
        "iterations": None if iterations is None else int(iterations),
        "loss_terms": None if loss_terms is None else {k: float(v) for k, v in loss_terms.items()},
        "periodic_x": bool(periodic[0]),
        "periodic_y": bool(periodic[1]),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- writing


def _available_engine() -> str:
    """Return the first installed xarray netCDF engine among netcdf4, h5netcdf, scipy."""
    modules = {"netcdf4": "netCDF4", "h5netcdf": "h5netcdf", "scipy": "scipy.io"}
    for engine in _ENGINES:
        try:
            __import__(modules[engine])
        except ImportError:
            continue
        return engine
    raise DataError("cannot write netCDF: install netCDF4, h5netcdf or scipy")


def write_solution(ds: xr.Dataset, path: str | os.PathLike[str]) -> Path:
    """Write ``ds`` to the netCDF file ``path`` atomically and return the path.

    The data are written to a hidden temporary file in the destination directory and
    then moved into place with :func:`os.replace`, so readers never see a partial file
    and an existing file is only replaced by a complete one. Parent directories are
    created. Attributes are converted to netCDF-compatible values first.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.tmp")
    out = ds.copy(deep=False)
    out.attrs = _clean_attrs(ds.attrs)
    try:
        out.to_netcdf(tmp, engine=_available_engine())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


# --------------------------------------------------------------------------- reading


def fields_of(ds: xr.Dataset) -> list[str]:
    """Names of the data variables whose dims are exactly t, y, x (in any order)."""
    wanted = set(FIELD_DIMS)
    return [
        str(name)
        for name, var in ds.data_vars.items()
        if var.ndim == 3 and set(var.dims) == wanted
    ]


def validate_solution(ds: xr.Dataset, *, source: str = "dataset") -> xr.Dataset:
    """Check that ``ds`` is a solution dataset and return it in canonical form.

    Canonical form: float64 coordinates ``t``, ``y``, ``x`` and every field with dims
    ``("t", "y", "x")``. ``source`` (a path or a name) starts the error messages.

    Raises:
        DataError: a missing or invalid coordinate, or no field with dims (t, y, x).
    """
    for name in _COORD_NAMES:
        if name not in ds.coords:
            raise DataError(f"{source}: not a phycrnet solution file: missing coordinate '{name}'")
        coord = ds.coords[name]
        if coord.dims != (name,):
            raise DataError(f"{source}: coordinate '{name}' must be 1-D along dim '{name}'")
        try:
            values = _coordinate(name, coord.values)
        except DataError as exc:
            raise DataError(f"{source}: {exc}") from None
        ds = ds.assign_coords({name: (name, values)})
    names = fields_of(ds)
    if not names:
        raise DataError(f"{source}: not a phycrnet solution file: no variable with dims (t, y, x)")
    for name in names:
        if ds[name].dims != FIELD_DIMS:
            ds[name] = ds[name].transpose(*FIELD_DIMS)
    return ds


def read_solution(path: str | os.PathLike[str]) -> xr.Dataset:
    """Read a solution file fully into memory (the file is closed on return).

    Returns:
        The dataset in canonical form (see :func:`validate_solution`); its
        ``encoding["source"]`` is the path.

    Raises:
        DataError: the file is missing, not readable as netCDF, or not a solution file.
    """
    source = Path(path)
    if not source.exists():
        raise DataError(f"{source}: not found")
    if source.is_dir():
        raise DataError(f"{source}: is a directory, expected a netCDF file")
    try:
        with xr.open_dataset(source, decode_times=False) as opened:
            ds = opened.load()
    except Exception as exc:  # backends raise ValueError, OSError, KeyError, ...
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{source}: not a readable netCDF file ({reason[:120]})") from None
    ds = validate_solution(ds, source=str(source))
    ds.encoding["source"] = str(source)
    return ds
