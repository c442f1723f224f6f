"""Independent members trained as one batch against the same members trained one by one.

Eight members of Allen-Cahn periodic (32², dt 0.05) that differ in eps and seed train
``--iterations`` iterations each, once as one batch (``phycrnet.methods.batch``, as a
sweep's ``batch: 8`` does) and once one after the other, on one torch thread. Measured:
member-iterations per second of training (set-up excluded, then included), and each
member's rel L2 against its own converged reference, batched over sequential.

    python benchmarks/bench_batch.py [--members 8] [--iterations 200] [--presets hybrid crn]

Writes RESULTS.md section ``batch``.
"""

from __future__ import annotations

import argparse
import time

import torch

from common import reference_for, stamp, write_section
from phycrnet.analysis.metrics import evaluate
from phycrnet.methods.batch import solve_batch
from phycrnet.methods.solve import solve
from phycrnet.spec import load_spec

CASE = "allen_cahn_periodic"


def members(count: int) -> list:
    base = load_spec(CASE)
    return [base.with_changes(parameters={"eps": 0.001 * (0.8 + 0.1 * m)}, training={"seed": m}) for m in range(count)]


def errors(solutions, problems) -> list[float]:
    """Each member's rel L2 against its own converged pseudo-spectral reference (the case is periodic)."""
    return [
        evaluate(s, reference_for(p, tag=f"{CASE}_eps{p.parameter_values()['eps']:.5f}_spectral", method="spectral"))["rel_l2_mean"]
        for s, p in zip(solutions, problems)
    ]


def measure(preset: str, count: int, iterations: int) -> dict:
    problems = members(count)
    options = {"preset": preset, "iterations": iterations, "threads": 1}
    start = time.perf_counter()
    batched = solve_batch(problems, [None] * count, **options)
    batched_wall = time.perf_counter() - start
    start = time.perf_counter()
    alone = [solve(p, **options) for p in problems]
    alone_wall = time.perf_counter() - start
    batch_training = float(batched[0].attrs["wall_seconds"])
    alone_training = sum(float(s.attrs["wall_seconds"]) for s in alone)
    batch_errors, alone_errors = errors(batched, problems), errors(alone, problems)
    return {
        "preset": preset,
        "groups": sorted({int(s.attrs["batch"]) for s in batched}),
        "throughput": (count * iterations / batch_training, count * iterations / alone_training),
        "throughput_wall": (count * iterations / batched_wall, count * iterations / alone_wall),
        "errors": list(zip(batch_errors, alone_errors)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=8)
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--presets", nargs="*", default=["hybrid", "crn"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    lines = [
        f"## {args.members} members trained as one batch against one by one, {CASE}, {args.iterations} iterations each",
        "",
        stamp(f"python benchmarks/bench_batch.py --members {args.members} --iterations {args.iterations} --presets {' '.join(args.presets)}"),
        "| preset | batch sizes | member-it/s batched | member-it/s one by one | speed-up | with set-up: batched / one by one | worst error ratio batched / alone |",
        "|---|---|---|---|---|---|---|",
    ]
    details = []
    for preset in args.presets:
        r = measure(preset, args.members, args.iterations)
        (b, a), (bw, aw) = r["throughput"], r["throughput_wall"]
        worst = max(x / y for x, y in r["errors"])
        lines.append(f"| {preset} | {r['groups']} | {b:.1f} | {a:.1f} | {b / a:.1f}x | {bw:.1f} / {aw:.1f} ({bw / aw:.1f}x) | {worst:.2f} |")
        details.append(f"* {preset}: rel L2 per member, batched / alone: " + ", ".join(f"{x:.2e} / {y:.2e}" for x, y in r["errors"]))
        print(preset, r, flush=True)
    write_section("batch", "\n".join(lines + ["", *details]))


if __name__ == "__main__":
    main()
