"""Shared pieces of the benchmark scripts: machine description, references, RESULTS.md sections.

Each benchmark script writes one section of ``benchmarks/RESULTS.md`` between the markers
``<!-- BEGIN name -->`` and ``<!-- END name -->``, leaving the other sections alone, so the
scripts can be rerun one at a time.
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from phycrnet.io.solution import read_solution, write_solution
from phycrnet.reference.solver import solve_reference
from phycrnet.spec.problem import Problem

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
FIGURES = HERE / "figures"
CACHE = HERE / ".cache"


def machine() -> str:
    """One line describing this machine and the software versions."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({cpu}), {device}, torch {torch.__version__}, torch threads {torch.get_num_threads()}"


def reference_for(problem: Problem, *, tag: str | None = None, method: str = "pypde", time_limit: float = 900.0) -> xr.Dataset:
    """The converged reference of ``problem`` (cached under benchmarks/.cache): py-pde by
    default (Burgers at nu = 0.005 needs 512² cells, about 400 s), or ``spectral`` for
    periodic problems too big for it."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{tag or problem.name}_ref.nc"
    if path.exists():
        return read_solution(path)
    dataset = solve_reference(problem, time_limit=time_limit, method=method)
    write_solution(dataset, path)
    return dataset


def frames_rel_l2(frames: np.ndarray, reference: np.ndarray) -> float:
    """rel L2 over space-time of frames ``(T, C, ny, nx)`` against the same shape."""
    return float(np.linalg.norm(frames - reference) / np.linalg.norm(reference))


def reference_frames(reference: xr.Dataset, fields: list[str], n_frames: int) -> np.ndarray:
    """The reference's first ``n_frames`` frames as ``(T, C, ny, nx)``."""
    return np.stack([reference[f].values[:n_frames] for f in fields], axis=1)


def write_section(name: str, text: str) -> None:
    """Replace (or append) the section ``name`` of RESULTS.md."""
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nEvery figure here was written by the script named in its section.\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    current = pattern.sub(lambda _: block, current) if pattern.search(current) else current.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(current)


def git_revision() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, text=True).strip()
    except Exception:
        return "unknown"


def stamp(command: str) -> str:
    """Header lines stating when, where and how a section was measured."""
    return (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} at commit {git_revision()} on {machine()}.\n\n"
        f"Command: `{command}`\n"
    )
