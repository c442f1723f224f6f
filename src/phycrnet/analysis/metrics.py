"""Error metrics between a predicted and a reference solution.

Both inputs are solution datasets (see :mod:`phycrnet.io`): fields with dims
``("t", "y", "x")`` and coordinates ``t``, ``y``, ``x``. Errors are computed on the
prediction's nodes: when the grids differ, the *reference* is interpolated onto the
prediction's (x, y) nodes (tensor-product cubic, linear on axes with fewer than 4
nodes; periodic axes are wrapped). Times are matched exactly (tolerance
``1e-8 * max(1, |t|)``); optionally the reference can be interpolated linearly in time.

All norms are discrete, unweighted 2-norms over the compared nodes (and frames):
``rel_l2 = ||pred - ref||_2 / ||ref||_2``.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy.interpolate import RegularGridInterpolator

from phycrnet.errors import DataError
from phycrnet.io.solution import fields_of, periodic_of, validate_solution

__all__ = [
    "rel_l2",
    "evaluate",
    "common_times",
    "field_at",
    "regrid",
    "same_coords",
]

#: Relative tolerance for matching times: |t1 - t2| <= TIME_RTOL * max(1, |t|).
TIME_RTOL = 1e-8
#: Relative tolerance (to max(1, domain span)) for points outside the reference domain.
SPACE_RTOL = 1e-9
#: Ghost nodes added on each side of a periodic axis before interpolating.
_PERIODIC_GHOSTS = 16


# --------------------------------------------------------------------------- norms


def rel_l2(a: np.ndarray, b: np.ndarray) -> float:
    """Relative 2-norm error ``||a - b||_2 / ||b||_2`` over all entries.

    ``a`` and ``b`` must have the same shape; ``b`` is the reference. If ``||b||_2 == 0``
    the absolute error ``||a - b||_2`` is returned instead.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_l2: shapes differ: {a.shape} vs {b.shape}")
    value, _ = _relative(float(np.linalg.norm(a - b)), float(np.linalg.norm(b)))
    return value


def _relative(err_norm: float, ref_norm: float) -> tuple[float, bool]:
    """Return ``(err_norm / ref_norm, True)``, or ``(err_norm, False)`` if ``ref_norm == 0``."""
    if ref_norm == 0.0:
        return err_norm, False
    return err_norm / ref_norm, True


# --------------------------------------------------------------------------- times


def _time_tol(t: np.ndarray) -> np.ndarray:
    """Matching tolerance for each time in ``t``."""
    return TIME_RTOL * np.maximum(1.0, np.abs(t))


def _match(t_query: np.ndarray, t_src: np.ndarray) -> np.ndarray:
    """Index into ``t_src`` (sorted) of each query time, or -1 where none is within tolerance."""
    last = t_src.size - 1
    idx = np.searchsorted(t_src, t_query)
    left, right = np.clip(idx - 1, 0, last), np.clip(idx, 0, last)
    nearest = np.where(np.abs(t_src[left] - t_query) <= np.abs(t_src[right] - t_query), left, right)
    ok = np.abs(t_src[nearest] - t_query) <= _time_tol(t_query)
    return np.where(ok, nearest, -1)


def _check_in_range(t_query: np.ndarray, t_src: np.ndarray, *, what: str, of: str) -> None:
    """Raise DataError naming the first query time outside ``[t_src[0], t_src[-1]]``."""
    tol = _time_tol(t_query)
    outside = (t_query < t_src[0] - tol) | (t_query > t_src[-1] + tol)
    if np.any(outside):
        bad = float(t_query[np.argmax(outside)])
        raise DataError(
            f"{what} time t={bad:g} is outside the {of} time range "
            f"[{float(t_src[0]):g}, {float(t_src[-1]):g}]"
        )


def common_times(
    t_pred: np.ndarray, t_ref: np.ndarray, *, time_interp: bool = False
) -> tuple[np.ndarray, str]:
    """Times at which a prediction is compared with a reference.

    Args:
        t_pred: prediction times, shape ``(Tp,)``, increasing.
        t_ref: reference times, shape ``(Tr,)``, increasing.
        time_interp: allow prediction times between reference frames (the reference
            is then interpolated linearly in time).

    Returns:
        ``(t, mode)``: the compared times and ``"same"`` (identical time axes),
        ``"common"`` (one axis is a subset of the other; the shared times) or
        ``"interpolated"`` (the prediction's times, reference interpolated).

    Raises:
        DataError: a prediction time outside the reference time range, or (without
            ``time_interp``) a prediction time that is not a reference time while the
            reference times are not all prediction times either.
    """
    t_pred = np.asarray(t_pred, dtype=np.float64)
    t_ref = np.asarray(t_ref, dtype=np.float64)
    if t_pred.shape == t_ref.shape and np.all(np.abs(t_pred - t_ref) <= _time_tol(t_ref)):
        return t_pred, "same"
    _check_in_range(t_pred, t_ref, what="prediction", of="reference")
    pred_in_ref = _match(t_pred, t_ref)
    if np.all(pred_in_ref >= 0):
        return t_pred, "common"
    if np.all(_match(t_ref, t_pred) >= 0):
        return t_ref, "common"
    if time_interp:
        return t_pred, "interpolated"
    bad = float(t_pred[np.argmax(pred_in_ref < 0)])
    raise DataError(
        f"prediction time t={bad:g} is not a reference time "
        "(no common time axis; interpolate the reference in time to compare)"
    )


