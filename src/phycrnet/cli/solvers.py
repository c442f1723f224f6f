"""The commands that solve a problem: ``solve``, ``classical``, ``pinn``, ``reference``.

Each imports its solver when it runs, so that ``phycrnet --help`` does not load torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

import typer

from phycrnet.cli.app import SET_HELP, app, described, flat_options, parse_settings, report_run, say
from phycrnet.options.sections import BoundaryMode, DerivativeScheme, Schedule, TimeScheme, Weighting

ReferenceMethod = Literal["pypde", "spectral", "auto"]

SPEC_HELP = "Catalog case name or spec YAML file."
OUT_HELP = "netCDF file to write."
PRESETS_HELP = "hybrid (the network starts as a classical step), crn (it learns the physics itself) or paper (the published method)."


@app.command()
def solve(
    spec: str = typer.Argument(..., help=SPEC_HELP),
    out: Path = typer.Option(..., "--out", "-o", help=OUT_HELP),
    preset: Optional[str] = typer.Option(None, help=PRESETS_HELP),
    iterations: Optional[int] = typer.Option(None, help=described("training", "iterations")),
    time_budget: Optional[float] = typer.Option(None, help=described("training", "time_budget")),
    seed: Optional[int] = typer.Option(None, help=described("training", "seed")),
    device: Optional[str] = typer.Option(None, help=described("training", "device")),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint beside --out."),
    extrapolate: Optional[float] = typer.Option(None, help="Roll the trained network on to this time."),
    lr: Optional[float] = typer.Option(None, help=described("training", "lr")),
    weighting: Optional[Weighting] = typer.Option(None, help=described("training", "weighting")),
    boundary: Optional[BoundaryMode] = typer.Option(None, help=described("physics", "boundary")),
    derivatives: Optional[DerivativeScheme] = typer.Option(None, help=described("physics", "derivatives")),
    time_scheme: Optional[TimeScheme] = typer.Option(None, help=described("physics", "time_scheme")),
    schedule: Optional[Schedule] = typer.Option(None, help=described("training", "schedule")),
    lbfgs_fraction: Optional[float] = typer.Option(None, help=described("training", "lbfgs_fraction")),
    step_balance: Optional[bool] = typer.Option(None, "--step-balance/--no-step-balance", help=described("training", "step_balance")),
    refine: Optional[str] = typer.Option(None, help=described("training", "refine")),
    memory_budget_gb: Optional[float] = typer.Option(None, help=described("training", "memory_budget_gb")),
    data: Optional[Path] = typer.Option(None, "--data", help="Observations CSV (t,x,y,<field>...) to fit alongside the physics."),
    data_weight: Optional[float] = typer.Option(None, help=described("training", "data_weight")),
    drop_outside_time: bool = typer.Option(False, "--drop-outside-time", help="Leave out observations after t_end instead of failing."),
    threads: Optional[int] = typer.Option(None, help=described("training", "threads") + " Use 1 when other jobs share the machine."),
    settings: Optional[list[str]] = typer.Option(None, "--set", help=SET_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train PhyCRNet on a problem and write its solution."""
    from phycrnet.methods.solve import solve as run

    sections = parse_settings(settings, ("physics", "model", "training"))
    explicit = {
        "iterations": iterations, "time_budget": time_budget, "seed": seed, "device": device,
        "lr": lr, "weighting": weighting, "boundary": boundary, "derivatives": derivatives, "time_scheme": time_scheme,
        "schedule": schedule, "lbfgs_fraction": lbfgs_fraction, "step_balance": step_balance, "refine": refine,
        "memory_budget_gb": memory_budget_gb, "data_weight": data_weight, "threads": threads,
    }  # fmt: skip
    dataset = run(
        spec,
        out=out,
        preset=preset,
        resume=resume,
        extrapolate=extrapolate,
        progress=not quiet,
        data=data,
        drop_outside_time=drop_outside_time,
        model=sections.get("model"),
        **flat_options(sections, explicit, "physics", "training"),
    )
    report_run(dataset, out)


