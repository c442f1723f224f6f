"""Readers for the COMSOL ground-truth CSV files of PhyCRNet-FDM (Li, Lu, Liu 2025).

The authors' repository (IMMDLab/PhyCRNet_FDM, folder ``Data/``) ships its reference
solutions in two CSV layouts:

* **wide** (``X,Y,<var> @ t=<t>,...``): one row per spatial node, one column per
  (time, variable). Single-field files have ``u (1) @ t=..`` columns; two-field files
  alternate u and v per time (``u (1) @ t=..,v (1) @ t=..`` or ``u @ t=..,v @ t=..``).
  Full files hold all 33 x 33 nodes x, y in {0, 1/32, ..., 1} (boundaries included) in
  COMSOL mesh order (``*_100%`` files: shuffled rows); ``*_20%``/``_10%``/``_5%`` files
  keep a random subset of the nodes, the same at every time. A few files come from a
  65 x 65 run (x = k/64).
* **long** (``*_training.csv``, ``X,Y,T,U[,V]``): the wide file reshaped time-major.

Coordinates in the files carry float noise (0.0937499999999999); the readers snap them
to the node lattice k/N, with N inferred from the data.

Axis convention of the output: ``x`` is the CSV ``X`` column and ``y`` the ``Y`` column,
unless ``swap_xy=True``, in which case ``x`` = CSV ``Y`` and ``y`` = CSV ``X``. The
``burgersuv_*`` files need the swap: in CSV coordinates they satisfy
``u_t + v u_X + u u_Y = nu*Lap(u)``, i.e. the textbook Burgers equation with X and Y
exchanged. Exchanging the coordinates (fields unchanged) turns them into
``u_t + u u_x + v u_y = nu*Lap(u)``, the orientation of the catalog cases.

Gridded results are :class:`xarray.Dataset` objects with dims ``(t, y, x)`` (the package's
output format); node subsets come back with dims ``(t, node)`` and ``x``, ``y``
coordinates on ``node``. :func:`read_paper_long` returns the long table
``t, x, y, <fields>`` that the package uses for observations.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

__all__ = [
    "PAPER_DATA",
    "DATA_DIR_ENV",
    "paper_data_dir",
    "paper_file",
    "read_paper_csv",
    "read_paper_long",
    "read_case_data",
]

#: Environment variable naming a folder that holds the paper's ``Data/`` files.
DATA_DIR_ENV = "PHYCRNET_PAPER_DATA"

#: Catalog case -> the paper's data files for it.
#:
#: ``file`` is the full-grid wide file to compare against; ``files`` lists every related
#: file of the authors' ``Data/`` folder (shuffled copies, node subsets, long versions),
#: whether or not a given copy of the data contains it. ``fields`` names the variables
#: in column order and ``swap_xy`` says whether the CSV axes must be exchanged to match
#: the catalog's (standard) orientation.
PAPER_DATA: dict[str, dict] = {
    "allen_cahn_periodic": {
        "file": "allen_cahn_periodic.csv",
        "files": ("allen_cahn_periodic.csv", "allen_cahn_periodic_100%.csv",
                  "allen_cahn_periodic_100%_training.csv"),
        "fields": ("u",),
        "swap_xy": False,
    },
    "allen_cahn_zero_flux": {
        "file": "allen_cahn_zero_flux.csv",
        "files": ("allen_cahn_zero_flux.csv", "allen_cahn_zero_flux_100%.csv",
                  "allen_cahn_zero_flux_100%_training.csv"),
        "fields": ("u",),
        "swap_xy": False,
    },
    "allen_cahn_flux": {
        "file": "allen_cahn_flux0.1.csv",
        "files": ("allen_cahn_flux0.1.csv", "allen_cahn_flux0.1_100%.csv",
                  "allen_cahn_flux0.1_100%_training.csv"),
        "fields": ("u",),
        "swap_xy": False,
    },
    "allen_cahn_mixed": {
        "file": "Allencahn_update3.csv",
        # The authors' Allencahn_update3_100%_training.csv is mislabelled (built with the
        # two-field reshaper from single-field data); it is deliberately not listed.
        "files": ("Allencahn_update3.csv", "Allencahn_update3_100%.csv"),
        "fields": ("u",),
        "swap_xy": False,
    },
    "burgers_periodic": {
        "file": "burgersuv_periodic.csv",
        "files": ("burgersuv_periodic.csv", "burgersuv_periodic_100%.csv",
                  "burgersuv_periodic_100%_training.csv"),
        "fields": ("u", "v"),
        "swap_xy": True,
    },
    "burgers_flux": {
        "file": "burgersuv_flux0.1.csv",
        "files": ("burgersuv_flux0.1.csv", "burgersuv_flux0.1_100%.csv",
                  "burgersuv_flux0.1_20%.csv", "burgersuv_flux0.1_10%.csv",
                  "burgersuv_flux0.1_5%.csv", "burgersuv_flux0.1_100%_training.csv",
                  "burgersuv_flux0.1_20%_training.csv",
                  "burgersuv_flux0.1_10%_training.csv",
                  "burgersuv_flux0.1_5%_training.csv"),
        "fields": ("u", "v"),
        "swap_xy": True,
    },
    "burgers_mixed": {
        "file": "burgers_update1.csv",
        "files": ("burgers_update1.csv", "burgers_update1_100%.csv",
                  "burgers_update1_20%.csv", "burgers_update1_100%_training.csv",
                  "burgers_update1_20%_training.csv"),
        "fields": ("u", "v"),
        "swap_xy": False,
    },
    "diffusion_reaction_mixed": {
        "file": "Diffusion_reaction_update.csv",
        "files": ("Diffusion_reaction_update.csv", "Diffusion_reaction_update_100%.csv",
                  "Diffusion_reaction_update_20%.csv",
                  "Diffusion_reaction_update_100%_training.csv",
                  "Diffusion_reaction_update_20%_training.csv"),
        "fields": ("u", "v"),
        "swap_xy": False,
    },
    "heat_flux": {
        "file": "heat_equation_flux0.1_time0.5.csv",
        "files": ("heat_equation_flux0.1_time0.5.csv",
                  "heat_equation_flux0.1_time0.5_100%.csv",
                  "heat_equation_flux0.1_time0.5_100%_training.csv"),
        "fields": ("u",),
        "swap_xy": False,
    },
}

_WIDE_COLUMN = re.compile(r"^\s*(?P<var>[^@]+?)\s*@\s*t\s*=\s*(?P<t>[-+0-9.eE]+)\s*$")
_UNIT_SUFFIX = re.compile(r"\s*\(\d+\)\s*$")  # COMSOL's "u (1)" -> "u"
_MAX_LATTICE = 1024
_LATTICE_TOL = 1e-6


def paper_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Folder holding the paper's CSV files: ``data_dir``, else ``$PHYCRNET_PAPER_DATA``."""
    if data_dir is None:
        data_dir = os.environ.get(DATA_DIR_ENV)
        if not data_dir:
            raise FileNotFoundError(
                f"no paper data folder given; pass data_dir or set {DATA_DIR_ENV}")
    path = Path(data_dir)
    if not path.is_dir():
        raise FileNotFoundError(f"paper data folder not found: {path}")
    return path


