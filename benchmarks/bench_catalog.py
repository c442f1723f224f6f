"""Every catalog case at a fixed training budget: PhyCRNet error against the py-pde reference.

For each case: the converged reference (cached), a PhyCRNet run with the default settings
and ``--budget`` seconds of training (or ``--iterations N``, the paper's budget being
20 000), and its rel L2 over space-time per field. Writes the table to RESULTS.md (section
``catalog_<budget>s`` or ``catalog_<N>it``).

    python benchmarks/bench_catalog.py [--budget 300] [--cases NAME ...] [--threads N]
    python benchmarks/bench_catalog.py --iterations 20000 --device cuda --cases allen_cahn_flux
    python benchmarks/bench_catalog.py --cases heat_flux --seeds 0 1 2 3   # run-to-run spread
    python benchmarks/bench_catalog.py --cases burgers_mixed --options '{"refine": 2}' --label refine2

With ``--seeds`` every case runs once per seed (section ``catalog_<budget>s_seeds``), and a
summary gives, per case, the median and worst error and how many seeds met the soft-BC target.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from common import CACHE, reference_for, stamp, write_section
from phycrnet.analysis.metrics import evaluate
from phycrnet.errors import DivergenceError
from phycrnet.io.solution import write_solution
from phycrnet.methods.solve import solve
from phycrnet.spec import catalog
from phycrnet.spec.problem import load_spec

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


def _spread_summary(results: dict) -> list[str]:
    """Per case over its seeds: median and worst error, and how many met the soft-BC target."""
    by_case: dict[str, list[dict]] = {}
    for result in results.values():
        by_case.setdefault(result["case"], []).append(result)
    rows = ["| case | seeds | median | worst | seeds at or under 5e-3 |", "|---|---|---|---|---|"]
    for name in sorted(by_case):
        runs = by_case[name]
        errors = sorted(r["mean"] if "mean" in r else float("inf") for r in runs)
        seeds = ", ".join(str(r.get("seed", 0)) for r in sorted(runs, key=lambda r: r.get("seed", 0)))
        met = sum(e <= SOFT_TARGET for e in errors)
        rows.append(f"| {name} | {seeds} | {statistics.median(errors):.2e} | {errors[-1]:.2e} | {met} of {len(errors)} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=None, help="seconds of training (default 300 without --iterations)")
    parser.add_argument("--iterations", type=int, default=None, help="iterations of training (the paper: 20000)")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda")
    parser.add_argument("--cases", nargs="*", default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--options", default="{}", help="JSON training overrides")
    parser.add_argument("--label", default="", help="suffix of the results file and section (for runs with --options)")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="run every case once per seed (spread table)")
    parser.add_argument("--table-only", action="store_true", help="rebuild the table from the cached results")
    parser.add_argument("--note", default="", help="text stating how the runs were made (load, threads)")
    args = parser.parse_args()
    names = args.cases or catalog.list_cases()
    if args.budget is None and args.iterations is None:
        args.budget = 300.0
    label = f"{args.iterations}it" if args.iterations is not None else f"{int(args.budget)}s"
    if args.seeds is not None:
        label += "_seeds"
    if args.label:
        label += f"_{args.label}"
    results_path = CACHE / f"catalog_{label}.json"
    CACHE.mkdir(exist_ok=True)
    options = json.loads(args.options)
    if args.device:
        options["device"] = args.device
    runs = [(name, None) for name in names] if args.seeds is None else [(name, seed) for name in names for seed in args.seeds]
    for name, seed in [] if args.table_only else runs:
        tag = "" if args.iterations is None and not args.label else f"_{label}"
        run_options = options if seed is None else {**options, "seed": seed}
        if seed is not None:
            tag += f"_seed{seed}"
        try:
            result = run_case(name, args.budget, args.threads, run_options, args.iterations, tag)
        except DivergenceError as exc:
            result = {"case": name, "diverged": str(exc), "soft": has_boundary_conditions(load_spec(name))}
        result["seed"] = run_options.get("seed", 0)
        # Re-read before writing: several runs of this script may share the file.
        results = json.loads(results_path.read_text()) if results_path.exists() else {}
        results[name if seed is None else f"{name} (seed {seed})"] = result
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
    if args.seeds is not None:
        rows += ["", *_spread_summary(results)]
    arguments = sys.argv[1:]
    if "--note" in arguments:
        index = arguments.index("--note")
        arguments = arguments[:index] + arguments[index + 2 :]
    command = "python benchmarks/bench_catalog.py " + " ".join(arguments)
    budget_text = f"{args.iterations} iterations" if args.iterations is not None else f"{args.budget:g} s"
    settings = "default settings" if not options else f"settings `{json.dumps(options)}`"
    if args.iterations is not None and args.budget is not None:
        budget_text += f" (capped at {args.budget:g} s)"
    write_section(
        f"catalog_{label}",
        (f"## Run-to-run spread, {budget_text} of training, {settings}, one run per seed\n\n" if args.seeds is not None else f"## Every catalog case, {budget_text} of training, {settings}\n\n")
        + stamp(command)
        + (f"\n{args.note}\n" if args.note else "")
        + "\n"
        + "\n".join(rows)
        + "\n",
    )


if __name__ == "__main__":
    main()
