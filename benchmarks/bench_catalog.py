"""Every catalog case at a fixed training budget: PhyCRNet error against the py-pde reference.

For each case: the converged reference (cached), a PhyCRNet run with the default settings
and ``--budget`` seconds of training (or ``--iterations N``, the paper's budget being
20 000), and its rel L2 over space-time per field. Writes the table to RESULTS.md (section
``catalog_<budget>s`` or ``catalog_<N>it``).

    python benchmarks/bench_catalog.py [--budget 300] [--cases NAME ...] [--threads N]
    python benchmarks/bench_catalog.py --iterations 20000 --device cuda --cases allen_cahn_flux
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from common import CACHE, reference_for, stamp, write_section
from phycrnet import catalog
from phycrnet.errors import DivergenceError
from phycrnet.io import write_solution
from phycrnet.metrics import evaluate
from phycrnet.solver import solve
from phycrnet.spec import load_spec

SOFT_TARGET = 5e-3


def has_boundary_conditions(problem) -> bool:
    """Whether any field has a non-periodic side (the cases the soft-BC target is for)."""
    return any(problem.boundary[f] for f in problem.fields)


def run_case(name: str, budget: float | None, threads: int | None, options: dict, iterations: int | None = None, tag: str = "") -> dict:
    problem = load_spec(name)
    start = time.perf_counter()
    reference = reference_for(problem)
    reference_seconds = time.perf_counter() - start
    prediction = solve(problem, time_budget=budget, iterations=iterations, threads=threads, **options)
    write_solution(prediction, CACHE / f"{name}_phycrnet{tag}.nc")
    report = evaluate(prediction, reference)
    return {
        "case": name,
        "fields": {f: v["rel_l2"] for f, v in report["fields"].items()},
        "mean": report["rel_l2_mean"],
        "iterations": int(prediction.attrs["iterations"]),
        "seconds": float(prediction.attrs["wall_seconds"]),
        "reference_error": float(reference.attrs.get("estimated_error", float("nan"))),
        "reference_seconds": reference_seconds,
        "soft": has_boundary_conditions(problem),
        "device": str(prediction.attrs.get("device", "cpu")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=None, help="seconds of training (default 300 without --iterations)")
    parser.add_argument("--iterations", type=int, default=None, help="iterations of training (the paper: 20000)")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda")
    parser.add_argument("--cases", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--options", default="{}", help="JSON training overrides")
    parser.add_argument("--table-only", action="store_true", help="rebuild the table from the cached results")
    parser.add_argument("--note", default="", help="text stating how the runs were made (load, threads)")
    args = parser.parse_args()
    names = args.cases or catalog.list_cases()
    if args.budget is None and args.iterations is None:
        args.budget = 300.0
    label = f"{args.iterations}it" if args.iterations is not None else f"{int(args.budget)}s"
    results_path = CACHE / f"catalog_{label}.json"
    CACHE.mkdir(exist_ok=True)
    options = json.loads(args.options)
    if args.device:
        options["device"] = args.device
    for name in [] if args.table_only else names:
        tag = "" if args.iterations is None else f"_{label}"
        try:
            result = run_case(name, args.budget, args.threads, options, args.iterations, tag)
        except DivergenceError as exc:
            result = {"case": name, "diverged": str(exc), "soft": has_boundary_conditions(load_spec(name))}
        # Re-read before writing: several runs of this script may share the file.
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        results[name] = result
        results_path.write_text(json.dumps(results, indent=1))
        print(json.dumps(result), flush=True)
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    rows = [
        "| case | rel L2 (per field) | mean | soft-BC target ≤ 5e-3 | iterations | train s | device | reference est. error |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in sorted(results):
        r = results[name]
        if "diverged" in r:
            target = "**missed**" if r["soft"] else "–"
            rows.append(f"| {name} | diverged: {r['diverged'].split(';')[0]} | – | {target} | – | – | – | – |")
            continue
        per_field = ", ".join(f"{f} {v:.2e}" for f, v in r["fields"].items())
        target = ("met" if r["mean"] <= SOFT_TARGET else "**missed**") if r["soft"] else "–"
        rows.append(f"| {name} | {per_field} | {r['mean']:.2e} | {target} | {r['iterations']} | {r['seconds']:.0f} | {r.get('device', 'cpu')} | {r['reference_error']:.1e} |")
    arguments = sys.argv[1:]
    if "--note" in arguments:
        index = arguments.index("--note")
        arguments = arguments[:index] + arguments[index + 2 :]
    command = "python benchmarks/bench_catalog.py " + " ".join(arguments)
    budget_text = f"{args.iterations} iterations" if args.iterations is not None else f"{args.budget:g} s"
    if args.iterations is not None and args.budget is not None:
        budget_text += f" (capped at {args.budget:g} s)"
    write_section(
        f"catalog_{label}",
        f"## Every catalog case, {budget_text} of training, default settings\n\n"
        + stamp(command)
        + (f"\n{args.note}\n" if args.note else "")
        + "\n"
        + "\n".join(rows)
        + "\n",
    )


if __name__ == "__main__":
    main()
