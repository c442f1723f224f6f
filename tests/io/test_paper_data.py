"""Reader of the paper's COMSOL CSV files (phycrnet.paper_data).

The files themselves are not shipped with the package. The tests that need them look in
``$PHYCRNET_PAPER_DATA`` or ``/work/shared/reference/data`` and skip when neither holds them;
the format tests use small files written on the fly.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from phycrnet.io.paper_data import PAPER_DATA, paper_file, read_case_data, read_paper_csv, read_paper_long
from phycrnet.spec.catalog import list_cases

_CANDIDATES = [os.environ.get("PHYCRNET_PAPER_DATA", ""), "/work/shared/reference/data"]
DATA_DIR = next((Path(p) for p in _CANDIDATES if p and Path(p).is_dir()), None)


def _data_file(name: str) -> Path:
    if DATA_DIR is None or not (DATA_DIR / name).is_file():
        pytest.skip(f"paper data file {name} not available")
    return DATA_DIR / name


def _write_wide(path: Path, n: int, fields: tuple[str, ...], times: list[float], keep=None) -> dict:
    """A synthetic wide file on the (n+1)^2 lattice k/n with u = x + 10 y + 100 t (+1000 for v),
    rows in a scrambled order and coordinates with float noise, like the COMSOL exports."""
    k = np.arange(n + 1) / n
    X, Y = np.meshgrid(k, k)
    x, y = X.ravel(), Y.ravel()
    order = np.random.default_rng(0).permutation(x.size)
    if keep is not None:
        order = order[:keep]
    x, y = x[order], y[order]
    header = ["X", "Y"]
    columns = [x * (1 + 3e-16), y - 1e-16]
    for t in times:
        for j, f in enumerate(fields):
            header.append(f"{f} (1) @ t={t:g}")
            columns.append(x + 10 * y + 100 * t + 1000 * j)
    lines = [",".join(header)] + [",".join(repr(float(c[i])) for c in columns) for i in range(x.size)]
    path.write_text("\n".join(lines) + "\n")
    return {"x": x, "y": y}


def test_mapping_names_catalog_cases():
    assert set(PAPER_DATA) <= set(list_cases())
    for case, info in PAPER_DATA.items():
        assert info["file"] in info["files"], case
        assert info["fields"] in (("u",), ("u", "v")), case
        assert isinstance(info["swap_xy"], bool), case
    assert PAPER_DATA["burgers_periodic"]["swap_xy"] and PAPER_DATA["burgers_flux"]["swap_xy"]
    assert not PAPER_DATA["burgers_mixed"]["swap_xy"]


def test_wide_grid_file_is_gridded_and_sorted(tmp_path):
    path = tmp_path / "synthetic.csv"
    _write_wide(path, 4, ("u", "v"), [0.0, 0.05, 0.1])
    ds = read_paper_csv(path, fields=("u", "v"))
    assert dict(ds.sizes) == {"t": 3, "y": 5, "x": 5}
    assert ds.u.dims == ("t", "y", "x")
    np.testing.assert_array_equal(ds.x.values, np.arange(5) / 4)   # snapped exactly to k/4
    np.testing.assert_allclose(ds.t.values, [0.0, 0.05, 0.1])
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    for k, t in enumerate(ds.t.values):
        np.testing.assert_allclose(ds.u.values[k], X + 10 * Y + 100 * t, atol=1e-12)
        np.testing.assert_allclose(ds.v.values[k], X + 10 * Y + 100 * t + 1000, atol=1e-12)


def test_swap_xy_transposes(tmp_path):
    path = tmp_path / "synthetic.csv"
    _write_wide(path, 4, ("u",), [0.0, 0.05])
    plain = read_paper_csv(path)
    swapped = read_paper_csv(path, swap_xy=True)
    np.testing.assert_array_equal(swapped.u.values, plain.u.values.transpose(0, 2, 1))


def test_subset_file_gives_nodes(tmp_path):
    path = tmp_path / "subset.csv"
    nodes = _write_wide(path, 8, ("u",), [0.0, 0.05], keep=17)
    ds = read_paper_csv(path)
    assert dict(ds.sizes) == {"t": 2, "node": 17}
    assert ds.u.dims == ("t", "node")
    np.testing.assert_allclose(ds.u.values[1], ds.x.values + 10 * ds.y.values + 5, atol=1e-12)
    assert sorted(zip(ds.x.values, ds.y.values)) == sorted(zip(np.round(nodes["x"] * 8) / 8, np.round(nodes["y"] * 8) / 8))
    long = read_paper_long(path, ("w",))
    assert list(long.columns) == ["t", "x", "y", "w"] and len(long) == 34


def test_field_count_mismatch_is_an_error(tmp_path):
    path = tmp_path / "synthetic.csv"
    _write_wide(path, 2, ("u", "v"), [0.0])
    with pytest.raises(ValueError, match="variable"):
        read_paper_csv(path, fields=("u",))


def test_allen_cahn_periodic_file():
    ds = read_paper_csv(_data_file("allen_cahn_periodic.csv"), fields=("u",))
    u = ds.u.values
    assert u.shape == (41, 33, 33)
    np.testing.assert_allclose(ds.t.values, 0.05 * np.arange(41), atol=1e-12)
    np.testing.assert_array_equal(ds.x.values, np.arange(33) / 32)
    X, Y = np.meshgrid(ds.x.values, ds.y.values)
    # COMSOL projects the initial value: it matches the formula to 1.2e-6
    np.testing.assert_allclose(u[0], 0.5 * (np.sin(4 * np.pi * X) + np.sin(4 * np.pi * Y)), atol=2e-6)
    np.testing.assert_allclose(u[:, :, 0], u[:, :, -1], atol=1e-12)   # periodic in x
    np.testing.assert_allclose(u[:, 0, :], u[:, -1, :], atol=1e-12)   # periodic in y


def test_shuffled_and_raw_files_agree():
    raw = read_paper_csv(_data_file("Allencahn_update3.csv"))
    shuffled = read_paper_csv(_data_file("Allencahn_update3_100%.csv"))
    np.testing.assert_allclose(shuffled.u.values, raw.u.values, atol=1e-14)


def test_long_training_file_matches_wide_subset():
    wide = read_paper_csv(_data_file("burgersuv_flux0.1_20%.csv"), swap_xy=True)
    long = read_paper_csv(_data_file("burgersuv_flux0.1_20%_training.csv"), swap_xy=True)
    assert dict(wide.sizes) == dict(long.sizes) == {"t": 41, "node": 218}
    np.testing.assert_allclose(long.t.values, wide.t.values, atol=1e-9)
    np.testing.assert_allclose(long.u.values, wide.u.values)
    np.testing.assert_allclose(long.v.values, wide.v.values)


def test_65_node_subset_lattice():
    ds = read_paper_csv(_data_file("Diffusion_reaction_5%.csv"))
    scaled = ds.x.values * 64
    np.testing.assert_array_equal(scaled, np.round(scaled))
    assert np.any(np.round(scaled) % 2 == 1)   # genuinely on the 1/64 lattice


def test_read_case_data_for_every_mapped_case():
    if DATA_DIR is None:
        pytest.skip("paper data not available")
    for case, info in PAPER_DATA.items():
        try:
            paper_file(case, DATA_DIR)
        except FileNotFoundError:
            continue
        ds = read_case_data(case, DATA_DIR)
        assert tuple(ds.data_vars) == info["fields"]
        assert dict(ds.sizes) == {"t": 41, "y": 33, "x": 33}, case


def test_unknown_case_lists_cases():
    with pytest.raises(KeyError, match="allen_cahn_periodic"):
        paper_file("no_such_case", DATA_DIR or ".")
