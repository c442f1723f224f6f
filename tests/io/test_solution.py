"""Tests of phycrnet.io: building, writing and reading solution files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from phycrnet.errors import DataError
from phycrnet.io.solution import (
    decode_json_attr,
    fields_of,
    periodic_of,
    read_solution,
    solution_dataset,
    write_solution,
)


def _dataset() -> xr.Dataset:
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 1.0, 3)
    x = np.arange(8) / 8.0  # periodic convention
    y = np.linspace(0.0, 2.0, 5)  # non-periodic: both end nodes
    fields = {"u": rng.normal(size=(3, 5, 8)), "v": rng.normal(size=(3, 5, 8)).astype(np.float32)}
    return solution_dataset(
        fields,
        t,
        x,
        y,
        solver="phycrnet",
        spec_yaml="name: demo\nequations: {u: laplace(u)}\n",
        periodic=(True, False),
        wall_seconds=12.5,
        iterations=300,
        loss_terms={"pde": 1e-3, "bc": np.float32(2e-4)},
        attrs={
            "identified_parameters": {"eps": 0.01},
            "seeds": [1, 2],
            "resumed": True,
            "note": None,
        },
    )


def test_dataset_layout_and_attributes() -> None:
    ds = _dataset()
    assert fields_of(ds) == ["u", "v"]
    assert ds["u"].dims == ("t", "y", "x")
    assert ds["t"].dtype == np.float64 and ds["t"].values[0] == 0.0
    assert ds.attrs["periodic_x"] == 1 and ds.attrs["periodic_y"] == 0
    assert ds.attrs["resumed"] == 1
    assert "note" not in ds.attrs
    assert isinstance(ds.attrs["phycrnet_version"], str) and ds.attrs["phycrnet_version"]
    for value in ds.attrs.values():
        assert isinstance(value, (str, int, float))


def test_round_trip_preserves_values_coords_attrs(tmp_path: Path) -> None:
    ds = _dataset()
    path = write_solution(ds, tmp_path / "sub" / "dir" / "sol.nc")
    assert path.is_file()
    back = read_solution(path)
    for name in ("u", "v"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
        assert back[name].dims == ("t", "y", "x")
    for name in ("t", "x", "y"):
        np.testing.assert_array_equal(back[name].values, ds[name].values)
    for key in ("spec", "solver", "phycrnet_version", "wall_seconds", "iterations", "created"):
        assert back.attrs[key] == ds.attrs[key]
    assert decode_json_attr(back, "loss_terms", {}) == pytest.approx({"pde": 1e-3, "bc": 2e-4})
    assert decode_json_attr(back, "identified_parameters") == {"eps": 0.01}
    assert decode_json_attr(back, "seeds") == [1, 2]
    assert decode_json_attr(back, "absent", "dflt") == "dflt"
    assert periodic_of(back) == (True, False)
    assert back.encoding["source"] == str(path)


def test_read_closes_file_so_it_can_be_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "sol.nc"
    write_solution(_dataset(), path)
    first = read_solution(path)
    write_solution(first, path)  # would fail if the file were still open lazily
    np.testing.assert_array_equal(read_solution(path)["u"].values, first["u"].values)


def test_atomic_write_leaves_no_temp_file(tmp_path: Path) -> None:
    write_solution(_dataset(), tmp_path / "a.nc")
    write_solution(_dataset(), tmp_path / "a.nc")  # overwrite
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nc"]


def test_failed_write_keeps_old_file_and_removes_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.nc"
    write_solution(_dataset(), path)
    before = path.read_bytes()

    def broken(self: xr.Dataset, target: Path, **kwargs: object) -> None:
        Path(target).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", broken)
    with pytest.raises(OSError):
        write_solution(_dataset(), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["a.nc"]


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        read_solution(tmp_path / "nope.nc")


def test_garbage_file_raises_one_line(tmp_path: Path) -> None:
    path = tmp_path / "junk.nc"
    path.write_bytes(b"this is not netcdf\x00\x01\x02" * 10)
    with pytest.raises(DataError) as info:
        read_solution(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_file_without_time_coordinate_raises(tmp_path: Path) -> None:
    path = tmp_path / "other.nc"
    coords = {"x": [0.0, 1, 2], "y": [0.0, 1]}
    xr.Dataset({"u": (("y", "x"), np.zeros((2, 3)))}, coords=coords).to_netcdf(path)
    with pytest.raises(DataError, match="missing coordinate 't'"):
        read_solution(path)


def test_read_transposes_fields_to_t_y_x(tmp_path: Path) -> None:
    ds = _dataset()
    path = tmp_path / "tr.nc"
    ds.transpose("x", "t", "y").to_netcdf(path)
    back = read_solution(path)
    assert back["u"].dims == ("t", "y", "x")
    np.testing.assert_array_equal(back["u"].values, ds["u"].values)


def test_shape_mismatch_raises() -> None:
    with pytest.raises(DataError, match=r"field 'u' has shape \(2, 5, 8\)"):
        solution_dataset(
            {"u": np.zeros((2, 5, 8))}, [0.0, 0.5, 1.0], np.arange(8.0), np.arange(5.0), solver="x"
        )


def test_bad_coordinates_raise() -> None:
    with pytest.raises(DataError, match="coordinate 'x' must be strictly increasing"):
        solution_dataset({"u": np.zeros((1, 2, 2))}, [0.0], [1.0, 0.0], [0.0, 1.0], solver="x")
    with pytest.raises(DataError, match="at least one field"):
        solution_dataset({}, [0.0], [0.0], [0.0], solver="x")


def test_loss_terms_are_json_text() -> None:
    ds = _dataset()
    assert json.loads(ds.attrs["loss_terms"])["pde"] == pytest.approx(1e-3)