@app.command()
def classical(
    spec: str = typer.Argument(..., help=SPEC_HELP),
    out: Path = typer.Option(..., "--out", "-o", help=OUT_HELP),
    scheme: str = typer.Option("implicit", help="implicit (the residual's time scheme, by Newton) or explicit (the hybrid network's Heun predictor)."),
    preset: Optional[str] = typer.Option(None, help="Take the discretisation of this preset (" + PRESETS_HELP + ")"),
    substeps: Optional[int] = typer.Option(None, help="Implicit steps per output frame (default 1)."),
    time_limit: Optional[float] = typer.Option(None, help="Seconds the solve may take; past them it stops with exit code 4 and writes nothing."),
    derivatives: Optional[DerivativeScheme] = typer.Option(None, help=described("physics", "derivatives")),
    boundary: Optional[BoundaryMode] = typer.Option(None, help=described("physics", "boundary")),
    time_scheme: Optional[TimeScheme] = typer.Option(None, help=described("physics", "time_scheme")),
    threads: Optional[int] = typer.Option(None, help=described("training", "threads") + " Use 1 when other jobs share the machine."),
    settings: Optional[list[str]] = typer.Option(None, "--set", help="physics.KEY=VALUE; repeatable."),
) -> None:
    """The project's own classical solver on the spec's grid: the baseline to try first."""
    from phycrnet.methods.classical import classical as run

    sections = parse_settings(settings, ("physics",))
    explicit = {"derivatives": derivatives, "boundary": boundary, "time_scheme": time_scheme, "threads": threads}
    options = flat_options(sections, explicit, "physics")
    dataset = run(spec, scheme=scheme, out=out, preset=preset, substeps=substeps, time_limit=time_limit, **options)
    attrs = dataset.attrs
    say(f"wrote {out}: classical {attrs['scheme']} ({attrs['derivatives']}, {attrs['time_scheme']}), {attrs['iterations']} steps in {float(attrs['wall_seconds']):.2f} s")


@app.command()
def pinn(
    spec: str = typer.Argument(..., help=SPEC_HELP),
    out: Path = typer.Option(..., "--out", "-o", help=OUT_HELP),
    iterations: Optional[int] = typer.Option(None, help=described("training", "iterations")),
    time_budget: Optional[float] = typer.Option(None, help=described("training", "time_budget")),
    seed: Optional[int] = typer.Option(None, help=described("training", "seed")),
    device: Optional[str] = typer.Option(None, help=described("training", "device")),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint beside --out."),
    lr: Optional[float] = typer.Option(None, help=described("training", "lr")),
    weighting: Optional[Weighting] = typer.Option(None, help=described("training", "weighting")),
    lbfgs_fraction: Optional[float] = typer.Option(None, help=described("training", "lbfgs_fraction")),
    causal: Optional[float] = typer.Option(None, help=described("training", "causal")),
    threads: Optional[int] = typer.Option(None, help=described("training", "threads")),
    log: Optional[Path] = typer.Option(None, "--log", help="CSV training log (default: beside --out)."),
    settings: Optional[list[str]] = typer.Option(None, "--set", help=SET_HELP),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train the PINN baseline on a problem and write its solution."""
    from phycrnet.methods.pinn import pinn_solve

    sections = parse_settings(settings, ("training", "pinn"))
    explicit = {
        "iterations": iterations, "time_budget": time_budget, "seed": seed, "device": device,
        "lr": lr, "weighting": weighting, "lbfgs_fraction": lbfgs_fraction, "causal": causal, "threads": threads,
    }  # fmt: skip
    dataset = pinn_solve(
        spec,
        out=out,
        resume=resume,
        progress=not quiet,
        log=log,
        **flat_options(sections, explicit, "training", "pinn"),
    )
    report_run(dataset, out)


@app.command()
def reference(
    spec: str = typer.Argument(..., help=SPEC_HELP),
    out: Path = typer.Option(..., "--out", "-o", help=OUT_HELP),
    method: ReferenceMethod = typer.Option("pypde", help="pypde (finite volumes on refined grids), spectral (periodic problems) or auto (spectral where every axis is periodic)."),
    refinement: Optional[int] = typer.Option(None, help="Cells (points) per grid spacing (default: automatic)."),
    richardson: bool = typer.Option(True, help="Richardson-extrapolate two refinements (py-pde)."),
    tolerance: Optional[float] = typer.Option(None, help="Target for the estimated error (automatic refinement; default 1e-4 py-pde, 1e-6 spectral)."),
    time_limit: Optional[float] = typer.Option(None, help="Seconds the automatic refinement may spend (default 60 py-pde, 900 spectral)."),
) -> None:
    """Converged reference solution (py-pde or pseudo-spectral, refined) with a self-convergence estimate."""
    from phycrnet.io.solution import write_solution
    from phycrnet.reference.solver import solve_reference

    dataset = solve_reference(spec, method=method, refinement=refinement, richardson=richardson, tolerance=tolerance, time_limit=time_limit)
    write_solution(dataset, out)
    attrs = dataset.attrs
    say(
        f"wrote {out}: refinement {attrs.get('refinement')}, self-convergence {float(attrs.get('self_convergence', float('nan'))):.2e}, "
        f"estimated error {float(attrs.get('estimated_error', float('nan'))):.2e}, {float(attrs.get('wall_seconds', 0)):.1f} s"
    )