def paper_file(case: str, data_dir: str | os.PathLike | None = None) -> Path:
    """Path of the full-grid data file for catalog ``case`` (must exist)."""
    if case not in PAPER_DATA:
        raise KeyError(f"no paper data for case {case!r}; "
                       f"cases with data: {', '.join(sorted(PAPER_DATA))}")
    path = paper_data_dir(data_dir) / PAPER_DATA[case]["file"]
    if not path.is_file():
        raise FileNotFoundError(f"paper data file not found: {path}")
    return path


def read_case_data(case: str, data_dir: str | os.PathLike | None = None) -> xr.Dataset:
    """The paper's ground truth for catalog ``case``, in the catalog's orientation."""
    path = paper_file(case, data_dir)
    info = PAPER_DATA[case]
    return read_paper_csv(path, fields=info["fields"], swap_xy=info["swap_xy"])


def read_paper_long(path: str | os.PathLike, fields: Sequence[str] | None = None,
                    swap_xy: bool = False) -> pd.DataFrame:
    """Read a paper CSV (wide or long layout) as a long table.

    Returns a DataFrame with columns ``t, x, y, <fields...>``, one row per (time, node),
    sorted by t, then y, then x; coordinates snapped to the node lattice.
    ``fields`` renames the variables in column order (default: the file's names,
    lower-cased and without COMSOL's ``(1)`` suffix).
    """
    raw = pd.read_csv(path)
    cols = [str(c).strip() for c in raw.columns]
    if len(cols) < 3 or cols[0].upper() != "X" or cols[1].upper() != "Y":
        raise ValueError(f"{path}: expected the header to start with X,Y, got {cols[:3]}")
    if cols[2].upper() == "T":
        long = _long_from_long(raw, cols, fields, path)
    else:
        long = _long_from_wide(raw, cols, fields, path)
    if swap_xy:
        long = long.rename(columns={"x": "y", "y": "x"})
    names = [c for c in long.columns if c not in ("t", "x", "y")]
    long = long[["t", "x", "y", *names]]
    return long.sort_values(["t", "y", "x"], kind="stable").reset_index(drop=True)


