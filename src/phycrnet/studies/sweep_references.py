"""The references of a sweep's members, each solved once, and the members' scores.

Members whose specs agree on everything but option sections, name and description (say,
the same coefficients trained with other seeds or learning rates) have the same
reference; it is solved once (:func:`~phycrnet.reference.solver.solve_reference`, which
ignores options) and written as every such member's ``<name>.ref.nc``. A reference file
that is present is reused. Over several ranks the distinct references go round robin,
so no two ranks solve the same member's reference; the sweep waits at a barrier after
them, since a rank scores its members against references another rank may have written.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from phycrnet.analysis.metrics import evaluate
from phycrnet.io.solution import read_solution, write_solution
from phycrnet.reference.solver import solve_reference
from phycrnet.spec.schema import OPTION_SECTIONS
from phycrnet.studies.distributed import World
from phycrnet.studies.sweep_members import Member


def reference_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.ref.nc"


def physics_key(member: Member) -> str:
    """What a member's reference depends on: its spec less options, name and description."""
    left_out = {*OPTION_SECTIONS, "preset", "name", "description"}
    return json.dumps({k: v for k, v in member.spec.items() if k not in left_out}, sort_keys=True)


def reference_groups(members: Sequence[Member]) -> list[list[Member]]:
    """``members`` grouped by :func:`physics_key`, groups in order of their first member."""
    groups: dict[str, list[Member]] = {}
    for member in members:
        groups.setdefault(physics_key(member), []).append(member)
    return list(groups.values())


def prepare_references(members: Sequence[Member], out_dir: Path, world: World, settings: dict[str, Any], report: Callable[[str], None]) -> None:
    """Write the missing references of ``members``: this rank's share of the groups."""
    for index, group in enumerate(reference_groups(members)):
        if not world.owns(index):
            continue
        paths = [reference_path(out_dir, m.name) for m in group]
        missing = [p for p in paths if not p.exists()]
        if not missing:
            continue
        present = next((p for p in paths if p.exists()), None)
        dataset = read_solution(present) if present is not None else solve_reference(group[0].problem, **settings)
        for path in missing:
            write_solution(dataset, path)
        if present is None:
            names = ", ".join(m.name for m in group)
            report(f"reference of {names}: {float(dataset.attrs.get('wall_seconds', 0.0)):.1f} s -> {paths[0]}")


def score(dataset: xr.Dataset, out_dir: Path, name: str) -> float:
    """rel L2 over space-time (mean over fields) of ``dataset`` against the member's reference."""
    return float(evaluate(dataset, read_solution(reference_path(out_dir, name)))["rel_l2_mean"])
