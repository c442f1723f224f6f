"""The commands around solutions: ``cases``, ``show``, ``evaluate``, ``compare``, ``sample``, ``plot``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from phycrnet.cli.app import app, say
from phycrnet.errors import OptionsError
from phycrnet.spec.problem import Problem


@app.command()
def cases() -> None:
    """List the built-in cases (name, fields, boundary conditions, grid, time)."""
    from phycrnet.spec import catalog, load_spec

    rows = []
    for name in catalog.list_cases():
        problem = load_spec(name)
        grid = f"{problem.grid.x.n}x{problem.grid.y.n}"
        rows.append((name, ",".join(problem.fields), boundary_summary(problem), grid, f"dt={problem.dt:g} t_end={problem.t_end:g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        say("  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)))


def boundary_summary(problem: Problem) -> str:
    """The kinds of boundary conditions of a problem, e.g. ``dirichlet+neumann``."""
    if all(problem.periodic):
        return "periodic"
    kinds = {condition.kind for name in problem.fields for condition in problem.boundary[name].values()}
    periodic = [f"periodic-{axis}" for axis, flag in zip("xy", problem.periodic) if flag]
    return "+".join(sorted(kinds) + periodic)


@app.command()
def show(case: str = typer.Argument(..., help="Catalog case name.")) -> None:
    """Print a catalog case as YAML (a starting point for your own spec)."""
    from phycrnet.spec import catalog

    try:
        typer.echo(catalog.case_text(case), nl=False)
    except KeyError as exc:
        raise OptionsError(str(exc.args[0]) if exc.args else f"unknown case {case!r}") from None


@app.command()
def evaluate(
    pred: Path = typer.Argument(..., help="Prediction netCDF."),
    ref: Path = typer.Argument(..., help="Reference netCDF."),
) -> None:
    """Print errors of PRED against REF as JSON."""
    from phycrnet.analysis.metrics import evaluate as compute
    from phycrnet.io.solution import read_solution

    typer.echo(json.dumps(compute(read_solution(pred), read_solution(ref)), indent=2))


@app.command()
def compare(
    spec: str = typer.Argument(..., help="Catalog case name or spec YAML file."),
    time_budget: float = typer.Option(..., help="Seconds of training for each network."),
    out_dir: Path = typer.Option(Path("compare"), "--out-dir", help="Folder for the solutions, table and figures."),
    reference: Optional[Path] = typer.Option(None, help="Use this reference solution instead of solving one."),
    methods: Optional[str] = typer.Option(None, help="Comma-separated rows to run (default: all; see phycrnet.studies.compare.METHODS)."),
    seed: int = typer.Option(0, help="Random seed of the networks."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    threads: Optional[int] = typer.Option(None, help="Torch threads (default: all cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Every method on one problem, beside the classical solvers: errors, times, time to a common accuracy."""
    from phycrnet.studies.compare import compare as run
    from phycrnet.studies.compare import format_table

    chosen = [m.strip() for m in methods.split(",") if m.strip()] if methods else None
    result = run(spec, time_budget=time_budget, out_dir=out_dir, reference=reference, methods=chosen, seed=seed, device=device, threads=threads, progress=not quiet)
    typer.echo(format_table(result))
    for path in result.figures:
        say(f"wrote {path}")


@app.command()
def sample(
    file: Path = typer.Argument(..., help="Solution netCDF to draw from."),
    out: Path = typer.Option(..., "--out", "-o", help="Observations CSV to write."),
    fraction: float = typer.Option(..., help="Share of the space-time points to keep, in (0, 1]."),
    noise: float = typer.Option(0.0, help="Gaussian noise, relative to each field's standard deviation."),
    seed: int = typer.Option(0, help="Random seed."),
    fields: Optional[str] = typer.Option(None, help="Comma-separated fields to observe (default: all)."),
    t_max: Optional[float] = typer.Option(None, help="Only frames up to this time."),
    off_grid: bool = typer.Option(False, "--off-grid", help="Uniform random points between the nodes (interpolated)."),
) -> None:
    """Draw sparse noisy observations from a solution."""
    from phycrnet.io.observations import sample_observations, write_observations
    from phycrnet.io.solution import read_solution

    names = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    observations = sample_observations(read_solution(file), fraction=fraction, noise=noise, seed=seed, fields=names, t_max=t_max, off_grid=off_grid)
    write_observations(observations, out)
    say(f"wrote {out}: {len(observations)} points of {', '.join(observations.fields)}, noise {noise:g}")


@app.command()
def plot(
    file: Path = typer.Argument(..., help="Solution netCDF."),
    out_dir: Optional[Path] = typer.Option(None, help="Directory for the images (default: beside FILE)."),
    animation: bool = typer.Option(True, help="Also write an animated GIF."),
) -> None:
    """Write PNG snapshots of every field and an animated GIF."""
    from phycrnet.analysis.plots import animate, plot_snapshots
    from phycrnet.io.solution import read_solution

    dataset = read_solution(file)
    directory = out_dir or file.parent
    written = plot_snapshots(dataset, directory, prefix=file.stem)
    if animation:
        written.append(animate(dataset, directory / f"{file.stem}.gif"))
    for path in written:
        say(f"wrote {path}")
