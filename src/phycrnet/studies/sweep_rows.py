"""What a sweep records of its members: one row per member, and the summary of all rows.

Each member that finishes (or diverges) gets its row at once, as ``<name>.row.json``
beside its solution, written atomically (temporary file, then :func:`os.replace`): a
sweep that is killed keeps every member finished before, and a rerun skips them. The
summary (``summary.csv`` and ``summary.json``, one row per member in member order) is
built from those files only, so any rank can write it once the others are done.

A row file holds::

    {"member": "member_000", "index": 0, "overrides": {...}, "fingerprint": "...",
     "status": "done" | "diverged" | "failed", "wall_seconds": ..., "iterations": ...,
     "final_loss": ..., "rel_l2": ..., "identified": {name: value}, "file": "member_000.nc",
     "error": null}

``final_loss`` is the sum of the final loss terms (``None`` for classical solvers, which
have none); ``rel_l2`` is the mean over fields of the rel L2 error against the member's
reference (``None`` without references); ``file`` is relative to the sweep's folder (``None``
when there is no result). The summary flattens rows into the columns ``member``, one per
override key (its dotted key), ``wall_seconds``, ``iterations``, ``final_loss``,
``rel_l2`` (with references), ``identified.<name>`` per identified parameter, ``status``
and ``file``. A member without a row file appears with status ``missing``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import xarray as xr

from phycrnet.studies.sweep_members import Member, describe_overrides

SUMMARY_CSV = "summary.csv"
SUMMARY_JSON = "summary.json"


def row_path(out_dir: Path, name: str) -> Path:
    return out_dir / f"{name}.row.json"


def fingerprint(member: Member, recipe: dict[str, Any]) -> str:
    """What a member's result depends on: its spec and the method's settings (``recipe``:
    method, preset, scheme, ...), hashed. A row of another fingerprint is stale."""
    text = json.dumps({"spec": member.spec, **recipe}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def result_row(member: Member, dataset: xr.Dataset, *, stamp: str, file: str, trained: bool, rel_l2: float | None) -> dict[str, Any]:
    """The row of a member that finished, from its solution's attributes."""
    attrs = dataset.attrs
    losses = json.loads(attrs.get("loss_terms") or "{}") if trained else {}
    identified = json.loads(attrs["identified_parameters"]) if "identified_parameters" in attrs else {}
    return {
        **_head(member, stamp, "done"),
        "wall_seconds": _number(attrs.get("wall_seconds")),
        "iterations": int(attrs["iterations"]) if attrs.get("iterations") is not None else None,
        "final_loss": float(sum(losses.values())) if trained and losses else None,
        "rel_l2": rel_l2,
        "identified": {k: float(v) for k, v in identified.items()},
        "file": file,
        "error": None,
    }


def failed_row(member: Member, *, stamp: str, status: str, error: str) -> dict[str, Any]:
    """The row of a member without a result (``diverged``, ``failed``)."""
    return {**_head(member, stamp, status), "wall_seconds": None, "iterations": None, "final_loss": None, "rel_l2": None, "identified": {}, "file": None, "error": error}


def _head(member: Member, stamp: str, status: str) -> dict[str, Any]:
    return {"member": member.name, "index": member.index, "overrides": member.overrides, "fingerprint": stamp, "status": status}


def _number(value: Any) -> float | None:
    return None if value is None else float(value)


def write_row(path: Path, row: dict[str, Any]) -> None:
    atomic_write(path, json.dumps(row, indent=1, default=str))


def read_row(path: Path) -> dict[str, Any] | None:
    """The row at ``path``; ``None`` when it is missing or unreadable (then it reruns)."""
    try:
        row = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) else None


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the whole new one."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def summary_rows(members: Sequence[Member], out_dir: Path, reference: bool) -> tuple[list[str], list[dict[str, Any]]]:
    """The summary's columns and its rows (one per member, in order), from the row files."""
    rows = []
    for member in members:
        row = read_row(row_path(out_dir, member.name))
        if row is None:
            row = {**_head(member, "", "missing"), "identified": {}, "file": None}
        rows.append(row)
    keys = list(dict.fromkeys(k for m in members for k in m.overrides))
    identified = list(dict.fromkeys(k for row in rows for k in row.get("identified") or {}))
    columns = [
        "member",
        *keys,
        "wall_seconds",
        "iterations",
        "final_loss",
        *(["rel_l2"] if reference else []),
        *(f"identified.{k}" for k in identified),
        "status",
        "file",
    ]
    return columns, [_flat(member, row, columns) for member, row in zip(members, rows)]


def _flat(member: Member, row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    values = {**row, **{f"identified.{k}": v for k, v in (row.get("identified") or {}).items()}, **member.overrides}
    return {column: values.get(column) for column in columns}


def write_summary(out_dir: Path, columns: list[str], rows: list[dict[str, Any]]) -> Path:
    """``summary.csv`` (empty cells for missing values) and ``summary.json`` (a list of
    row objects); returns the CSV's path."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in columns])
    atomic_write(out_dir / SUMMARY_CSV, buffer.getvalue())
    atomic_write(out_dir / SUMMARY_JSON, json.dumps(rows, indent=1, default=str))
    return out_dir / SUMMARY_CSV


def _cell(value: Any) -> str:
    """A CSV cell: empty for none, numbers and text as they are, anything else as JSON."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    return json.dumps(value)


def describe_row(row: dict[str, Any], out_dir: Path, *, skipped: bool = False) -> str:
    """One line on a member: its result (or why it has none) and where it is."""
    head = f"{row['member']} ({describe_overrides(row.get('overrides') or {})})"
    if row.get("status") != "done":
        return f"{head}: {row.get('status')} ({row.get('error') or 'no result'})"
    parts = ["done earlier, skipped" if skipped else f"done, {row.get('iterations')} iterations in {row.get('wall_seconds') or 0.0:.1f} s"]
    if row.get("final_loss") is not None:
        parts.append(f"loss {row['final_loss']:.2e}")
    if row.get("rel_l2") is not None:
        parts.append(f"rel L2 {row['rel_l2']:.2e}")
    parts += [f"{name} = {value:.6g}" for name, value in (row.get("identified") or {}).items()]
    return f"{head}: {', '.join(parts)} -> {out_dir / row['file']}"
