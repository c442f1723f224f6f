"""The original PhyCRNet Burgers case at full size: 128², dt 0.002, 1001 frames, then to t = 4.

Trains ``burgers_phycrnet_full`` (its catalog curriculum: 100, 200, 500, then all 1000
steps) under a time budget on one thread, with gradient checkpointing under a memory
budget, rolls the trained network on to t = 4, and scores it against a self-converged
pseudo-spectral reference of [0, 4] (cached). Beside it, as every network result here:
the untrained hybrid network (the classical explicit step it starts from) and the
classical implicit solver on the same grid.

    python benchmarks/bench_burgers_full.py [--budget 3600] [--memory-gb 6] [--implicit-limit S]

Writes RESULTS.md section ``burgers_full``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from common import reference_for, stamp, write_section
from phycrnet.errors import DivergenceError, TimeLimitError
from phycrnet.methods.classical import classical
from phycrnet.methods.solve import solve
from phycrnet.spec import load_spec
from phycrnet.training.memory import peak_memory_gb

CASE = "burgers_phycrnet_full"
EXTRAPOLATE = 4.0


def errors(dataset, reference, n_train: int) -> dict[str, float]:
    """rel L2 (mean over fields) over the training window, over (t_end, 4], and at t = 4."""
    fields = list(reference.data_vars)
    pred = np.stack([dataset[f].values for f in fields], axis=1)
    ref = np.stack([reference[f].values[: pred.shape[0]] for f in fields], axis=1)

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.mean([np.linalg.norm(a[:, c] - b[:, c]) / np.linalg.norm(b[:, c]) for c in range(b.shape[1])]))

    result = {"train": rel(pred[: n_train + 1], ref[: n_train + 1])}
    if pred.shape[0] > n_train + 1:
        result["extrapolation"] = rel(pred[n_train + 1 :], ref[n_train + 1 :])
        result["final"] = rel(pred[-1:], ref[-1:])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=3600.0)
    parser.add_argument("--memory-gb", type=float, default=6.0)
    parser.add_argument("--implicit-limit", type=float, default=None, help="seconds for the classical implicit row (default: --budget, equal run time)")
    parser.add_argument("--no-implicit", action="store_true", help="leave out the classical implicit row (Newton-Krylov on 128² x 2000 frames, limited to --budget seconds)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    problem = load_spec(CASE)
    long = problem.with_changes(time={"t_end": EXTRAPOLATE, "dt": problem.dt}, training={})
    start = time.perf_counter()
    reference = reference_for(long, tag=f"{CASE}_t4", method="spectral", time_limit=7200.0)
    reference_seconds = time.perf_counter() - start
    n = problem.n_steps
    untrained = solve(problem, iterations=0, threads=1, extrapolate=EXTRAPOLATE)
    implicit, implicit_note = None, "left out (--no-implicit)"
    if not args.no_implicit:
        try:  # equal run time: the network's training budget
            implicit = classical(long, threads=1, time_limit=args.implicit_limit or args.budget)
        except (TimeLimitError, DivergenceError) as exc:
            implicit_note = str(exc)
    trained = solve(problem, time_budget=args.budget, memory_budget_gb=args.memory_gb, threads=1, extrapolate=EXTRAPOLATE)
    peak = peak_memory_gb(torch.device("cpu"))
    rows = [("hybrid network, trained", trained), ("hybrid network, untrained (its classical explicit start)", untrained)]
    if implicit is not None:
        rows.append(("classical implicit (Crank-Nicolson, Newton-Krylov)", implicit))
    lines = [
        f"## The original PhyCRNet Burgers case at full size ({CASE}: 128², dt 0.002, t in [0, 2]; rolled on to t = {EXTRAPOLATE:g})",
        "",
        stamp(
            f"python benchmarks/bench_burgers_full.py --budget {args.budget:g} --memory-gb {args.memory_gb:g}"
            + (f" --implicit-limit {args.implicit_limit:g}" if args.implicit_limit else "")
            + (" --no-implicit" if args.no_implicit else "")
        ),
        f"Reference: pseudo-spectral, estimated error {float(reference.attrs.get('estimated_error', float('nan'))):.1e} ({reference_seconds:.0f} s, cached).",
        "",
        "| solution | rel L2 on [0, 2] | rel L2 on (2, 4] | at t = 4 | seconds | iterations |",
        "|---|---|---|---|---|---|",
    ]
    for label, dataset in rows:
        e = errors(dataset, reference, n)
        lines.append(f"| {label} | {e['train']:.2e} | {e.get('extrapolation', float('nan')):.2e} | {e.get('final', float('nan')):.2e} | {float(dataset.attrs['wall_seconds']):.0f} | {int(dataset.attrs['iterations'])} |")
    if implicit is None:
        lines.append(f"| classical implicit (Crank-Nicolson, Newton-Krylov) | {implicit_note} | | | | |")
    iterations = max(1, int(trained.attrs["iterations"]))
    lines += [
        "",
        f"Training: {args.budget:g} s budget, curriculum {problem.model.training.curriculum} frames then all {n}, "
        f"{int(trained.attrs['substeps'])} network steps per frame, memory budget {args.memory_gb:g} GB; "
        f"{float(trained.attrs['wall_seconds']) / iterations:.1f} s per iteration on average over the stages; peak resident memory of the process {peak:.1f} GB.",
    ]
    write_section("burgers_full", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
