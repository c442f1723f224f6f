"""Discretisation floors: the error of the exact minimiser of each discrete residual.

However well PhyCRNet is trained, its error cannot fall below that of the exact solution of
the discrete equations it minimises. For each case and discretisation this script solves
those equations without any network (:func:`phycrnet.discrete.discrete_solution`) and
reports the rel L2 over space-time against the converged py-pde reference.

    python benchmarks/bench_floors.py --cases allen_cahn_periodic allen_cahn_zero_flux \
        --variants '{"fd2 soft": {"derivatives": "fd2", "boundary": "soft"}, ...}'

A variant may also name ``substeps`` (steps per frame) and ``refine`` (solve on the grid
``refine: r`` trains on, :func:`phycrnet.methods.resolve.refined`, and compare at the spec's nodes).
Hard-boundary finite-difference floors use the sparse Newton step, so refined grids of a
few tens of thousands of unknowns take minutes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from common import frames_rel_l2, reference_for, reference_frames, stamp, write_section
from phycrnet.errors import PhycrnetError
from phycrnet.methods.newton import discrete_solution
from phycrnet.methods.resolve import refined
from phycrnet.physics.residual import PhysicsOptions
from phycrnet.spec.problem import load_spec

DEFAULT_VARIANTS = {
    "fd2 soft (paper)": {"derivatives": "fd2", "boundary": "soft"},
    "fd4 soft": {"derivatives": "fd4", "boundary": "soft"},
    "fd2 hard": {"derivatives": "fd2", "boundary": "hard"},
    "fd4 hard (default)": {"derivatives": "fd4", "boundary": "hard"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", required=True)
    parser.add_argument("--variants", default=json.dumps(DEFAULT_VARIANTS), help="JSON: name -> PhysicsOptions fields (+ substeps, refine)")
    parser.add_argument("--title", default="Discretisation floors (no network)")
    parser.add_argument("--section", default="floors")
    args = parser.parse_args()
    variants = json.loads(args.variants)
    rows = ["| case | " + " | ".join(variants) + " |", "|---|" + "---|" * len(variants)]
    for case in args.cases:
        problem = load_spec(case)
        reference = reference_frames(reference_for(problem), problem.fields, problem.n_steps + 1)
        cells = []
        for name, options in variants.items():
            options = dict(options)
            substeps = options.pop("substeps", 1)
            factor = options.pop("refine", 1)
            start = time.perf_counter()
            try:
                frames = discrete_solution(refined(problem, factor), PhysicsOptions(**options), substeps=substeps)
            except PhycrnetError as error:
                cells.append("diverged")
                print(case, name, error, flush=True)
                continue
            error = frames_rel_l2(frames[..., ::factor, ::factor], reference)
            cells.append(f"{error:.2e}")
            print(case, name, f"{error:.3e}", f"{time.perf_counter() - start:.0f}s", flush=True)
        rows.append(f"| {case} | " + " | ".join(cells) + " |")
    command = "python benchmarks/bench_floors.py " + " ".join(f"'{a}'" if " " in a else a for a in sys.argv[1:])
    text = (
        f"## {args.title}\n\n"
        + stamp(command)
        + "\nrel L2 over space-time against the py-pde reference of the exact solution of each discrete "
        "residual (Crank–Nicolson in time unless stated), solved step by step with Gauss–Newton. "
        "A trained PhyCRNet cannot do better than its discretisation's floor.\n\n"
        + "\n".join(rows)
        + "\n"
    )
    write_section(args.section, text)


if __name__ == "__main__":
    main()