@dataclass(frozen=True)
class _FrameWeights:
    """Linear-in-time selection: frame k = (1 - w[k]) * v[lo[k]] + w[k] * v[hi[k]]."""

    lo: np.ndarray
    hi: np.ndarray
    w: np.ndarray

    def apply(self, values: np.ndarray) -> np.ndarray:
        """Select/interpolate frames of ``values`` (shape ``(T, ...)``)."""
        exact = self.w == 0.0
        if np.all(exact):
            return values[self.lo]
        w = self.w.reshape((-1,) + (1,) * (values.ndim - 1))
        return (1.0 - w) * values[self.lo] + w * values[self.hi]


def _frame_weights(t_src: np.ndarray, t_query: np.ndarray, *, time_interp: bool) -> _FrameWeights:
    """Frames of ``t_src`` giving each ``t_query`` (exact match, or linear if allowed)."""
    _check_in_range(t_query, t_src, what="requested", of="dataset")
    matched = _match(t_query, t_src)
    if np.all(matched >= 0):
        return _FrameWeights(matched, matched, np.zeros(t_query.size))
    if not time_interp:
        bad = float(t_query[np.argmax(matched < 0)])
        raise DataError(f"time t={bad:g} is not a frame of the dataset")
    hi = np.clip(np.searchsorted(t_src, t_query), 1, max(t_src.size - 1, 1))
    lo = hi - 1
    span = np.where(t_src[hi] > t_src[lo], t_src[hi] - t_src[lo], 1.0)
    w = np.clip((t_query - t_src[lo]) / span, 0.0, 1.0)
    w = np.where(matched >= 0, 0.0, w)
    lo = np.where(matched >= 0, matched, lo)
    return _FrameWeights(lo, hi, w)


# --------------------------------------------------------------------------- space


def same_coords(a: np.ndarray, b: np.ndarray) -> bool:
    """True if two 1-D coordinate arrays have the same length and values (tol 1e-9 rel)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return False
    scale = max(1.0, float(np.max(np.abs(b))) if b.size else 1.0)
    return bool(np.all(np.abs(a - b) <= SPACE_RTOL * scale))


def _periodic_extend(
    values: np.ndarray, coord: np.ndarray, axis: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Add periodic ghost copies on both sides of ``axis``.

    The axis follows the periodic convention ``x_i = x0 + i*L/N``, so the period is
    ``L = N * (x[-1] - x[0]) / (N - 1)``. Returns ``(values_ext, coord_ext, L)``.
    """
    n = coord.size
    if n < 2:
        raise DataError("a periodic axis needs at least 2 nodes to interpolate")
    period = n * (coord[-1] - coord[0]) / (n - 1)
    g = min(n, _PERIODIC_GHOSTS)
    coord_ext = np.concatenate([coord[n - g:] - period, coord, coord[:g] + period])
    before = np.take(values, np.arange(n - g, n), axis=axis)
    after = np.take(values, np.arange(g), axis=axis)
    return np.concatenate([before, values, after], axis=axis), coord_ext, period


def _query_coord(name: str, dst: np.ndarray, src: np.ndarray, period: float | None) -> np.ndarray:
    """Map target coordinates into the source domain and check they lie inside it.

    The domain is ``[x0, x_last]`` on a non-periodic axis and ``[x0, x0 + period]`` on a
    periodic one (where points are then wrapped into ``[x0, x0 + period)``).
    """
    end = src[-1] if period is None else src[0] + period
    tol = SPACE_RTOL * max(1.0, float(end - src[0]), float(np.max(np.abs(src))))
    outside = (dst < src[0] - tol) | (dst > end + tol)
    if np.any(outside):
        bad = float(dst[np.argmax(outside)])
        raise DataError(
            f"point {name}={bad:g} lies outside the reference domain "
            f"{name} in [{float(src[0]):g}, {float(end):g}]"
        )
    if period is not None:
        return src[0] + np.mod(dst - src[0], period)
    return np.clip(dst, src[0], src[-1])


