"""Compare training variants (boundary modes, weightings, stencils, ...) at equal budgets.

Each variant is a set of training overrides; every (case, variant) pair trains for
``--budget`` seconds and is evaluated against the cached py-pde reference. The table goes to
RESULTS.md under ``--section``.

    python benchmarks/bench_variants.py --section boundary_modes --budget 120 \
        --cases allen_cahn_zero_flux allen_cahn_mixed \
        --variants '{"soft": {"boundary": "soft"}, "hard": {"boundary": "hard"}}'
"""

from __future__ import annotations

import argparse
import json
import sys

from common import reference_for, stamp, write_section
from phycrnet.analysis.metrics import evaluate
from phycrnet.methods.solve import solve
from phycrnet.spec.problem import load_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", required=True)
    parser.add_argument("--title", default=None)
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--cases", nargs="+", required=True)
    parser.add_argument("--variants", required=True, help="JSON: name -> training overrides")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    variants = json.loads(args.variants)
    rows = ["| case | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for case in args.cases:
        problem = load_spec(case)
        reference = reference_for(problem)
        cells = []
        for name, overrides in variants.items():
            model = overrides.pop("model", None)
            prediction = solve(problem, time_budget=args.budget, threads=args.threads, model=model, **overrides)
            error = evaluate(prediction, reference)["rel_l2_mean"]
            cells.append(f"{error:.2e} ({int(prediction.attrs['iterations'])} it)")
            print(case, name, error, flush=True)
        rows.append(f"| {case} | " + " | ".join(cells) + " |")
    command = "python benchmarks/bench_variants.py " + " ".join(f"'{a}'" if " " in a else a for a in sys.argv[1:])
    title = args.title or f"Variants compared ({args.section})"
    text = (
        f"## {title}\n\n"
        + stamp(command)
        + f"\nrel L2 over space-time (mean over fields) after {args.budget:g} s of training; "
        "variants: " + "; ".join(f"`{k}` = {json.dumps(v)}" for k, v in json.loads(args.variants).items()) + "\n\n"
        + "\n".join(rows)
        + "\n"
    )
    write_section(args.section, text)


if __name__ == "__main__":
    main()