def read_paper_csv(path: str | os.PathLike, *, fields: Sequence[str] | None = None,
                   swap_xy: bool = False) -> xr.Dataset:
    """Read a paper CSV as an :class:`xarray.Dataset`.

    A file with every node of a square lattice (33 x 33 or 65 x 65) gives variables with
    dims ``(t, y, x)``; a node subset (``*_20%`` etc.) gives dims ``(t, node)`` with
    ``x`` and ``y`` coordinates on ``node``. ``t`` comes from the header (0, 0.05, ..., 2).
    See :func:`read_paper_long` for ``fields`` and the module docstring for ``swap_xy``.
    """
    long = read_paper_long(path, fields, swap_xy)
    names = [c for c in long.columns if c not in ("t", "x", "y")]
    times = np.unique(long["t"].to_numpy())
    first = long[long["t"] == times[0]]
    nodes = first[["x", "y"]].to_numpy()
    xs, ys = np.unique(nodes[:, 0]), np.unique(nodes[:, 1])
    attrs = {"source": str(Path(path).name), "swap_xy": int(bool(swap_xy))}
    if len(first) == len(xs) * len(ys) and len(first) == len(long) // len(times):
        # full lattice: sorted by (t, y, x), so a plain reshape gives (t, y, x)
        lattice = {n: (("t", "y", "x"), long[n].to_numpy().reshape(len(times), len(ys), len(xs))) for n in names}
        return xr.Dataset(lattice, coords={"t": times, "y": ys, "x": xs}, attrs=attrs)
    n_node = len(first)
    if len(long) != n_node * len(times):
        raise ValueError(f"{path}: nodes differ between times")
    data = {n: (("t", "node"), long[n].to_numpy().reshape(len(times), n_node)) for n in names}
    coords = {"t": times, "x": ("node", first["x"].to_numpy()),
              "y": ("node", first["y"].to_numpy())}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _long_from_wide(raw: pd.DataFrame, cols: list[str], fields: Sequence[str] | None,
                    path) -> pd.DataFrame:
    """Reshape a wide table (``X,Y,<var> @ t=..``) into ``t, x, y, <vars>``."""
    keys = []
    for c in cols[2:]:
        m = _WIDE_COLUMN.match(c)
        if m is None:
            raise ValueError(f"{path}: cannot parse column header {c!r}")
        keys.append((_UNIT_SUFFIX.sub("", m["var"]).strip(), float(m["t"])))
    variables = list(dict.fromkeys(v for v, _ in keys))
    names = _field_names(variables, fields, path)
    times = sorted({round(t, 9) for _, t in keys})
    x, y = _snap(raw.iloc[:, 0].to_numpy(float)), _snap(raw.iloc[:, 1].to_numpy(float))
    position = {(v, round(t, 9)): i + 2 for i, (v, t) in enumerate(keys)}
    blocks = []
    for t in times:
        block = {"t": np.full(len(raw), t), "x": x, "y": y}
        for var, name in zip(variables, names):
            if (var, t) not in position:
                raise ValueError(f"{path}: no column for {var} at t={t}")
            block[name] = raw.iloc[:, position[(var, t)]].to_numpy(float)
        blocks.append(pd.DataFrame(block))
    return pd.concat(blocks, ignore_index=True)


def _long_from_long(raw: pd.DataFrame, cols: list[str], fields: Sequence[str] | None,
                    path) -> pd.DataFrame:
    """Normalise a long table (``X,Y,T,U[,V]``) into ``t, x, y, <vars>``."""
    names = _field_names([c.lower() for c in cols[3:]], fields, path)
    out = pd.DataFrame({"t": np.round(raw.iloc[:, 2].to_numpy(float), 9),
                        "x": _snap(raw.iloc[:, 0].to_numpy(float)),
                        "y": _snap(raw.iloc[:, 1].to_numpy(float))})
    for i, name in enumerate(names):
        out[name] = raw.iloc[:, 3 + i].to_numpy(float)
    return out


def _field_names(variables: list[str], fields: Sequence[str] | None, path) -> list[str]:
    if fields is None:
        return [v.lower() for v in variables]
    fields = [fields] if isinstance(fields, str) else list(fields)
    if len(fields) != len(variables):
        raise ValueError(f"{path}: file holds {len(variables)} variable(s) "
                         f"{variables}, but fields={fields}")
    return fields


def _snap(values: np.ndarray) -> np.ndarray:
    """Snap coordinates in [0, 1] to the coarsest lattice k/N they lie on.

    Files outside [0, 1] (e.g. the Dendrite case) or off every lattice up to 1/1024 keep
    their values, rounded to 12 decimals.
    """
    if values.size and values.min() > -_LATTICE_TOL and values.max() < 1 + _LATTICE_TOL:
        for n in range(1, _MAX_LATTICE + 1):
            scaled = values * n
            if np.all(np.abs(scaled - np.round(scaled)) < _LATTICE_TOL * n):
                return np.round(scaled) / n
    return np.round(values, 12)
