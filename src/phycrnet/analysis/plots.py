"""Figures and animations of solution datasets.

All functions render off-screen with matplotlib's Agg canvas (``Figure`` +
``FigureCanvasAgg``; pyplot's global state and backend are never touched) and import
matplotlib lazily, so importing this module is cheap. Datasets are solution datasets
(see :mod:`phycrnet.io`): fields with dims ``("t", "y", "x")``, coordinates t, y, x.
Panels are drawn with ``pcolormesh`` at the node coordinates (x horizontal, y
vertical, equal aspect), so non-uniform or different grids are shown faithfully.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from phycrnet.analysis.metrics import field_at
from phycrnet.errors import DataError, OptionsError
from phycrnet.io.solution import fields_of, validate_solution

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_snapshots", "animate", "plot_error_curves", "plot_comparison", "snapshot_indices"]

_DPI = 100
_PANEL_INCHES = 2.6
_DEFAULT_FRAMES = 5


# --------------------------------------------------------------------------- helpers


def _figure(width: float, height: float) -> Figure:
    """A new off-screen figure (Agg canvas, constrained layout), size in inches."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PNG to ``path`` (parent directories created) and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, format="png", dpi=_DPI)
    return target


def _color_range(*arrays: np.ndarray) -> tuple[float, float]:
    """Common (vmin, vmax) over the finite values of ``arrays`` (never an empty range)."""
    finite = [a[np.isfinite(a)] for a in arrays]
    finite = [a for a in finite if a.size]
    if not finite:
        return 0.0, 1.0
    lo = float(min(a.min() for a in finite))
    hi = float(max(a.max() for a in finite))
    if hi <= lo:
        pad = max(1e-12, 1e-6 * abs(lo))
        lo, hi = lo - pad, hi + pad
    return lo, hi


def _mesh(
    ax: Axes,
    x: np.ndarray,
    y: np.ndarray,
    values: np.ndarray,
    vmin: float,
    vmax: float,
    cmap: str,
) -> Any:
    """Draw ``values`` (shape ``(ny, nx)``) at nodes (x, y) on ``ax``; return the QuadMesh."""
    mesh = ax.pcolormesh(x, y, values, shading="nearest", vmin=vmin, vmax=vmax, cmap=cmap)
    ax.set_aspect("equal")
    return mesh


def snapshot_indices(
    t: np.ndarray, times: Sequence[float] | None = None, count: int = _DEFAULT_FRAMES
) -> list[int]:
    """Frame indices to show: nearest frames to ``times``, or ``count`` evenly spread frames.

    Args:
        t: the dataset's times, shape ``(T,)``, increasing.
        times: requested times; each must lie within ``[t[0], t[-1]]`` (tolerance
            ``1e-8 * max(1, |t|)``). Duplicates after rounding to frames are removed.
        count: number of frames when ``times`` is None (at most T), first and last included.

    Raises:
        DataError: a requested time outside the data's time range.
    """
    t = np.asarray(t, dtype=np.float64)
    if times is None:
        n = min(count, t.size)
        return sorted({int(i) for i in np.round(np.linspace(0, t.size - 1, n))})
    indices: list[int] = []
    for value in times:
        tol = 1e-8 * max(1.0, abs(float(value)))
        if value < t[0] - tol or value > t[-1] + tol:
            raise DataError(
                f"time t={value:g} is outside the data's time range [{t[0]:g}, {t[-1]:g}]"
            )
        index = int(np.argmin(np.abs(t - value)))
        if index not in indices:
            indices.append(index)
    return indices


def _default_prefix(ds: xr.Dataset) -> str:
    """File-name prefix: stem of the file the dataset was read from, else ``"solution"``."""
    source = ds.encoding.get("source")
    return Path(source).stem if source else "solution"


def _field_values(ds: xr.Dataset, name: str) -> np.ndarray:
    """Field ``name`` as a float64 array of shape ``(T, ny, nx)``."""
    return np.asarray(ds[name].transpose("t", "y", "x").values, dtype=np.float64)


def _label_axes(ax: Axes, *, xlabel: bool = True, ylabel: bool = True) -> None:
    """Label the x/y axes of a field panel."""
    if xlabel:
        ax.set_xlabel("x")
    if ylabel:
        ax.set_ylabel("y")


# --------------------------------------------------------------------------- snapshots


