"""Tests of phycrnet.plots: every function writes a non-empty image file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from phycrnet.analysis.plots import (
    animate,
    plot_comparison,
    plot_error_curves,
    plot_snapshots,
    snapshot_indices,
)
from phycrnet.errors import DataError, OptionsError
from phycrnet.io.solution import read_solution, solution_dataset, write_solution

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _solution(nx: int, ny: int, nt: int = 6, *, shift: float = 0.0) -> xr.Dataset:
    t = np.linspace(0.0, 1.0, nt)
    x = np.arange(nx) / nx  # periodic in x
    y = np.linspace(0.0, 1.0, ny)
    tt, yy, xx = np.meshgrid(t, y, x, indexing="ij")
    u = np.sin(2 * np.pi * (xx - 0.2 * tt)) * np.cos(np.pi * yy) + shift
    v = np.exp(-tt) * yy * (1 - yy)
    return solution_dataset({"u": u, "v": v}, t, x, y, solver="test", periodic=(True, False))


def _is_png(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 1000 and path.read_bytes()[:8] == PNG_MAGIC


def test_snapshot_indices() -> None:
    t = np.linspace(0.0, 1.0, 11)
    assert snapshot_indices(t) == [0, 2, 5, 8, 10]
    assert snapshot_indices(t[:3]) == [0, 1, 2]
    assert snapshot_indices(t, [0.51, 0.49, 1.0]) == [5, 10]
    with pytest.raises(DataError, match="outside"):
        snapshot_indices(t, [2.0])


def test_plot_snapshots_writes_one_png_per_field(tmp_path: Path) -> None:
    paths = plot_snapshots(_solution(16, 12), tmp_path / "figs", prefix="demo")
    assert [p.name for p in paths] == ["demo_u.png", "demo_v.png"]
    assert all(_is_png(p) for p in paths)


def test_plot_snapshots_default_prefix_and_times(tmp_path: Path) -> None:
    source = write_solution(_solution(8, 8), tmp_path / "run.nc")
    paths = plot_snapshots(read_solution(source), tmp_path, times=[0.0, 1.0])
    assert sorted(p.name for p in paths) == ["run_u.png", "run_v.png"]
    assert all(_is_png(p) for p in paths)


def test_animate_writes_gif(tmp_path: Path) -> None:
    path = animate(_solution(12, 10, nt=4), tmp_path / "anim" / "movie.gif", fps=4)
    assert path.is_file() and path.read_bytes()[:4] == b"GIF8" and path.stat().st_size > 1000


def test_animate_rejects_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match=r"\.gif"):
        animate(_solution(8, 8, nt=2), tmp_path / "movie.avi")


def test_plot_error_curves(tmp_path: Path) -> None:
    t = np.linspace(0.0, 1.0, 11)
    curves = {"phycrnet": (t, 1e-3 * (1 + t)), "pinn": (t, np.concatenate([[0.0], 1e-2 * t[1:]]))}
    path = plot_error_curves(curves, tmp_path / "err.png")
    assert _is_png(path)


def test_plot_comparison_with_interpolated_predictions(tmp_path: Path) -> None:
    ref = _solution(24, 20, nt=11)
    preds = {
        "coarse": _solution(12, 9, nt=6, shift=0.01),
        "same": _solution(24, 20, nt=11, shift=0.02),
    }
    path = plot_comparison(ref, preds, tmp_path / "cmp.png", field="u", times=[0.0, 0.5, 1.0])
    assert _is_png(path)
    with pytest.raises(DataError, match="field 'w'"):
        plot_comparison(ref, preds, tmp_path / "bad.png", field="w")
