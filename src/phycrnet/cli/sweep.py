"""The ``sweep`` command: one base spec, many members (also under ``torchrun -m phycrnet``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from phycrnet.cli.app import app, say


@app.command()
def sweep(
    file: Path = typer.Argument(..., help="Sweep file (YAML): base, method, options, members, product, reference, batch."),
    out_dir: Path = typer.Option(..., "--out-dir", help="Folder for the members' solutions, rows and the summary."),
    threads: Optional[int] = typer.Option(None, help="Torch threads per process (default: the sweep's, else the cores shared among the processes)."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N (under torchrun, auto and cuda mean cuda:LOCAL_RANK)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Solve every member of a sweep and write summary.csv and summary.json.

    Run it under torchrun --nproc_per_node=N -m phycrnet sweep ... to spread the
    members over N processes. A rerun skips finished members and resumes killed ones.
    """
    from phycrnet.studies.sweep import run_sweep

    result = run_sweep(file, out_dir, threads=threads, device=device, progress=not quiet, report=say)
    if result.summary is not None:
        counts = Counter(str(row["status"]) for row in result.rows)
        statuses = ", ".join(f"{n} {status}" for status, n in counts.items())
        say(f"wrote {result.summary}: {len(result.rows)} members ({statuses})")