def plot_snapshots(
    ds: xr.Dataset,
    out_dir: str | os.PathLike[str],
    *,
    times: Sequence[float] | None = None,
    prefix: str | None = None,
) -> list[Path]:
    """Write one PNG per field: a row of panels at several times.

    Args:
        ds: solution dataset.
        out_dir: output directory (created if needed).
        times: times to show (nearest frames); default 5 frames evenly spread over
            the data, first and last included.
        prefix: file-name prefix; default the stem of the file ``ds`` was read from,
            else ``"solution"``. Files are named ``<prefix>_<field>.png``.

    Returns:
        The written paths, in field order. All panels of one field share one colour
        scale and colorbar; each panel is titled with its time.
    """
    ds = validate_solution(ds)
    t = ds["t"].values
    indices = snapshot_indices(t, times)
    x, y = ds["x"].values, ds["y"].values
    prefix = prefix or _default_prefix(ds)
    written = []
    for name in fields_of(ds):
        frames = _field_values(ds, name)[indices]
        vmin, vmax = _color_range(frames)
        fig = _figure(_PANEL_INCHES * len(indices) + 0.8, _PANEL_INCHES + 0.4)
        axes = fig.subplots(1, len(indices), squeeze=False)[0]
        meshes = []
        for k, (ax, index) in enumerate(zip(axes, indices)):
            meshes.append(_mesh(ax, x, y, frames[k], vmin, vmax, "viridis"))
            ax.set_title(f"t = {t[index]:.4g}")
            _label_axes(ax, ylabel=k == 0)
        fig.colorbar(meshes[-1], ax=list(axes), label=name, shrink=0.9)
        fig.suptitle(name)
        written.append(_save(fig, Path(out_dir) / f"{prefix}_{name}.png"))
    return written


# --------------------------------------------------------------------------- animation


def _movie_writer(path: Path, fps: int) -> Any:
    """A matplotlib movie writer for ``path``: Pillow for .gif, ffmpeg for .mp4."""
    from matplotlib import animation

    suffix = path.suffix.lower()
    if suffix == ".gif":
        return animation.PillowWriter(fps=fps)
    if suffix == ".mp4":
        if not animation.writers.is_available("ffmpeg"):
            raise OptionsError(f"{path}: writing MP4 needs ffmpeg; use a .gif file instead")
        return animation.FFMpegWriter(fps=fps)
    raise OptionsError(f"{path}: animation must be a .gif or .mp4 file")


def animate(
    ds: xr.Dataset,
    path: str | os.PathLike[str],
    *,
    fps: int = 8,
    max_frames: int | None = 200,
) -> Path:
    """Write an animation of all fields side by side over time.

    Args:
        ds: solution dataset.
        path: output file, ``.gif`` (Pillow) or ``.mp4`` (needs ffmpeg); parent
            directories are created.
        fps: frames per second.
        max_frames: if the data have more frames, an evenly spaced subset (first and
            last included) is shown; None shows all.

    Returns:
        ``path``. Each field has a fixed colour scale over the whole run and a colorbar;
        the figure title shows the current time.
    """
    ds = validate_solution(ds)
    target = Path(path)
    if fps <= 0:
        raise OptionsError(f"fps must be positive, got {fps}")
    writer = _movie_writer(target, fps)
    t = ds["t"].values
    count = t.size if max_frames is None else min(t.size, max(1, max_frames))
    indices = snapshot_indices(t, None, count=count)
    x, y = ds["x"].values, ds["y"].values
    names = fields_of(ds)
    data = [_field_values(ds, name)[indices] for name in names]
    fig = _figure(_PANEL_INCHES * len(names) + 0.8 * len(names), _PANEL_INCHES + 0.5)
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    meshes = []
    for k, (ax, name, frames) in enumerate(zip(axes, names, data)):
        vmin, vmax = _color_range(frames)
        meshes.append(_mesh(ax, x, y, frames[0], vmin, vmax, "viridis"))
        ax.set_title(name)
        _label_axes(ax, ylabel=k == 0)
        fig.colorbar(meshes[-1], ax=ax, shrink=0.85)
    title = fig.suptitle("")
    target.parent.mkdir(parents=True, exist_ok=True)
    with writer.saving(fig, str(target), dpi=_DPI):
        for frame, index in enumerate(indices):
            for mesh, frames in zip(meshes, data):
                mesh.set_array(frames[frame].ravel())
            title.set_text(f"t = {t[index]:.4g}")
            writer.grab_frame()
    return target


# --------------------------------------------------------------------------- curves


def plot_error_curves(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | os.PathLike[str],
    *,
    ylabel: str = "rel L2 error",
    xlabel: str = "t",
    logy: bool = True,
) -> Path:
    """Line plot of several labelled curves, written as PNG.

    Args:
        curves: label -> ``(x, y)`` arrays of equal length (e.g. times and errors).
        path: output PNG path (parent directories created).
        ylabel, xlabel: axis labels.
        logy: logarithmic y axis (only if some y value is positive; non-positive
            values are then not drawn).

    Returns:
        ``path``.
    """
    fig = _figure(6.0, 4.0)
    ax = fig.subplots()
    any_positive = False
    for label, (xs, ys) in curves.items():
        xs, ys = np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)
        if xs.shape != ys.shape:
            raise ValueError(f"curve '{label}': x and y shapes differ: {xs.shape} vs {ys.shape}")
        any_positive = any_positive or bool(np.any(ys > 0))
        ax.plot(xs, ys, marker="o" if xs.size <= 30 else None, markersize=3, label=label)
    if logy and any_positive:
        ax.set_yscale("log", nonpositive="mask")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="both", alpha=0.3)
    if curves:
        ax.legend()
    return _save(fig, path)


