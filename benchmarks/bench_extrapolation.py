"""Extrapolation in time: Burgers trained on [0, 1], rolled on to t = 2 (the paper's setting).

Trains PhyCRNet on the catalog's ``burgers_mixed`` case (t in [0, 1]) for ``--budget``
seconds, rolls the trained network on to t = 2 with ``extrapolate``, and compares every
frame with the py-pde reference of the same problem solved to t = 2. Writes the error
curve over time (PNG) and a table to RESULTS.md (section ``extrapolation_<case>``; ``extrapolation`` for allen_cahn_periodic).

    python benchmarks/bench_extrapolation.py [--case burgers_mixed] [--budget 300] [--until 2.0]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from common import FIGURES, reference_for, stamp, write_section
from phycrnet.analysis.metrics import evaluate
from phycrnet.analysis.plots import plot_error_curves
from phycrnet.methods.solve import solve
from phycrnet.spec.problem import load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="burgers_mixed")
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--until", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    problem = load_spec(args.case)
    long_problem = problem.with_changes(time={"t_end": args.until, "dt": problem.dt})
    reference = reference_for(long_problem, tag=f"{args.case}_to_{args.until:g}")
    prediction = solve(problem, time_budget=args.budget, extrapolate=args.until, threads=args.threads)
    report = evaluate(prediction, reference)
    t = np.asarray(report["t"])
    curves = {f: (t, np.asarray(v["rel_l2_per_time"])) for f, v in report["fields"].items()}
    FIGURES.mkdir(exist_ok=True)
    figure = plot_error_curves(curves, FIGURES / f"extrapolation_{args.case}.png", ylabel="rel L2 per frame")
    train_end = problem.t_end
    rows = [f"| field | rel L2 on [0, {train_end:g}] | rel L2 on ({train_end:g}, {args.until:g}] | at t = {args.until:g} |", "|---|---|---|---|"]
    for field, values in report["fields"].items():
        per_time = np.asarray(values["rel_l2_per_time"])
        inside, outside = per_time[t <= train_end + 1e-9], per_time[t > train_end + 1e-9]
        rows.append(f"| {field} | {np.sqrt(np.mean(inside**2)):.2e} | {np.sqrt(np.mean(outside**2)):.2e} | {per_time[-1]:.2e} |")
    command = "python benchmarks/bench_extrapolation.py " + " ".join(sys.argv[1:])
    text = (
        f"## Extrapolation: {args.case} trained on [0, {train_end:g}], rolled on to t = {args.until:g}\n\n"
        + stamp(command)
        + f"\n{int(prediction.attrs['iterations'])} iterations in {float(prediction.attrs['wall_seconds']):.0f} s of training. "
        "Per-frame rel L2 against the py-pde reference of the same problem solved to the end time "
        "(root mean square of the per-frame errors over each interval):\n\n"
        + "\n".join(rows)
        + f"\n\n![extrapolation error](figures/{figure.name})\n"
    )
    # Allen-Cahn periodic keeps the section name of the first runs of this script.
    write_section("extrapolation" if args.case == "allen_cahn_periodic" else f"extrapolation_{args.case}", text)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
