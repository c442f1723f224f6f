"""Tests of phycrnet.metrics: errors between predicted and reference solutions."""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pytest
import xarray as xr

from phycrnet.analysis.metrics import common_times, evaluate, field_at, regrid, rel_l2
from phycrnet.errors import DataError
from phycrnet.io.solution import solution_dataset

Func = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _smooth(t: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.sin(np.pi * x) * np.cos(np.pi * y) * np.exp(-t) + 0.3 * x * y


def _periodic(t: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    return np.sin(2 * np.pi * x + t) * np.cos(2 * np.pi * y) + 0.5 * np.sin(4 * np.pi * y)


def _sample(
    func: Func,
    t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    names: tuple[str, ...] = ("u",),
    periodic: tuple[bool, bool] = (False, False),
) -> xr.Dataset:
    tt, yy, xx = np.meshgrid(t, y, x, indexing="ij")
    fields = {name: (k + 1) * func(tt, yy, xx) for k, name in enumerate(names)}
    return solution_dataset(fields, t, x, y, solver="test", periodic=periodic)


def _unit(n: int) -> np.ndarray:
    return np.linspace(0.0, 1.0, n)


def test_rel_l2_helper() -> None:
    b = np.array([3.0, 4.0])
    assert rel_l2(b, b) == 0.0
    assert rel_l2(b + np.array([0.0, 1.0]), b) == pytest.approx(1.0 / 5.0)
    assert rel_l2(np.array([3.0, 4.0]), np.zeros(2)) == pytest.approx(5.0)  # absolute fallback


def test_identical_datasets_give_zero() -> None:
    ds = _sample(_smooth, _unit(4), _unit(9), _unit(7), names=("u", "v"))
    result = evaluate(ds, ds)
    assert result["grid"] == "same" and result["time"] == "same"
    assert result["rel_l2_mean"] == 0.0
    for metrics in result["fields"].values():
        assert metrics["rel_l2"] == 0.0 and metrics["max_abs"] == 0.0 and metrics["rmse"] == 0.0
        assert metrics["rel_l2_per_time"] == [0.0] * 4
        assert metrics["relative"] is True
    assert result["t"] == pytest.approx(list(_unit(4)))
    json.dumps(result)


def test_known_perturbation_by_hand() -> None:
    t, x, y = np.array([0.0, 1.0]), _unit(4), _unit(3)
    ref = solution_dataset({"u": np.ones((2, 3, 4))}, t, x, y, solver="ref")
    values = np.ones((2, 3, 4))
    values[0, 1, 2] += 0.5
    pred = solution_dataset({"u": values}, t, x, y, solver="pred")
    m = evaluate(pred, ref)["fields"]["u"]
    assert m["rel_l2"] == pytest.approx(0.5 / np.sqrt(24.0))
    assert m["rel_l2_per_time"] == pytest.approx([0.5 / np.sqrt(12.0), 0.0])
    assert m["rel_l2_final"] == 0.0
    assert m["rmse"] == pytest.approx(np.sqrt(0.25 / 24.0))
    assert m["rmse_per_time"] == pytest.approx([np.sqrt(0.25 / 12.0), 0.0])
    assert m["max_abs"] == pytest.approx(0.5)


def test_zero_reference_reports_absolute_error() -> None:
    t, x, y = np.array([0.0, 1.0]), _unit(4), _unit(4)
    ref_values = np.zeros((2, 4, 4))
    ref_values[1] = 1.0
    ref = solution_dataset({"u": ref_values}, t, x, y, solver="ref")
    pred = solution_dataset({"u": ref_values + 0.1}, t, x, y, solver="pred")
    m = evaluate(pred, ref)["fields"]["u"]
    assert m["relative"] is True
    assert m["relative_per_time"] == [False, True]
    assert m["rel_l2_per_time"] == pytest.approx([0.1 * 4.0, 0.1])
    zero = solution_dataset({"u": np.zeros((2, 4, 4))}, t, x, y, solver="ref")
    m0 = evaluate(pred, zero)["fields"]["u"]
    assert m0["relative"] is False
    assert m0["rel_l2"] == pytest.approx(np.sqrt(16 * 0.01 + 16 * 1.21))


def test_finer_reference_is_interpolated_and_converges() -> None:
    t = _unit(3)
    pred = _sample(_smooth, t, _unit(17), _unit(13))
    errors = []
    for n in (21, 41, 81):
        result = evaluate(pred, _sample(_smooth, t, _unit(n), _unit(n)))
        assert result["grid"] == "interpolated"
        errors.append(result["fields"]["u"]["rel_l2"])
    assert errors[0] < 1e-5
    assert errors[2] < errors[1] < errors[0]


def test_periodic_reference_wraps() -> None:
    t = _unit(2)
    ref_axis = np.arange(32) / 32.0
    pred_axis = (np.arange(20) + 0.5) / 20.0  # last node 0.975 > 31/32: beyond the stored nodes
    pred = _sample(_periodic, t, pred_axis, pred_axis, periodic=(True, True))
    ref = _sample(_periodic, t, ref_axis, ref_axis, periodic=(True, True))
    result = evaluate(pred, ref)
    assert result["fields"]["u"]["rel_l2"] < 1e-4
    ref_nonperiodic = _sample(_periodic, t, ref_axis, ref_axis)
    with pytest.raises(DataError, match="outside the reference domain"):
        evaluate(pred, ref_nonperiodic)
    wide = _sample(_periodic, t, 2.0 * pred_axis, pred_axis, periodic=(True, True))
    with pytest.raises(DataError, match=r"point x=1\.05 lies outside the reference domain"):
        evaluate(wide, ref)


def test_regrid_tiny_grid_falls_back_to_linear() -> None:
    values = np.array([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]])  # (ny=2, nx=3): x + y
    x_src, y_src = np.array([0.0, 1.0, 2.0]), np.array([0.0, 1.0])
    out = regrid(values, x_src, y_src, np.array([0.5, 1.5]), np.array([0.25]))
    np.testing.assert_allclose(out, [[0.75, 1.75]])


def test_mismatched_fields_raise() -> None:
    t, x, y = _unit(2), _unit(5), _unit(5)
    pred = _sample(_smooth, t, x, y, names=("u", "v"))
    ref = _sample(_smooth, t, x, y, names=("u",))
    with pytest.raises(DataError, match="field 'v' is in PRED but not in REF"):
        evaluate(pred, ref)
    with pytest.raises(DataError, match="field 'v' is in REF but not in PRED"):
        evaluate(ref, pred)
    assert set(evaluate(pred, ref, fields=["u"])["fields"]) == {"u"}
    with pytest.raises(DataError, match="field 'w' is not in PRED"):
        evaluate(pred, ref, fields=["w"])


def test_times_outside_reference_raise() -> None:
    x = _unit(5)
    ref = _sample(_smooth, _unit(3), x, x)
    pred = _sample(_smooth, np.array([0.0, 0.5, 1.0, 1.5]), x, x)
    with pytest.raises(DataError, match=r"t=1\.5 is outside the reference time range \[0, 1\]"):
        evaluate(pred, ref)


def test_subset_times_are_compared_on_common_times() -> None:
    x = _unit(6)
    fine = _sample(_smooth, _unit(11), x, x)
    coarse = _sample(_smooth, _unit(3), x, x)
    forward = evaluate(coarse, fine)
    assert forward["time"] == "common" and forward["t"] == pytest.approx([0.0, 0.5, 1.0])
    backward = evaluate(fine, coarse)
    assert backward["time"] == "common" and backward["t"] == pytest.approx([0.0, 0.5, 1.0])
    assert forward["fields"]["u"]["rel_l2"] == pytest.approx(0.0, abs=1e-14)


def test_times_not_in_reference_raise_unless_interpolated() -> None:
    x = _unit(6)

    def linear_in_t(t: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return (1.0 + t) * np.sin(np.pi * x) * y

    ref = _sample(linear_in_t, np.array([0.0, 0.4, 1.0]), x, x)
    pred = _sample(linear_in_t, np.array([0.0, 0.3, 1.0]), x, x)
    with pytest.raises(DataError, match=r"prediction time t=0\.3 is not a reference time"):
        evaluate(pred, ref)
    result = evaluate(pred, ref, time_interp=True)
    assert result["time"] == "interpolated"
    assert result["fields"]["u"]["rel_l2"] < 1e-12


def test_common_times_tolerance() -> None:
    t, mode = common_times(np.array([0.0, 0.1 + 1e-12]), np.array([0.0, 0.1]))
    assert mode == "same" and t.size == 2


def test_field_at_matches_direct_evaluation() -> None:
    ds = _sample(_smooth, _unit(3), _unit(41), _unit(41))
    xq, yq = np.array([0.1, 0.55]), np.array([0.3])
    got = field_at(ds, "u", np.array([0.5]), xq, yq)
    tt, yy, xx = np.meshgrid([0.5], yq, xq, indexing="ij")
    np.testing.assert_allclose(got, _smooth(tt, yy, xx), atol=1e-6)
