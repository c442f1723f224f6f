"""Members of a sweep trained together (``batch: N``): which may share a batch, and the call.

Members can share a batch only if their specs differ in nothing but parameter values,
initial values and ``training.seed``: the batched trainer stacks networks of one shape on
one grid with one set of options. :func:`batch_groups` groups the members by that (a
member that differs otherwise goes into another group) and cuts each group into chunks of
at most N, in member order; each chunk is one work unit of the sweep (so the chunks, not
the members, go round robin over the ranks) and one call of
:func:`phycrnet.methods.batch.solve_batch`. The chunks depend only on the sweep file,
never on which members are done, so a rerun forms the same chunks and a chunk that was
killed resumes from its checkpoint (beside its first member's output).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from phycrnet.errors import OptionsError
from phycrnet.io.solution import write_solution
from phycrnet.methods.batch import solve_batch
from phycrnet.methods.run import run_paths
from phycrnet.spec.problem import Problem


def batch_key(spec: Mapping[str, Any]) -> str:
    """``spec`` without what members of one batch may differ in (parameter values, initial
    values, ``training.seed``), as canonical JSON."""
    data = copy.deepcopy(dict(spec))
    data["parameters"] = {name: _without_value(value) for name, value in (data.get("parameters") or {}).items()}
    data["initial"] = sorted(data.get("initial") or {})
    training = {k: v for k, v in (data.get("training") or {}).items() if k != "seed"}
    data["training"] = training
    return json.dumps(data, sort_keys=True, default=str)


def _without_value(parameter: Any) -> Any:
    """A parameter's settings other than its value (``learn``, ``bounds``)."""
    return {k: v for k, v in parameter.items() if k != "init"} if isinstance(parameter, Mapping) else None


def batch_groups(specs: Sequence[Mapping[str, Any]], size: int) -> list[list[int]]:
    """Member indices in chunks of at most ``size`` members that may share a batch: the
    groups of equal :func:`batch_key` in order of their first member, each cut in order."""
    if size < 1:
        raise OptionsError(f"batch: {size} must be at least 1")
    groups: dict[str, list[int]] = {}
    for index, spec in enumerate(specs):
        groups.setdefault(batch_key(spec), []).append(index)
    return [indices[start : start + size] for indices in groups.values() for start in range(0, len(indices), size)]


def chunk_checkpoints(outs: Sequence[Path]) -> list[Path]:
    """Where a chunk's checkpoint may be: beside any member's output, as a member's own
    (``NAME.ckpt.pt``) or as the batch's (``NAME.batch.ckpt.pt``)."""
    paths = []
    for out in outs:
        for candidate in (out, out.with_name(out.stem + ".batch.nc")):
            checkpoint = run_paths(candidate)[1]
            assert checkpoint is not None
            paths.append(checkpoint)
    return paths


def solve_chunk(
    problems: Sequence[Problem], outs: Sequence[Path], *, preset: str | None, resume: bool, progress: bool, options: dict[str, Any]
) -> list[xr.Dataset | None]:
    """Train one chunk as a batch; each member's solution (``None``: it diverged), written
    to its output."""
    datasets = list(solve_batch(list(problems), list(outs), preset=preset, resume=resume, progress=progress, **options))
    if len(datasets) != len(outs):
        raise OptionsError(f"batch: the batched trainer returned {len(datasets)} solutions for {len(outs)} members")
    for dataset, out in zip(datasets, outs):
        if dataset is not None and not out.exists():
            write_solution(dataset, out)
    return datasets
