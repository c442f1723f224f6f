"""The ``phycrnet`` command line: a thin shell over the Python API.

Errors meant for the user (bad spec, options or files; a diverging run) print one line to
stderr and exit non-zero (2 for bad input, 3 for divergence); ``--debug`` shows the
traceback instead.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Optional

import typer

try:  # typer >= 0.20 bundles its own click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer with click installed
    from click import exceptions as click_exceptions

from phycrnet.errors import OptionsError, PhycrnetError, PhycrnetWarning

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Physics-constrained convolutional recurrent networks for 2D time-dependent PDEs.",
)
_state = {"debug": False}


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _state["debug"] = debug


def _say(text: str) -> None:
    typer.echo(text)


# --------------------------------------------------------------------------- catalog


@app.command()
def cases() -> None:
    """List the built-in cases (name, fields, boundary conditions, grid)."""
    from phycrnet.spec import catalog
    from phycrnet.spec.problem import load_spec

    rows = []
    for name in catalog.list_cases():
        problem = load_spec(name)
        rows.append((name, ",".join(problem.fields), _boundary_summary(problem), f"{problem.grid.x.n}x{problem.grid.y.n}", f"dt={problem.dt:g} t_end={problem.t_end:g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        _say("  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)))


def _boundary_summary(problem) -> str:
    kinds = set()
    for name in problem.fields:
        for condition in problem.boundary[name].values():
            kinds.add(condition.kind)
    if all(problem.periodic):
        return "periodic"
    periodic = ["x" if problem.periodic[0] else "", "y" if problem.periodic[1] else ""]
    parts = sorted(kinds) + [f"periodic-{a}" for a in periodic if a]
    return "+".join(parts)


@app.command()
def show(case: str = typer.Argument(..., help="Catalog case name.")) -> None:
    """Print a catalog case as YAML (a starting point for your own spec)."""
    from phycrnet.spec import catalog

    try:
        typer.echo(catalog.case_text(case), nl=False)
    except KeyError as exc:
        raise OptionsError(str(exc.args[0]) if exc.args else f"unknown case {case!r}") from None


# --------------------------------------------------------------------------- solvers


@app.command()
def reference(
    spec: str = typer.Argument(..., help="Catalog case name or spec YAML file."),
    out: Path = typer.Option(..., "--out", "-o", help="netCDF file to write."),
    refinement: Optional[int] = typer.Option(None, help="Cells per grid spacing (default: automatic)."),
    richardson: bool = typer.Option(True, help="Richardson-extrapolate two refinements."),
    tolerance: float = typer.Option(1e-4, help="Target for the estimated error (automatic refinement)."),
    time_limit: float = typer.Option(60.0, help="Seconds the automatic refinement may spend."),
) -> None:
    """Classical reference solution (py-pde on a refined grid) with a self-convergence estimate."""
    from phycrnet.io.solution import write_solution
    from phycrnet.reference.solver import solve_reference
    from phycrnet.spec.problem import load_spec

    problem = load_spec(spec)
    dataset = solve_reference(problem, refinement=refinement, richardson=richardson, tolerance=tolerance, time_limit=time_limit)
    write_solution(dataset, out)
    attrs = dataset.attrs
    _say(
        f"wrote {out}: refinement {attrs.get('refinement')}, self-convergence {float(attrs.get('self_convergence', float('nan'))):.2e}, "
        f"estimated error {float(attrs.get('estimated_error', float('nan'))):.2e}, {float(attrs.get('wall_seconds', 0)):.1f} s"
    )


@app.command()
def solve(
    spec: str = typer.Argument(..., help="Catalog case name or spec YAML file."),
    out: Path = typer.Option(..., "--out", "-o", help="netCDF file to write."),
    iterations: Optional[int] = typer.Option(None, help="Training iterations (default 20000 without --time-budget)."),
    time_budget: Optional[float] = typer.Option(None, help="Seconds of training."),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint beside --out."),
    extrapolate: Optional[float] = typer.Option(None, help="Roll the trained network on to this time."),
    lr: Optional[float] = typer.Option(None, help="Initial learning rate."),
    weighting: Optional[str] = typer.Option(None, help="Loss weighting scheme."),
    boundary: Optional[str] = typer.Option(None, help="soft or hard boundary conditions."),
    derivatives: Optional[str] = typer.Option(None, help="auto, fd2, fd4 or spectral."),
    time_scheme: Optional[str] = typer.Option(None, help="crank_nicolson, bdf2, central, backward_euler or adams_moulton (fourth order)."),
    schedule: Optional[str] = typer.Option(None, help="step, cosine, exponential or constant."),
    lbfgs_fraction: Optional[float] = typer.Option(None, help="Share of the budget for an L-BFGS finish."),
    step_balance: Optional[bool] = typer.Option(
        None, "--step-balance/--no-step-balance", help="Weigh each step's residual by the inverse of the untrained network's."
    ),
    refine: Optional[str] = typer.Option(
        None,
        help="Solve on a grid this many times finer per axis (1-8); the output keeps the spec's nodes. "
        "Default auto: refined where the grid does not resolve the transport, under a --time-budget alone.",
    ),
    data: Optional[Path] = typer.Option(None, "--data", help="Observations CSV (t,x,y,<field>...) to fit alongside the physics."),
    data_weight: Optional[float] = typer.Option(None, help="Weight of the data misfit terms (default 1)."),
    drop_outside_time: bool = typer.Option(
        False, "--drop-outside-time", help="Leave out observations after t_end instead of failing."
    ),
    threads: Optional[int] = typer.Option(
        None, help="Torch threads (default: all cores; 1 when other jobs share the machine, as oversubscribed threads slow training several-fold)."
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train PhyCRNet on a problem and write its solution."""
    from phycrnet.methods.solve import solve as run

    dataset = run(
        spec,
        out=out,
        iterations=iterations,
        time_budget=time_budget,
        seed=seed,
        device=device,
        resume=resume,
        extrapolate=extrapolate,
        progress=not quiet,
        lr=lr,
        weighting=weighting,
        boundary=boundary,
        derivatives=derivatives,
        time_scheme=time_scheme,
        schedule=schedule,
        lbfgs_fraction=lbfgs_fraction,
        step_balance=step_balance,
        refine=refine,
        data=data,
        data_weight=data_weight,
        drop_outside_time=drop_outside_time,
        threads=threads,
    )
    _report_run(dataset, out)