# --------------------------------------------------------------------------- comparison


def plot_comparison(
    ref: xr.Dataset,
    preds: Mapping[str, xr.Dataset],
    path: str | os.PathLike[str],
    *,
    field: str,
    times: Sequence[float] | None = None,
) -> Path:
    """Grid of panels comparing predictions with a reference, written as PNG.

    Rows are times (nearest reference frames to ``times``, default 5 evenly spread);
    columns are the reference, each prediction, then ``|prediction - reference|`` for
    each prediction. Predictions are brought onto the reference's grid and times with
    :func:`phycrnet.analysis.metrics.field_at` (cubic regridding, periodic wrap, linear in
    time). Values share one colour scale, errors another.

    Raises:
        DataError: ``field`` missing from a dataset, or a prediction not covering the
            shown times or the reference domain.
    """
    rows = _comparison_rows(ref, preds, field, times)
    errors = {label: np.abs(values - rows.reference) for label, values in rows.predictions.items()}
    columns = [_Column("reference", rows.reference, False)]
    columns += [_Column(label, values, False) for label, values in rows.predictions.items()]
    columns += [_Column(f"|{label} - ref|", error, True) for label, error in errors.items()]
    fig = _figure(_PANEL_INCHES * len(columns) + 1.2, _PANEL_INCHES * len(rows.times) + 0.4)
    _draw_comparison(fig, rows, columns, field)
    fig.suptitle(field)
    return _save(fig, path)


@dataclass(frozen=True)
class _ComparisonRows:
    """The frames shown by :func:`plot_comparison`, all on the reference's nodes.

    ``reference`` and each prediction have shape ``(rows, ny, nx)``.
    """

    times: np.ndarray
    x: np.ndarray
    y: np.ndarray
    reference: np.ndarray
    predictions: dict[str, np.ndarray]


@dataclass(frozen=True)
class _Column:
    """One column of the comparison grid: its title, frames and whether they are errors."""

    title: str
    frames: np.ndarray
    is_error: bool


def _comparison_rows(
    ref: xr.Dataset, preds: Mapping[str, xr.Dataset], field: str, times: Sequence[float] | None
) -> _ComparisonRows:
    """Validate the datasets and bring every prediction onto the reference's rows."""
    ref = validate_solution(ref, source="reference")
    if field not in fields_of(ref):
        raise DataError(f"field '{field}' is not in the reference")
    t_ref = ref["t"].values
    indices = snapshot_indices(t_ref, times)
    t_rows = t_ref[indices]
    x, y = ref["x"].values, ref["y"].values
    predictions = {}
    for label, ds in preds.items():
        ds = validate_solution(ds, source=label)
        if field not in fields_of(ds):
            raise DataError(f"field '{field}' is not in '{label}'")
        predictions[label] = field_at(ds, field, t_rows, x, y, time_interp=True)
    return _ComparisonRows(t_rows, x, y, _field_values(ref, field)[indices], predictions)


def _draw_comparison(fig: Figure, rows: _ComparisonRows, columns: Sequence[_Column], field: str) -> None:
    """Draw the panels (rows: times, columns: ``columns``) and one colour bar per scale."""
    vmin, vmax = _color_range(rows.reference, *rows.predictions.values())
    _, emax = _color_range(np.zeros(1), *(c.frames for c in columns if c.is_error))
    n_rows, n_cols = len(rows.times), len(columns)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    value_mesh = error_mesh = None
    for row in range(n_rows):
        for col, column in enumerate(columns):
            ax = axes[row, col]
            if column.is_error:
                error_mesh = _mesh(ax, rows.x, rows.y, column.frames[row], 0.0, emax, "magma")
            else:
                value_mesh = _mesh(ax, rows.x, rows.y, column.frames[row], vmin, vmax, "viridis")
            if row == 0:
                ax.set_title(column.title)
            _label_axes(ax, xlabel=row == n_rows - 1, ylabel=False)
            if col == 0:
                ax.set_ylabel(f"t = {rows.times[row]:.4g}\ny")
    n_values = 1 + len(rows.predictions)
    if value_mesh is not None:
        fig.colorbar(value_mesh, ax=[axes[r, c] for r in range(n_rows) for c in range(n_values)], label=field, shrink=0.8)
    if error_mesh is not None:
        error_axes = [axes[r, c] for r in range(n_rows) for c in range(n_values, n_cols)]
        fig.colorbar(error_mesh, ax=error_axes, label=f"|error| of {field}", shrink=0.8)