def _spline_options(method: str) -> dict[str, Any]:
    """Extra ``RegularGridInterpolator`` options: an exact sparse solve for splines.

    Since SciPy 1.13 the spline methods fit the coefficients with an iterative solver
    whose default tolerance (~1e-6) limits the accuracy; a direct solve makes the
    interpolant exact at the nodes. Older SciPy versions fit exactly already.
    """
    if method == "linear" or "solver" not in inspect.signature(RegularGridInterpolator).parameters:
        return {}
    from scipy.sparse.linalg import spsolve

    return {"solver": spsolve}


def regrid(
    values: np.ndarray,
    x_src: np.ndarray,
    y_src: np.ndarray,
    x_dst: np.ndarray,
    y_dst: np.ndarray,
    *,
    periodic: tuple[bool, bool] = (False, False),
) -> np.ndarray:
    """Interpolate frames given on one rectangular grid onto another.

    Args:
        values: source data, shape ``(T, ny_src, nx_src)`` (or ``(ny_src, nx_src)``).
        x_src, y_src: source node coordinates, shapes ``(nx_src,)``, ``(ny_src,)``.
        x_dst, y_dst: target node coordinates, shapes ``(nx_dst,)``, ``(ny_dst,)``.
        periodic: ``(periodic_x, periodic_y)`` of the *source* grid; periodic axes are
            extended with ghost copies and target points are wrapped into the period.

    Returns:
        Array of shape ``(T, ny_dst, nx_dst)`` (or ``(ny_dst, nx_dst)``). Identical
        grids return a copy of ``values`` without interpolating.

    Method: ``RegularGridInterpolator`` with ``"cubic"`` (tensor-product cubic
    spline) if every (extended) axis has at least 4 nodes, otherwise ``"linear"``.

    Raises:
        DataError: a target point outside a non-periodic source axis (tolerance
            ``1e-9 * max(1, span)``).
    """
    values = np.asarray(values, dtype=np.float64)
    single = values.ndim == 2
    frames = values[None] if single else values
    x_src, y_src = np.asarray(x_src, np.float64), np.asarray(y_src, np.float64)
    x_dst, y_dst = np.asarray(x_dst, np.float64), np.asarray(y_dst, np.float64)
    if frames.shape[1:] != (y_src.size, x_src.size):
        raise DataError(
            f"regrid: values shape {values.shape} does not match "
            f"(ny, nx) = ({y_src.size}, {x_src.size})"
        )
    if same_coords(x_dst, x_src) and same_coords(y_dst, y_src):
        return values.copy()
    data = np.moveaxis(frames, 0, -1)  # (ny, nx, T): trailing dims are interpolated together
    x_grid, y_grid = x_src, y_src
    x_period = y_period = None
    if periodic[0]:
        data, x_grid, x_period = _periodic_extend(data, x_src, axis=1)
    if periodic[1]:
        data, y_grid, y_period = _periodic_extend(data, y_src, axis=0)
    xq = _query_coord("x", x_dst, x_src, x_period)
    yq = _query_coord("y", y_dst, y_src, y_period)
    method = "cubic" if min(x_grid.size, y_grid.size) >= 4 else "linear"
    if min(x_grid.size, y_grid.size) < 2:
        raise DataError("cannot interpolate from a grid with fewer than 2 nodes along an axis")
    interp = RegularGridInterpolator(
        (y_grid, x_grid), data, method=method, **_spline_options(method)
    )
    yy, xx = np.meshgrid(yq, xq, indexing="ij")
    out = interp(np.stack([yy.ravel(), xx.ravel()], axis=-1))  # (ny_dst*nx_dst, T)
    out = np.moveaxis(out.reshape(y_dst.size, x_dst.size, -1), -1, 0)
    return out[0] if single else out


def field_at(
    ds: xr.Dataset,
    field: str,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    time_interp: bool = False,
) -> np.ndarray:
    """Values of ``ds[field]`` at times ``t`` on the grid ``(x, y)``.

    Frames are selected by exact time match (tolerance ``1e-8 * max(1, |t|)``) or, with
    ``time_interp``, interpolated linearly in time; then regridded with :func:`regrid`
    using the dataset's ``periodic_x``/``periodic_y`` attributes.

    Returns:
        float64 array of shape ``(len(t), len(y), len(x))``.

    Raises:
        DataError: unknown field, times outside the data or not frames of it (without
            ``time_interp``), points outside a non-periodic domain.
    """
    if field not in ds.data_vars:
        raise DataError(f"field '{field}' is not in the dataset")
    values = np.asarray(ds[field].transpose("t", "y", "x").values, dtype=np.float64)
    t_src = np.asarray(ds["t"].values, dtype=np.float64)
    t_query = np.atleast_1d(np.asarray(t, np.float64))
    weights = _frame_weights(t_src, t_query, time_interp=time_interp)
    frames = weights.apply(values)
    return regrid(
        frames,
        ds["x"].values,
        ds["y"].values,
        np.asarray(x, np.float64),
        np.asarray(y, np.float64),
        periodic=periodic_of(ds),
    )


