"""Sparse, noisy observations: reading, validating, writing and sampling them.

File format (docs/design.md, "Observations"): a CSV with the header
``t,x,y,<field>[,<field>...]`` (any order; at least one field of the problem), one
observation per row. Points need not lie on the grid: predictions are interpolated to them
with tensor-product cubic Lagrange polynomials (four nodes per axis in t, y and x; wrapped
on periodic axes), which is exact at the nodes and fourth-order accurate between them
(:func:`interpolation_stencil`; the loss is :mod:`phycrnet.losses.data`).

The paper's data files are accepted too: long tables ``X,Y,T,U[,V]`` (headers are matched
without regard to case) and wide COMSOL tables ``X,Y,u (1) @ t=...`` (converted with
:mod:`phycrnet.io.paper_data`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from phycrnet.errors import DataError, OptionsError
from phycrnet.io.paper_data import read_paper_long
from phycrnet.io.solution import fields_of, periodic_of
from phycrnet.spec.problem import Problem

__all__ = [
    "Observations",
    "read_observations",
    "write_observations",
    "sample_observations",
    "lagrange_stencil",
    "interpolation_stencil",
]

#: Number of nodes per axis in the interpolation stencil (cubic polynomials).
STENCIL_WIDTH = 4
#: Relative tolerance (to the axis span) for points on the domain's edge.
EDGE_RTOL = 1e-9
_COORDINATES = ("t", "x", "y")


@dataclass(frozen=True)
class Observations:
    """Observed values at scattered space-time points.

    Attributes:
        t, x, y: coordinates of the N points, shape ``(N,)`` (problem units).
        values: field name -> observed values, shape ``(N,)``.
        source: where they came from (for messages).
    """

    t: np.ndarray
    x: np.ndarray
    y: np.ndarray
    values: dict[str, np.ndarray]
    source: str = "observations"

    def __len__(self) -> int:
        return int(self.t.size)

    @property
    def fields(self) -> list[str]:
        return list(self.values)

    def to_frame(self) -> pd.DataFrame:
        """The table ``t, x, y, <fields>`` (the CSV layout)."""
        columns = {"t": self.t, "x": self.x, "y": self.y}
        columns.update(self.values)
        return pd.DataFrame(columns)

    def within(self, t_max: float) -> Observations:
        """The observations with ``t <= t_max`` (plus a small tolerance)."""
        keep = self.t <= t_max * (1 + 1e-9) + 1e-12
        return Observations(self.t[keep], self.x[keep], self.y[keep], {k: v[keep] for k, v in self.values.items()}, self.source)


# --------------------------------------------------------------------------- reading


def read_observations(
    source: str | Path | pd.DataFrame,
    problem: Problem,
    *,
    drop_outside_time: bool = False,
) -> Observations:
    """Read and validate observations for ``problem``.

    Args:
        source: CSV path (our format or the paper's long/wide tables) or a DataFrame.
        problem: the compiled spec (fields, domain, time window, learnable parameters).
        drop_outside_time: leave out rows later than ``t_end`` instead of rejecting them
            (the paper's files run to t = 2 while its training window ends at t = 1).

    Raises:
        DataError: a one-line message naming the file and the offending row or column:
            missing or unknown columns, non-numeric values, NaN, points outside the domain
            or the time window, no rows, or fewer points than learnable parameters.
    """
    name = "observations" if isinstance(source, pd.DataFrame) else str(source)
    table = source.copy() if isinstance(source, pd.DataFrame) else _read_table(Path(source))
    table = _normalise_columns(table, problem, name)
    _check_numeric(table, name)
    if drop_outside_time:
        table = table[table["t"] <= problem.t_end * (1 + 1e-9) + 1e-12].reset_index(drop=True)
    _check_points(table, problem, name)
    learnable = [p for p, spec in problem.parameters.items() if spec.learn]
    if len(table) < max(1, len(learnable)):
        raise DataError(
            f"{name}: {len(table)} observation(s) for {len(learnable)} learnable parameter(s); need at least as many points"
        )
    fields = [c for c in table.columns if c not in _COORDINATES]
    return Observations(
        t=table["t"].to_numpy(np.float64),
        x=table["x"].to_numpy(np.float64),
        y=table["y"].to_numpy(np.float64),
        values={f: table[f].to_numpy(np.float64) for f in fields},
        source=name,
    )


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: no such observation file")
    try:
        header = path.open(encoding="utf-8-sig").readline()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read ({exc})") from None
    if "@" in header:
        return _read_paper_wide(path)
    try:
        return pd.read_csv(path, skipinitialspace=True, encoding="utf-8-sig")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a CSV table ({str(exc).splitlines()[0]})") from None


def _read_paper_wide(path: Path) -> pd.DataFrame:
    try:
        return read_paper_long(path)
    except (ValueError, KeyError) as exc:
        raise DataError(f"{path}: not a readable wide table ({exc})") from None


def _normalise_columns(table: pd.DataFrame, problem: Problem, name: str) -> pd.DataFrame:
    """Map headers onto ``t, x, y`` and field names (exact match first, then ignoring case)."""
    wanted = list(_COORDINATES) + list(problem.fields)
    by_lower: dict[str, list[str]] = {}
    for w in wanted:
        by_lower.setdefault(w.lower(), []).append(w)
    renamed: dict[str, str] = {}
    for column in table.columns:
        label = str(column).strip()
        if label in wanted:
            target = label
        elif len(by_lower.get(label.lower(), [])) == 1:
            target = by_lower[label.lower()][0]
        else:
            raise DataError(
                f"{name}: unknown column {label!r} (expected t, x, y and fields of the problem: {', '.join(problem.fields)})"
            )
        if target in renamed.values():
            raise DataError(f"{name}: column {target!r} appears twice")
        renamed[column] = target
    table = table.rename(columns=renamed)
    for coordinate in _COORDINATES:
        if coordinate not in table.columns:
            raise DataError(f"{name}: missing column {coordinate!r} (the header must be t,x,y,<field>...)")
    if not any(f in table.columns for f in problem.fields):
        raise DataError(f"{name}: no field column (expected at least one of {', '.join(problem.fields)})")
    if table.empty:
        raise DataError(f"{name}: no observations (the file has a header but no rows)")
    return table[[c for c in wanted if c in table.columns]]


def _row(index: int) -> str:
    """Human row number: data rows count from 1 (line ``index + 2`` of a CSV with header)."""
    return f"row {index + 1} (line {index + 2})"


def _check_numeric(table: pd.DataFrame, name: str) -> None:
    for column in table.columns:
        numeric = pd.to_numeric(table[column], errors="coerce")
        bad = numeric.isna() & table[column].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"{name}: {_row(i)}, column {column!r}: {table[column].iloc[i]!r} is not a number")
        table[column] = numeric.astype(np.float64)
        missing = ~np.isfinite(table[column].to_numpy())
        if missing.any():
            i = int(np.flatnonzero(missing)[0])
            raise DataError(f"{name}: {_row(i)}, column {column!r}: value is {table[column].iloc[i]} (NaN or infinite)")


def _check_points(table: pd.DataFrame, problem: Problem, name: str) -> None:
    if table.empty:
        raise DataError(f"{name}: no observations inside the time window [0, {problem.t_end:g}]")
    limits = {
        "t": (0.0, problem.t_end, "time window"),
        "x": (problem.grid.x.start, problem.grid.x.end, "domain"),
        "y": (problem.grid.y.start, problem.grid.y.end, "domain"),
    }
    for column, (lo, hi, what) in limits.items():
        values = table[column].to_numpy()
        tol = EDGE_RTOL * max(1.0, hi - lo)
        outside = (values < lo - tol) | (values > hi + tol)
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise DataError(f"{name}: {_row(i)}: {column} = {values[i]:g} is outside the {what} [{lo:g}, {hi:g}]")


def write_observations(observations: Observations, path: str | Path) -> Path:
    """Write ``t,x,y,<fields>`` CSV atomically (full float precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    observations.to_frame().to_csv(partial, index=False, float_format="%.17g")
    partial.replace(path)
    return path


# --------------------------------------------------------------------------- sampling


def sample_observations(
    solution: xr.Dataset,
    *,
    fraction: float,
    noise: float = 0.0,
    seed: int = 0,
    fields: Sequence[str] | None = None,
    t_max: float | None = None,
    off_grid: bool = False,
) -> Observations:
    """Draw sparse noisy observations from a gridded solution.

    Points are uniform in space-time: ``round(fraction * T*ny*nx)`` distinct grid nodes
    (frames ``t <= t_max``), or as many uniformly random off-grid points interpolated with
    the same cubic stencils (``off_grid=True``). Each value gets independent Gaussian noise
    of standard deviation ``noise * std(field)``, the field's standard deviation over the
    sampled frames. Every observation carries all ``fields`` (default: all of them).
    """
    if not 0 < fraction <= 1:
        raise OptionsError(f"--fraction: {fraction} must be in (0, 1]")
    if noise < 0:
        raise OptionsError(f"--noise: {noise} must be >= 0")
    names = list(fields) if fields else fields_of(solution)
    unknown = [f for f in names if f not in solution.data_vars]
    if unknown:
        raise OptionsError(f"--fields: {', '.join(unknown)} not in the solution (it has {', '.join(fields_of(solution))})")
    if t_max is not None:
        solution = solution.sel(t=solution.t[solution.t <= t_max * (1 + 1e-9) + 1e-12])
    t, y, x = (solution[c].to_numpy() for c in ("t", "y", "x"))
    if t.size == 0:
        raise OptionsError(f"--t-max: no frame at or before t = {t_max}")
    count = max(1, int(round(fraction * t.size * y.size * x.size)))
    rng = np.random.default_rng(seed)
    arrays = {f: solution[f].transpose("t", "y", "x").to_numpy().astype(np.float64) for f in names}
    if off_grid:
        pt, py, px, clean = _off_grid_values(solution, arrays, count, rng)
    else:
        flat = rng.choice(t.size * y.size * x.size, size=count, replace=False)
        it, iy, ix = np.unravel_index(np.sort(flat), (t.size, y.size, x.size))
        pt, py, px = t[it], y[iy], x[ix]
        clean = {f: a[it, iy, ix] for f, a in arrays.items()}
    noisy = {f: v + noise * float(arrays[f].std()) * rng.standard_normal(v.size) for f, v in clean.items()}
    return Observations(pt, px, py, noisy, source="sample")


def _off_grid_values(solution: xr.Dataset, arrays: dict[str, np.ndarray], count: int, rng: np.random.Generator):
    t, y, x = (solution[c].to_numpy() for c in ("t", "y", "x"))
    periodic_x, periodic_y = periodic_of(solution)
    pt = rng.uniform(t[0], t[-1], count)
    py = _uniform_on_axis(y, periodic_y, count, rng)
    px = _uniform_on_axis(x, periodic_x, count, rng)
    index, weight = interpolation_stencil(
        (pt, py, px), (UniformAxis.of(t, False), UniformAxis.of(y, periodic_y), UniformAxis.of(x, periodic_x))
    )
    return pt, py, px, {f: (a.reshape(-1)[index] * weight).sum(axis=1) for f, a in arrays.items()}


def _uniform_on_axis(nodes: np.ndarray, periodic: bool, count: int, rng: np.random.Generator) -> np.ndarray:
    if periodic and nodes.size > 1:
        return rng.uniform(nodes[0], nodes[0] + nodes.size * (nodes[1] - nodes[0]), count)
    return rng.uniform(nodes[0], nodes[-1], count)


# --------------------------------------------------------------------------- interpolation


@dataclass(frozen=True)
class UniformAxis:
    """Uniform nodes ``start + i*step`` for ``i < n``; periodic axes have period ``n*step``."""

    start: float
    step: float
    n: int
    periodic: bool

    @classmethod
    def of(cls, nodes: np.ndarray, periodic: bool) -> UniformAxis:
        step = float(nodes[1] - nodes[0]) if nodes.size > 1 else 1.0
        return cls(float(nodes[0]), step, int(nodes.size), periodic)


def lagrange_stencil(
    s: np.ndarray, n: int, periodic: bool, width: int = STENCIL_WIDTH
) -> tuple[np.ndarray, np.ndarray]:
    """Node indices and weights of a Lagrange interpolant in index coordinates.

    Args:
        s: query positions in units of the node spacing (node i is at s = i), shape ``(N,)``.
        n: number of nodes; ``periodic`` axes wrap with period n.
        width: nodes per stencil (degree ``width - 1``), at most ``n``.

    Returns:
        ``(index, weight)``, each ``(N, width)``: value = sum(weight * node_value[index]).
        Stencils are centred on the query point and shifted inwards at the ends of
        non-periodic axes.
    """
    s = np.asarray(s, dtype=np.float64)
    width = min(width, n) if not periodic else width
    base = np.floor(s).astype(np.int64) - (width - 1) // 2
    if not periodic:
        base = np.clip(base, 0, n - width)
    offsets = np.arange(width)
    local = s[:, None] - base[:, None]  # query position relative to the stencil's first node
    weight = np.ones((s.size, width))
    for j in range(width):
        for m in range(width):
            if m != j:
                weight[:, j] *= (local[:, 0] - m) / (j - m)
    index = base[:, None] + offsets[None, :]
    if periodic:
        index %= n
    return index, weight


def interpolation_stencil(
    points: Sequence[np.ndarray], axes: Sequence[UniformAxis]
) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices ``(N, K)`` and weights into a C-ordered array over ``axes`` (tensor product)."""
    index = np.zeros((points[0].size, 1), dtype=np.int64)
    weight = np.ones((points[0].size, 1))
    for p, axis in zip(points, axes):
        i, w = lagrange_stencil((np.asarray(p) - axis.start) / axis.step, axis.n, axis.periodic)
        index = (index[:, :, None] * axis.n + i[:, None, :]).reshape(index.shape[0], -1)
        weight = (weight[:, :, None] * w[:, None, :]).reshape(weight.shape[0], -1)
    return index, weight
