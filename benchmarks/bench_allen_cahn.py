"""Allen–Cahn periodic at the paper's setup: error of PhyCRNet against training wall time.

Trains with the default settings on the built-in ``allen_cahn_periodic`` case (32², dt 0.05,
t in [0, 1]) for a time budget, evaluating the rel L2 error over space-time against the
converged py-pde reference every few seconds of training (evaluation time is not counted),
and records the error at 60 s and 300 s, the curve as a PNG, and the figures in RESULTS.md.

    python benchmarks/bench_allen_cahn.py [--budget 300] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from common import FIGURES, frames_rel_l2, reference_for, reference_frames, stamp, write_section
from phycrnet.analysis.plots import plot_error_curves
from phycrnet.methods.solve import solve
from phycrnet.spec.problem import load_spec
from phycrnet.studies.compare import current_frames
from phycrnet.training.engine import Engine

CASE = "allen_cahn_periodic"
MARKS = (30.0, 60.0, 120.0, 300.0)


def run(seed: int, budget: float, every: float, options: dict) -> dict:
    problem = load_spec(CASE)
    reference_dataset = reference_for(problem)
    reference = reference_frames(reference_dataset, problem.fields, problem.n_steps + 1)
    # For the text: the reference's own estimated error.
    run.reference_error = float(reference_dataset.attrs.get("estimated_error", float("nan")))
    curve: list[tuple[float, int, float]] = []
    next_mark = [0.0]

    def record(engine: Engine) -> None:
        if engine.seconds < next_mark[0]:
            return
        next_mark[0] = engine.seconds + every
        curve.append((engine.seconds, engine.iteration, frames_rel_l2(current_frames(engine, reference.shape), reference)))

    solution = solve(problem, time_budget=budget, seed=seed, callback=record, **options)
    frames = np.stack([solution[f].values for f in problem.fields], axis=1)
    final = frames_rel_l2(frames, reference)
    seconds, iterations = float(solution.attrs["wall_seconds"]), int(solution.attrs["iterations"])
    curve.append((seconds, iterations, final))
    return {"seed": seed, "curve": curve, "final": final, "iterations": iterations, "seconds": seconds}


def error_at(curve: list[tuple[float, int, float]], seconds: float) -> float:
    """Error of the last evaluation at or before ``seconds`` of training."""
    before = [e for s, _, e in curve if s <= seconds + 1e-9]
    return before[-1] if before else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--every", type=float, default=5.0, help="seconds of training between evaluations")
    parser.add_argument("--options", default="{}", help="JSON training overrides")
    args = parser.parse_args()
    options = json.loads(args.options)
    runs = [run(seed, args.budget, args.every, options) for seed in args.seeds]
    FIGURES.mkdir(exist_ok=True)
    curves = {f"seed {r['seed']}": (np.array([c[0] for c in r["curve"]]), np.array([c[2] for c in r["curve"]])) for r in runs}
    figure = plot_error_curves(curves, FIGURES / f"allen_cahn_error_vs_time_{int(args.budget)}s.png", xlabel="training wall time [s]", ylabel="rel L2 over space-time")
    marks = [m for m in MARKS if m <= args.budget]
    header = "| seed | " + " | ".join(f"{m:g} s" for m in marks) + " | final | iterations | iterations/s |"
    rows = [header, "|" + "---|" * (len(marks) + 4)]
    for r in runs:
        values = " | ".join(f"{error_at(r['curve'], m):.2e}" for m in marks)
        rows.append(f"| {r['seed']} | {values} | {r['final']:.2e} | {r['iterations']} | {r['iterations'] / r['seconds']:.1f} |")
    command = "python benchmarks/bench_allen_cahn.py " + " ".join(sys.argv[1:])
    text = (
        f"## Allen–Cahn periodic, paper setup (32², dt 0.05, t ∈ [0, 1]), default settings, {args.budget:g} s budget\n\n"
        + stamp(command)
        + "\nrel L2 over space-time against the py-pde reference (Richardson-extrapolated, "
        f"estimated error {run.reference_error:.1e}), by seconds of training (evaluation excluded):\n\n"
        + "\n".join(rows)
        + f"\n\n![error vs time](figures/{figure.name})\n"
    )
    write_section(f"allen_cahn_{int(args.budget)}s", text)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