# --------------------------------------------------------------------------- evaluate


def _compared_fields(pred: xr.Dataset, ref: xr.Dataset, fields: Sequence[str] | None) -> list[str]:
    """Fields to compare; raise DataError naming fields present in only one dataset."""
    pred_fields, ref_fields = fields_of(pred), fields_of(ref)
    if fields is not None:
        names = list(dict.fromkeys(fields))
        for name in names:
            for label, available in (("PRED", pred_fields), ("REF", ref_fields)):
                if name not in available:
                    have = ", ".join(available)
                    raise DataError(f"field '{name}' is not in {label} (has {have})")
        return names
    only_pred = [f for f in pred_fields if f not in ref_fields]
    only_ref = [f for f in ref_fields if f not in pred_fields]
    for missing, here, there in ((only_pred, "PRED", "REF"), (only_ref, "REF", "PRED")):
        if missing:
            quoted = ", ".join(f"'{f}'" for f in missing)
            noun = "field" if len(missing) == 1 else "fields"
            verb = "is" if len(missing) == 1 else "are"
            raise DataError(f"{noun} {quoted} {verb} in {here} but not in {there}")
    return pred_fields


def _field_metrics(p: np.ndarray, r: np.ndarray) -> dict[str, Any]:
    """Metrics of one field from prediction/reference frames of shape ``(T, ny, nx)``."""
    diff = p - r
    err_t = np.sqrt(np.sum(diff**2, axis=(1, 2)))
    ref_t = np.sqrt(np.sum(r**2, axis=(1, 2)))
    rel_t = [_relative(float(e), float(n)) for e, n in zip(err_t, ref_t)]
    overall, relative = _relative(float(np.linalg.norm(diff)), float(np.linalg.norm(r)))
    nodes = diff[0].size
    result: dict[str, Any] = {
        "rel_l2": overall,
        "rel_l2_per_time": [value for value, _ in rel_t],
        "rel_l2_final": rel_t[-1][0],
        "rmse": float(np.sqrt(np.mean(diff**2))),
        "max_abs": float(np.max(np.abs(diff))),
        "rmse_per_time": [float(e / np.sqrt(nodes)) for e in err_t],
        "relative": relative,
    }
    if not all(is_rel for _, is_rel in rel_t):
        # Frames with a zero reference norm report the absolute error instead.
        result["relative_per_time"] = [is_rel for _, is_rel in rel_t]
    return result


def evaluate(
    pred: xr.Dataset,
    ref: xr.Dataset,
    fields: Sequence[str] | None = None,
    *,
    time_interp: bool = False,
) -> dict[str, Any]:
    """Compare a predicted solution with a reference solution.

    Args:
        pred: predicted solution dataset (fields with dims t, y, x).
        ref: reference solution dataset; interpolated onto the prediction's nodes if
            the grids differ (periodic axes per its ``periodic_x``/``periodic_y``).
        fields: fields to compare; default all fields, which must be the same in both.
        time_interp: interpolate the reference linearly in time at prediction times
            that are not reference frames (see :func:`common_times`).

    Returns:
        A JSON-serialisable dict::

            {"fields": {name: {"rel_l2": float,            # over all frames and nodes
                               "rel_l2_per_time": [float],
                               "rel_l2_final": float,
                               "rmse": float, "max_abs": float,
                               "rmse_per_time": [float],
                               "relative": bool}},         # False: ||ref|| = 0, absolute
             "t": [float], "rel_l2_mean": float,
             "grid": "same" | "interpolated",
             "time": "same" | "common" | "interpolated"}

        A field whose reference vanishes at some frames also gets
        ``"relative_per_time": [bool]`` (False where the absolute error is reported).

    Raises:
        DataError: field sets differ, times cannot be matched or lie outside the
            reference's range, prediction nodes outside the reference domain.
    """
    pred = validate_solution(pred, source="PRED")
    ref = validate_solution(ref, source="REF")
    names = _compared_fields(pred, ref, fields)
    t, time_mode = common_times(pred["t"].values, ref["t"].values, time_interp=time_interp)
    x, y = pred["x"].values, pred["y"].values
    same_grid = same_coords(x, ref["x"].values) and same_coords(y, ref["y"].values)
    per_field: dict[str, dict[str, Any]] = {}
    for name in names:
        p = field_at(pred, name, t, x, y)
        r = field_at(ref, name, t, x, y, time_interp=time_interp)
        per_field[name] = _field_metrics(p, r)
    return {
        "fields": per_field,
        "t": [float(v) for v in t],
        "rel_l2_mean": float(np.mean([m["rel_l2"] for m in per_field.values()])),
        "grid": "same" if same_grid else "interpolated",
        "time": time_mode,
    }