def _report_run(dataset, out: Path) -> None:
    """One line on the written run, and the identified coefficients if any."""
    attrs = dataset.attrs
    losses = json.loads(attrs.get("loss_terms", "{}"))
    terms = ", ".join(f"{k} {v:.2e}" for k, v in losses.items())
    _say(f"wrote {out}: {attrs.get('iterations')} iterations in {float(attrs.get('wall_seconds', 0)):.1f} s, loss {terms}")
    factor = int(attrs.get("refine", 1))
    if factor > 1:
        _say(f"trained on a grid {factor} times finer per axis (refine {factor}); the output holds the spec's nodes")
    if "identified_parameters" in attrs:
        identified = json.loads(attrs["identified_parameters"])
        _say("identified parameters: " + ", ".join(f"{k} = {v:.6g}" for k, v in identified.items()))


@app.command()
def pinn(
    spec: str = typer.Argument(..., help="Catalog case name or spec YAML file."),
    out: Path = typer.Option(..., "--out", "-o", help="netCDF file to write."),
    iterations: Optional[int] = typer.Option(None, help="Training iterations (default 20000 without --time-budget)."),
    time_budget: Optional[float] = typer.Option(None, help="Seconds of training."),
    seed: int = typer.Option(0, help="Random seed (weights and collocation points)."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    lr: Optional[float] = typer.Option(None, help="Initial Adam learning rate."),
    weighting: Optional[str] = typer.Option(None, help="Loss weighting scheme."),
    lbfgs_fraction: Optional[float] = typer.Option(None, help="Share of the budget for the L-BFGS finish."),
    causal: Optional[float] = typer.Option(None, help="Causal weighting strength (0: off)."),
    threads: Optional[int] = typer.Option(None, help="Torch threads (default: all cores)."),
    log: Optional[Path] = typer.Option(None, "--log", help="CSV training log."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train the PINN baseline on a problem and write its solution."""
    from phycrnet.methods.pinn import pinn_solve

    dataset = pinn_solve(
        spec,
        out=out,
        iterations=iterations,
        time_budget=time_budget,
        seed=seed,
        device=device,
        progress=not quiet,
        log=log,
        lr=lr,
        weighting=weighting,
        lbfgs_fraction=lbfgs_fraction,
        causal=causal,
        threads=threads,
    )
    _report_run(dataset, out)


# --------------------------------------------------------------------------- outputs


@app.command()
def evaluate(
    pred: Path = typer.Argument(..., help="Prediction netCDF."),
    ref: Path = typer.Argument(..., help="Reference netCDF."),
) -> None:
    """Print errors of PRED against REF as JSON."""
    from phycrnet.io.solution import read_solution
    from phycrnet.analysis.metrics import evaluate as compute

    report = compute(read_solution(pred), read_solution(ref))
    typer.echo(json.dumps(report, indent=2))


@app.command()
def compare(
    spec: str = typer.Argument(..., help="Catalog case name or spec YAML file."),
    time_budget: float = typer.Option(..., help="Seconds of training for PhyCRNet and for the PINN, each."),
    out_dir: Path = typer.Option(Path("compare"), "--out-dir", help="Folder for the solutions, table and figures."),
    reference: Optional[Path] = typer.Option(None, help="Use this reference solution instead of solving one."),
    seed: int = typer.Option(0, help="Random seed of both networks."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    threads: Optional[int] = typer.Option(None, help="Torch threads (default: all cores)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Reference vs PhyCRNet vs PINN at equal training budgets: table and figures."""
    from phycrnet.studies.compare import compare as run, format_table

    result = run(
        spec, time_budget=time_budget, out_dir=out_dir, reference=reference, seed=seed, device=device, threads=threads, progress=not quiet
    )
    typer.echo(format_table(result))
    for path in result.figures:
        _say(f"wrote {path}")


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
    from phycrnet.io.solution import read_solution
    from phycrnet.io.observations import sample_observations, write_observations

    dataset = read_solution(file)
    names = [f.strip() for f in fields.split(",") if f.strip()] if fields else None
    observations = sample_observations(
        dataset, fraction=fraction, noise=noise, seed=seed, fields=names, t_max=t_max, off_grid=off_grid
    )
    write_observations(observations, out)
    _say(f"wrote {out}: {len(observations)} points of {', '.join(observations.fields)}, noise {noise:g}")


@app.command()
def plot(
    file: Path = typer.Argument(..., help="Solution netCDF."),
    out_dir: Optional[Path] = typer.Option(None, help="Directory for the images (default: beside FILE)."),
    animation: bool = typer.Option(True, help="Also write an animated GIF."),
) -> None:
    """Write PNG snapshots of every field and an animated GIF."""
    from phycrnet.io.solution import read_solution
    from phycrnet.analysis.plots import animate, plot_snapshots

    dataset = read_solution(file)
    directory = out_dir or file.parent
    written = plot_snapshots(dataset, directory, prefix=file.stem)
    if animation:
        written.append(animate(dataset, directory / f"{file.stem}.gif"))
    for path in written:
        _say(f"wrote {path}")


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """phycrnet's own warnings as one ``warning:`` line; others as Python shows them."""
    if issubclass(category, PhycrnetWarning):
        typer.echo(f"warning: {message}", err=True)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the app, turning user errors into one-line messages."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            app(args=argv, standalone_mode=False)
    except click_exceptions.NoArgsIsHelpError as exc:
        typer.echo(exc.format_message())
        return 0
    except typer.Abort:
        typer.echo("error: aborted", err=True)
        return 130
    except click_exceptions.ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except PhycrnetError as exc:
        if debug:
            raise
        typer.echo(f"error: {exc}", err=True)
        return exc.exit_code
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())


def run() -> None:
    """Console-script entry point."""
    sys.exit(main())
