"""Reference vs PhyCRNet vs PINN at one wall-clock budget (``phycrnet compare``).

The classical reference (py-pde, refined until converged) is the ground truth; PhyCRNet
and the PINN baseline each get the same training budget in seconds on the same machine,
one after the other (never concurrently, so neither steals the other's cores). Errors are
rel L2 over space-time against the reference (mean over fields), as ``phycrnet evaluate``
computes them.

Outputs (in ``out_dir``): the three solutions as netCDF, ``compare_<case>.json`` (the
table), ``compare_<case>_<field>.png`` (snapshots of reference, PhyCRNet, PINN and both
errors at several times) and ``compare_<case>_error.png`` (rel L2 per frame over time).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from phycrnet.errors import OptionsError
from phycrnet.io.solution import fields_of, read_solution, write_solution
from phycrnet.analysis.metrics import evaluate
from phycrnet.analysis.plots import plot_comparison, plot_error_curves
from phycrnet.spec.problem import Problem, load_spec

__all__ = ["MethodResult", "Comparison", "compare", "format_table"]


@dataclass
class MethodResult:
    """One row of the comparison table."""

    method: str
    rel_l2: float
    rel_l2_fields: dict[str, float]
    rel_l2_final: float
    wall_seconds: float
    iterations: int
    file: str = ""


@dataclass
class Comparison:
    """The comparison of one problem at one budget."""

    case: str
    time_budget: float
    reference_seconds: float
    reference_estimated_error: float
    rows: list[MethodResult] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    def ratio(self) -> float:
        """error(PINN) / error(PhyCRNet)."""
        errors = {r.method: r.rel_l2 for r in self.rows}
        return errors["pinn"] / errors["phycrnet"]

    def to_json(self) -> str:
        return json.dumps(asdict(self) | {"ratio_pinn_over_phycrnet": self.ratio()}, indent=1)


def compare(
    spec: Any,
    *,
    time_budget: float,
    out_dir: str | Path,
    reference: str | Path | xr.Dataset | None = None,
    seed: int = 0,
    device: str | None = None,
    threads: int | None = None,
    progress: bool = False,
    phycrnet_options: dict[str, Any] | None = None,
    pinn_options: dict[str, Any] | None = None,
) -> Comparison:
    """Run reference, PhyCRNet and PINN on ``spec`` and compare them.

    Args:
        spec: catalog name, YAML path or text, dict or :class:`~phycrnet.spec.Problem`.
        time_budget: seconds of training for each network.
        out_dir: folder for the solutions, the table (JSON) and the figures.
        reference: an existing reference solution (file or dataset) instead of solving.
        seed, device, threads: passed to both trainers.
        phycrnet_options, pinn_options: extra options of either solver.
    """
    from phycrnet.methods.pinn import pinn_solve
    from phycrnet.reference.solver import solve_reference
    from phycrnet.methods.solve import solve

    if not time_budget or time_budget <= 0:
        raise OptionsError(f"--time-budget: {time_budget} must be a positive number of seconds")
    problem = load_spec(spec)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = problem.name
    ref = _reference(problem, reference, out / f"{name}_reference.nc", solve_reference)
    comparison = Comparison(
        case=name,
        time_budget=time_budget,
        reference_seconds=float(ref.attrs.get("wall_seconds", float("nan"))),
        reference_estimated_error=float(ref.attrs.get("estimated_error", float("nan"))),
    )
    common = {"time_budget": time_budget, "seed": seed, "device": device, "progress": progress}
    predictions = {
        "phycrnet": solve(problem, out=out / f"{name}_phycrnet.nc", threads=threads, **common, **(phycrnet_options or {})),
        "pinn": pinn_solve(problem, out=out / f"{name}_pinn.nc", threads=threads, **common, **(pinn_options or {})),
    }
    for method, prediction in predictions.items():
        comparison.rows.append(_row(method, prediction, ref, out / f"{name}_{method}.nc"))
    comparison.figures = [str(p) for p in _figures(name, ref, predictions, out)]
    (out / f"compare_{name}.json").write_text(comparison.to_json())
    return comparison


def _reference(problem: Problem, given, path: Path, solve_reference) -> xr.Dataset:
    if isinstance(given, xr.Dataset):
        return given
    if given is not None:
        return read_solution(given)
    dataset = solve_reference(problem)
    write_solution(dataset, path)
    return dataset


def _row(method: str, prediction: xr.Dataset, reference: xr.Dataset, path: Path) -> MethodResult:
    report = evaluate(prediction, reference)
    fields = report["fields"]
    return MethodResult(
        method=method,
        rel_l2=float(report["rel_l2_mean"]),
        rel_l2_fields={f: float(v["rel_l2"]) for f, v in fields.items()},
        rel_l2_final=float(np.mean([v["rel_l2_final"] for v in fields.values()])),
        wall_seconds=float(prediction.attrs.get("wall_seconds", float("nan"))),
        iterations=int(prediction.attrs.get("iterations", 0)),
        file=str(path),
    )


def _figures(name: str, reference: xr.Dataset, predictions: dict[str, xr.Dataset], out: Path) -> list[Path]:
    written = []
    for f in fields_of(reference):
        written.append(plot_comparison(reference, predictions, out / f"compare_{name}_{f}.png", field=f))
    curves = {}
    for method, prediction in predictions.items():
        report = evaluate(prediction, reference)
        t = np.asarray(report["t"])
        per_time = np.mean([np.asarray(v["rel_l2_per_time"]) for v in report["fields"].values()], axis=0)
        curves[method] = (t[1:], per_time[1:])  # t = 0 is the given initial value for both
    written.append(plot_error_curves(curves, out / f"compare_{name}_error.png", ylabel="rel L2 per frame"))
    return written


def format_table(comparison: Comparison) -> str:
    """The comparison as a plain-text table."""
    lines = [
        f"{comparison.case}: {comparison.time_budget:g} s of training each "
        f"(reference: {comparison.reference_seconds:.1f} s, estimated error {comparison.reference_estimated_error:.1e})",
        f"{'method':<10} {'rel L2':>10} {'final':>10} {'seconds':>9} {'iterations':>11}",
    ]
    for r in comparison.rows:
        lines.append(f"{r.method:<10} {r.rel_l2:>10.2e} {r.rel_l2_final:>10.2e} {r.wall_seconds:>9.1f} {r.iterations:>11d}")
    lines.append(f"error(PINN) / error(PhyCRNet) = {comparison.ratio():.1f}")
    return "\n".join(lines)
