"""Every catalog case at a fixed training budget: PhyCRNet error against the py-pde reference.

For each case: the converged reference (cached), a PhyCRNet run with the default settings
and ``--budget`` seconds of training, and its rel L2 over space-time per field. Writes the
table to RESULTS.md (section ``catalog``).

    python benchmarks/bench_catalog.py [--budget 300] [--cases NAME ...] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from common import CACHE, reference_for, stamp, write_section
from phycrnet import catalog
from phycrnet.io import write_solution
from phycrnet.metrics import evaluate
from phycrnet.solver import solve
from phycrnet.spec import load_spec

SOFT_TARGET = 5e-3


def run_case(name: str, budget: float, threads: int | None, options: dict) -> dict:
    problem = load_spec(name)
    start = time.perf_counter()
    reference = reference_for(problem)
    reference_seconds = time.perf_counter() - start
    prediction = solve(problem, time_budget=budget, threads=threads, **options)
    write_solution(prediction, CACHE / f"{name}_phycrnet.nc")
    report = evaluate(prediction, reference)
    return {
        "case": name,
        "fields": {f: v["rel_l2"] for f, v in report["fields"].items()},
        "mean": report["rel_l2_mean"],
        "iterations": int(prediction.attrs["iterations"]),
        "seconds": float(prediction.attrs["wall_seconds"]),
        "reference_error": float(reference.attrs.get("estimated_error", float("nan"))),
        "reference_seconds": reference_seconds,
        "soft": any(problem.boundary[f] for f in problem.fields),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--cases", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--options", default="{}", help="JSON training overrides")
    parser.add_argument("--table-only", action="store_true", help="rebuild the table from the cached results")
    parser.add_argument("--note", default="", help="text stating how the runs were made (load, threads)")
    args = parser.parse_args()
    names = args.cases or catalog.list_cases()
    results_path = CACHE / f"catalog_{int(args.budget)}s.json"
    CACHE.mkdir(exist_ok=True)
    for name in [] if args.table_only else names:
        result = run_case(name, args.budget, args.threads, json.loads(args.options))
        # Re-read before writing: several runs of this script may share the file.
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        results[name] = result
        results_path.write_text(json.dumps(results, indent=1))
        print(json.dumps(result), flush=True)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    rows = [
        "| case | rel L2 (per field) | mean | soft-BC target ≤ 5e-3 | iterations | train s | reference est. error |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in sorted(results):
        r = results[name]
        per_field = ", ".join(f"{f} {v:.2e}" for f, v in r["fields"].items())
        target = ("met" if r["mean"] <= SOFT_TARGET else "**missed**") if r["soft"] else "–"
        rows.append(f"| {name} | {per_field} | {r['mean']:.2e} | {target} | {r['iterations']} | {r['seconds']:.0f} | {r['reference_error']:.1e} |")
    arguments = sys.argv[1:]
    if "--note" in arguments:
        index = arguments.index("--note")
        arguments = arguments[:index] + arguments[index + 2 :]
    command = "python benchmarks/bench_catalog.py " + " ".join(arguments)
    write_section(
        f"catalog_{int(args.budget)}s",
        f"## Every catalog case, {args.budget:g} s of training, default settings\n\n"
        + stamp(command)
        + (f"\n{args.note}\n" if args.note else "")
        + "\n"
        + "\n".join(rows)
        + "\n",
    )


if __name__ == "__main__":
    main()
