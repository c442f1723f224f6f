"""The paper's table: PINN versus PhyCRNet at equal wall-clock budgets on every catalog case.

For each case: the converged py-pde reference (cached), a PhyCRNet run and a PINN run of
``--budget`` seconds each, rel L2 over space-time against the reference (mean over fields),
and the ratio error(PINN) / error(PhyCRNet) (the paper claims about 10). Results are cached
per method in ``benchmarks/.cache/paper_table_<budget>s.json`` so the methods (and cases)
can be run separately, e.g. in two processes of one thread each:

    python benchmarks/bench_paper_table.py --method pinn --threads 1 --cases allen_cahn_periodic ...
    python benchmarks/bench_paper_table.py --method phycrnet --threads 1 ...
    python benchmarks/bench_paper_table.py --import-catalog   # PhyCRNet rows from bench_catalog.py
    python benchmarks/bench_paper_table.py --table-only --note "how the runs were made"

Writes the table to RESULTS.md (section ``paper_table``), a bar chart of both errors and, per
case, snapshots of reference, PhyCRNet, PINN and their errors to ``benchmarks/figures/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from common import CACHE, FIGURES, reference_for, stamp, write_section
from phycrnet.spec import catalog
from phycrnet.io.solution import read_solution, write_solution
from phycrnet.analysis.metrics import evaluate
from phycrnet.io.paper_data import PAPER_DATA
from phycrnet.analysis.plots import plot_comparison
from phycrnet.spec.problem import load_spec

TARGET_RATIO = 10.0


def results_path(budget: float):
    return CACHE / f"paper_table_{int(budget)}s.json"


def load_results(budget: float) -> dict:
    path = results_path(budget)
    return json.loads(path.read_text()) if path.exists() else {}


def store(budget: float, case: str, method: str, entry: dict) -> None:
    # Re-read before writing: two processes may share the file.
    results = load_results(budget)
    results.setdefault(case, {})[method] = entry
    results_path(budget).write_text(json.dumps(results, indent=1))


def run(case: str, method: str, budget: float, threads: int | None, seed: int) -> dict:
    from phycrnet.methods.pinn import pinn_solve
    from phycrnet.methods.solve import solve

    problem = load_spec(case)
    reference = reference_for(problem)
    runner = solve if method == "phycrnet" else pinn_solve
    start = time.perf_counter()
    prediction = runner(problem, time_budget=budget, threads=threads, seed=seed)
    path = CACHE / f"{case}_{method}_{int(budget)}s.nc"
    write_solution(prediction, path)
    report = evaluate(prediction, reference)
    return {
        "rel_l2": report["rel_l2_mean"],
        "fields": {f: v["rel_l2"] for f, v in report["fields"].items()},
        "iterations": int(prediction.attrs["iterations"]),
        "seconds": float(prediction.attrs["wall_seconds"]),
        "total_seconds": time.perf_counter() - start,
        "file": path.name,
        "threads": threads,
    }


def import_catalog(budget: float) -> None:
    """Take the PhyCRNet rows from ``bench_catalog.py``'s results at the same budget."""
    catalog_file = CACHE / f"catalog_{int(budget)}s.json"
    if not catalog_file.exists():
        sys.exit(f"no {catalog_file.name}: run bench_catalog.py --budget {budget:g} first")
    for case, r in json.loads(catalog_file.read_text()).items():
        source = CACHE / f"{case}_phycrnet.nc"
        target = CACHE / f"{case}_phycrnet_{int(budget)}s.nc"
        if source.exists():
            target.write_bytes(source.read_bytes())
        store(budget, case, "phycrnet", {
            "rel_l2": r["mean"], "fields": r["fields"], "iterations": r["iterations"], "seconds": r["seconds"],
            "file": target.name, "threads": None, "from": "bench_catalog.py",
        })  # fmt: skip


def figures(budget: float, results: dict) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(exist_ok=True)
    written = []
    complete = [c for c in sorted(results) if {"phycrnet", "pinn"} <= set(results[c])]
    if complete:
        fig, axis = plt.subplots(figsize=(max(6, 0.9 * len(complete)), 3.8))
        x = np.arange(len(complete))
        for offset, method in ((-0.2, "phycrnet"), (0.2, "pinn")):
            axis.bar(x + offset, [results[c][method]["rel_l2"] for c in complete], width=0.4, label=method)
        axis.set_yscale("log")
        axis.set_xticks(x, complete, rotation=35, ha="right", fontsize=8)
        axis.set_ylabel("rel L2 over space-time")
        axis.set_title(f"PhyCRNet vs PINN, {budget:g} s of training each")
        axis.legend()
        axis.grid(True, axis="y", which="both", alpha=0.3)
        fig.tight_layout()
        name = f"paper_table_{int(budget)}s.png"
        fig.savefig(FIGURES / name, dpi=120)
        plt.close(fig)
        written.append(name)
    for case in complete:
        reference = reference_for(load_spec(case))
        predictions = {m: read_solution(CACHE / results[case][m]["file"]) for m in ("phycrnet", "pinn")}
        field = list(predictions["phycrnet"].data_vars)[0]
        name = f"paper_table_{case}.png"
        plot_comparison(reference, predictions, FIGURES / name, field=field)
        written.append(name)
    return written


def write_table(budget: float, note: str, command: str) -> None:
    results = load_results(budget)
    rows = [
        "| case | PhyCRNet rel L2 | PINN rel L2 | ratio PINN / PhyCRNet | ≥ 10 | PhyCRNet its | PINN its |",
        "|---|---|---|---|---|---|---|",
    ]
    for case in sorted(results):
        entry = results[case]
        net, pinn = entry.get("phycrnet"), entry.get("pinn")
        if not (net and pinn):
            rows.append(f"| {case} | {net['rel_l2'] if net else float('nan'):.2e} | {pinn['rel_l2'] if pinn else float('nan'):.2e} | – | – | | |")
            continue
        ratio = pinn["rel_l2"] / net["rel_l2"]
        rows.append(
            f"| {case} | {net['rel_l2']:.2e} | {pinn['rel_l2']:.2e} | {ratio:.2g} | {'yes' if ratio >= TARGET_RATIO else '**no**'} | "
            f"{net['iterations']} | {pinn['iterations']} |"
        )
    images = figures(budget, results)
    text = (
        f"## The paper's table: PINN vs PhyCRNet, {budget:g} s of training each\n\n"
        + stamp(command)
        + (f"\n{note}\n" if note else "")
        + "\n" + "\n".join(rows) + "\n\n"
        + "\n".join(f"![{name}](figures/{name})" for name in images)
        + "\n"
    )
    write_section("paper_table", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--cases", nargs="*", default=None, help="default: the paper's cases")
    parser.add_argument("--method", choices=["phycrnet", "pinn", "both"], default="both")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--import-catalog", action="store_true")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    if args.import_catalog:
        import_catalog(args.budget)
    cases = args.cases or [c for c in catalog.list_cases() if c in PAPER_DATA]
    methods = ["phycrnet", "pinn"] if args.method == "both" else [args.method]
    if not (args.table_only or args.import_catalog):
        for case in cases:
            for method in methods:
                entry = run(case, method, args.budget, args.threads, args.seed)
                store(args.budget, case, method, entry)
                print(case, method, json.dumps(entry), flush=True)
    arguments = [a for a in sys.argv[1:]]
    if "--note" in arguments:
        i = arguments.index("--note")
        arguments = arguments[:i] + arguments[i + 2 :]
    write_table(args.budget, args.note, "python benchmarks/bench_paper_table.py " + " ".join(arguments))


if __name__ == "__main__":
    main()
