"""The classical solvers on every catalog case: wall time, and error where a reference is cached.

``phycrnet classical`` on the spec's grid, both schemes, one torch thread: the implicit
Crank-Nicolson solve by Newton (sparse LU on bounded finite-difference grids, Newton-Krylov
with the implicit-diffusion preconditioner elsewhere) and the explicit Heun steps the hybrid
network starts from; and, as the second-order baseline that a network of the project's
numerics must at least match on bounded grids, the implicit solve with second-order stencils
(``derivatives: fd2``). The error is the rel L2 over space-time against the converged
reference cached in ``benchmarks/.cache`` by the other benchmarks (cases without one show
the time alone).

    python benchmarks/bench_classical.py [--cases ...]
    python benchmarks/bench_classical.py --scaling diffusion_reaction_mixed 33 64 128

Writes RESULTS.md section ``classical`` (``classical_scaling`` with ``--scaling``).
"""

from __future__ import annotations

import argparse
import math
import time

from common import CACHE, stamp, write_section
from phycrnet.analysis.metrics import evaluate
from phycrnet.errors import PhycrnetError
from phycrnet.io.solution import read_solution
from phycrnet.methods.classical import classical
from phycrnet.spec import catalog, load_spec


def measure(case: str, scheme: str, **physics: str) -> tuple[float, float, str]:
    """(wall seconds, rel L2 or nan, a note)."""
    problem = load_spec(case)
    start = time.perf_counter()
    try:
        solution = classical(problem, scheme=scheme, threads=1, **physics)
    except PhycrnetError as exc:
        return time.perf_counter() - start, math.nan, str(exc)
    seconds = time.perf_counter() - start
    reference = CACHE / f"{case}_ref.nc"
    error = evaluate(solution, read_solution(reference))["rel_l2_mean"] if reference.exists() else math.nan
    note = f"{int(solution.attrs['substeps'])} sub-steps" + (f" x {int(solution.attrs['predictor_steps'])} predictor steps" if scheme == "explicit" else "")
    return seconds, error, note


def scaling(case: str, sizes: list[int]) -> None:
    """The implicit solver's wall time on ``case`` at ``n x n`` nodes for each n (section
    ``classical_scaling``): how the Newton solve grows with the grid."""
    lines = [
        f"## The implicit classical solver against grid size, {case}, one thread",
        "",
        stamp(f"python benchmarks/bench_classical.py --scaling {case} " + " ".join(map(str, sizes))),
        "| grid x fields x frames | implicit s | time steps |",
        "|---|---|---|",
    ]
    for n in sizes:
        problem = load_spec(case).with_changes(grid={"nx": n, "ny": n})
        start = time.perf_counter()
        solution = classical(problem, scheme="implicit", threads=1)
        seconds = time.perf_counter() - start
        lines.append(f"| {n}x{n} x {len(problem.fields)} x {problem.n_steps + 1} | {seconds:.1f} | {int(solution.attrs['iterations'])} |")
        print(lines[-1], flush=True)
    write_section("classical_scaling", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="*", default=None)
    parser.add_argument("--scaling", nargs="+", default=None, metavar="CASE N", help="time the implicit solver on CASE at N x N nodes for each N instead")
    args = parser.parse_args()
    if args.scaling:
        scaling(args.scaling[0], [int(n) for n in args.scaling[1:]])
        return
    cases = args.cases or [c for c in catalog.list_cases() if c != "burgers_phycrnet_full"]
    lines = [
        "## The classical solvers on the catalog cases (spec grid, one thread)",
        "",
        stamp("python benchmarks/bench_classical.py" + (" --cases " + " ".join(args.cases) if args.cases else "")),
        "| case | grid x fields x frames | implicit s | implicit rel L2 | implicit fd2 s | implicit fd2 rel L2 | explicit s | explicit rel L2 | explicit steps |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        problem = load_spec(case)
        size = f"{problem.grid.x.n}x{problem.grid.y.n} x {len(problem.fields)} x {problem.n_steps + 1}"
        (ti, ei, _), (t2, e2, _), (te, ee, note) = measure(case, "implicit"), measure(case, "implicit", derivatives="fd2"), measure(case, "explicit")
        lines.append(f"| {case} | {size} | {ti:.1f} | {ei:.1e} | {t2:.1f} | {e2:.1e} | {te:.1f} | {ee:.1e} | {note} |")
        print(lines[-1], flush=True)
    write_section("classical", "\n".join(lines + ["", "nan: no cached reference for the case."]))


if __name__ == "__main__":
    main()
