"""Initial values of a problem: expressions, files, and smooth random fields."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from phycrnet.errors import SpecError
from phycrnet.spec.expressions import evaluate, parse_expression
from phycrnet.spec.grid import Grid
from phycrnet.spec.schema import FileInitialModel, RandomInitialModel


def initial_field(
    name: str, raw: Any, *, grid: Grid, fields: Sequence[str], parameters: Mapping[str, float], source_dir: Path
) -> np.ndarray:
    """Initial value of field ``name`` on ``grid``, shape ``(ny, nx)``, float64.

    ``raw`` is an expression (or number) in x, y and the ``parameters``, a ``{file: path}``
    entry (``.npy`` array or ``.nc`` solution file on the same grid, relative paths from
    ``source_dir``) or a ``{random: {seed, scale, length, mean}}`` entry.
    """
    where = f"initial.{name}"
    if isinstance(raw, RandomInitialModel):
        values = gaussian_random_field(grid, raw.random.seed, raw.random.length, where) * raw.random.scale
        values = values + raw.random.mean
    elif isinstance(raw, FileInitialModel):
        values = _from_file(grid, fields, name, source_dir / Path(raw.file), where)
    else:
        values = _from_expression(grid, parameters, raw, where)
    values = np.broadcast_to(np.asarray(values, dtype=np.float64), grid.shape).copy()
    if not np.all(np.isfinite(values)):
        raise SpecError(f"{where}: initial value is not finite everywhere on the grid")
    return values


def _from_expression(grid: Grid, parameters: Mapping[str, float], raw: Any, where: str) -> np.ndarray:
    names = set(parameters) | {"x", "y", "t"}
    expr = parse_expression(raw, where=where, names=names, allow_operators=False)
    x, y = grid.mesh()
    with np.errstate(all="ignore"):
        return evaluate(expr, {"x": x, "y": y, "t": 0.0, **parameters})


def _from_file(grid: Grid, fields: Sequence[str], name: str, path: Path, where: str) -> np.ndarray:
    if not path.is_file():
        raise SpecError(f"{where}.file: {str(path)!r} not found")
    if path.suffix == ".npy":
        values = np.load(path, allow_pickle=False)
        if values.ndim == 3 and values.shape[0] == len(fields):
            values = values[list(fields).index(name)]
    elif path.suffix == ".nc":
        with xr.open_dataset(path) as ds:
            if name not in ds:
                raise SpecError(f"{where}.file: {path.name} has no variable {name!r}")
            values = ds[name].isel(t=0).values if "t" in ds[name].dims else ds[name].values
    else:
        raise SpecError(f"{where}.file: unsupported file type {path.suffix!r} (use .npy or .nc)")
    if values.shape != grid.shape:
        raise SpecError(f"{where}.file: array shape {values.shape} does not match the grid (ny, nx) = {grid.shape}")
    return values


def gaussian_random_field(grid: Grid, seed: int, length: float, where: str = "initial") -> np.ndarray:
    """A smooth Gaussian random field with unit standard deviation, shape ``(ny, nx)``.

    White noise is filtered with a Gaussian kernel of correlation length ``length`` (in
    domain units) in Fourier space. On periodic axes the field is periodic; on other axes
    it is generated on a domain twice as long and cropped, so it is not.
    """
    if not length > 0:
        raise SpecError(f"{where}.random.length: must be positive")
    rng = np.random.default_rng(seed)
    sizes = [grid.y.n if grid.y.periodic else 2 * grid.y.n, grid.x.n if grid.x.periodic else 2 * grid.x.n]
    noise = rng.standard_normal(sizes)
    ky = 2 * np.pi * np.fft.fftfreq(sizes[0], d=grid.y.spacing)
    kx = 2 * np.pi * np.fft.fftfreq(sizes[1], d=grid.x.spacing)
    k2 = ky[:, None] ** 2 + kx[None, :] ** 2
    field = np.real(np.fft.ifft2(np.fft.fft2(noise) * np.exp(-0.25 * k2 * length**2)))
    field = field[: grid.y.n, : grid.x.n]
    return (field - field.mean()) / (field.std() + 1e-300)
