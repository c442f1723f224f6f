"""The paper's nine cases, every method beside strong classical solvers, at one budget.

For each case, ``phycrnet.compare`` runs the rows of :data:`phycrnet.studies.compare.METHODS`
(classical explicit and implicit on the spec's grid, py-pde on the spec's grid, PhyCRNet
under the ``paper``, ``crn`` and ``hybrid`` presets, the hybrid untrained, the PINN) with
``--budget`` seconds of training per network, against the converged reference (cached in
``benchmarks/.cache``). Per case the results are cached in ``.cache/three_way/<case>.json``,
so cases can run in separate processes (one torch thread each) and the table be assembled
afterwards:

    python benchmarks/bench_three_way.py --cases allen_cahn_periodic heat_flux ... --threads 1
    python benchmarks/bench_three_way.py --table-only

Writes RESULTS.md section ``three_way``: the errors, the wall seconds, the time each row
takes to reach the PINN's error, and per case what training adds over the classical step
the hybrid network starts from and which method is the better tool.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import xarray as xr

from common import CACHE, FIGURES, reference_for, stamp, write_section
from phycrnet.errors import DivergenceError
from phycrnet.io.paper_data import PAPER_DATA
from phycrnet.methods.classical import require_bounded
from phycrnet.spec import catalog, load_spec
from phycrnet.studies.compare import METHODS, MethodResult, compare, time_to_reach

LABELS = {
    "classical_explicit": "classical explicit",
    "classical_implicit": "classical implicit",
    "pypde": "py-pde",
    "paper": "paper",
    "crn": "crn",
    "hybrid_untrained": "hybrid, untrained",
    "hybrid": "hybrid",
    "pinn": "PINN",
}
NETWORKS = ("paper", "crn", "hybrid", "pinn")


def paper_cases() -> list[str]:
    return [c for c in catalog.list_cases() if c in PAPER_DATA]


def run_case(case: str, budget: float, threads: int | None, methods: list[str] | None) -> dict:
    """Run the rows ``methods`` (default: all) of one case and merge them into its cached
    result (rows run earlier stay; the common accuracy is taken again)."""
    problem = load_spec(case)
    out = CACHE / "three_way" / case
    comparison = compare(problem, time_budget=budget, out_dir=out, reference=reference_for(problem), threads=threads, methods=methods)
    fresh = asdict(comparison)
    result = load(case) or {**fresh, "rows": []}
    rows = {r["method"]: r for r in result["rows"]}
    rows.update({r["method"]: r for r in fresh["rows"]})
    result["rows"] = [rows[m] for m in METHODS if m in rows]
    _retarget(result)
    result["figures"] = []
    (CACHE / "three_way" / f"{case}.json").write_text(json.dumps(result, indent=1))
    return result


def _retarget(result: dict) -> None:
    """The common accuracy (the PINN's error) and each row's time to reach it, again; a
    classical row whose stored solution fails today's growth check counts as blown up."""
    for row in result["rows"]:
        _recheck_classical(result["case"], row)
    rows = {r["method"]: r for r in result["rows"]}
    source = rows.get("pinn") or rows.get("paper")
    if source is None:
        return
    result["target"], result["target_from"] = source["rel_l2"], source["method"]
    for row in result["rows"]:
        row["time_to_target"] = time_to_reach(MethodResult(**row), result["target"])


def _recheck_classical(case: str, row: dict) -> None:
    """Rows measured before ``phycrnet.classical`` refused solutions that grow a millionfold
    (burgers_mixed's implicit row on 32²) are held to that rule here."""
    path = CACHE / "three_way" / case / Path(row.get("file") or "none").name
    if not row["method"].startswith("classical_") or not math.isfinite(row["rel_l2"]) or not path.is_file():
        return
    with xr.open_dataset(path) as data:
        frames = np.stack([data[f].values for f in data.data_vars], axis=1)
    try:
        require_bounded(frames, row["method"].removeprefix("classical_"))
    except DivergenceError as exc:
        row.update(rel_l2=math.inf, rel_l2_final=math.inf, rel_l2_fields={}, note=str(exc))


def load(case: str) -> dict | None:
    path = CACHE / "three_way" / f"{case}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _cell(value: float | None, note: str = "") -> str:
    if value is None:
        return "–"
    if math.isfinite(value):
        return f"{value:.1e}"
    return "not done in budget" if "did not finish" in note else "blew up"


def error_table(results: dict[str, dict]) -> list[str]:
    head = "| case | " + " | ".join(LABELS[m] for m in METHODS) + " |"
    lines = [head, "|---" * (len(METHODS) + 1) + "|"]
    for case, result in results.items():
        rows = {r["method"]: r for r in result["rows"]}
        errors = {m: rows[m]["rel_l2"] for m in METHODS if m in rows}
        best = min(errors.values())
        cells = [f"**{_cell(e)}**" if e == best else _cell(e, rows[m].get("note", "") if m in rows else "") for m, e in ((m, errors.get(m)) for m in METHODS)]
        lines.append(f"| {case} | " + " | ".join(cells) + " |")
    return lines


def time_table(results: dict[str, dict]) -> list[str]:
    head = "| case | PINN error | " + " | ".join(f"{LABELS[m]} s / to reach" for m in METHODS) + " |"
    lines = [head, "|---" * (len(METHODS) + 2) + "|"]
    for case, result in results.items():
        rows = {r["method"]: r for r in result["rows"]}
        cells = []
        for m in METHODS:
            row = rows.get(m)
            if row is None:
                cells.append("–")
                continue
            reached = "not reached" if row["time_to_target"] is None else f"{row['time_to_target']:.1f}"
            cells.append(f"{row['wall_seconds']:.1f} / {reached}")
        lines.append(f"| {case} | {_cell(result['target'])} | " + " | ".join(cells) + " |")
    return lines


def verdict(case: str, result: dict) -> str:
    """One sentence per case: what training adds, and the better tool at this budget."""
    rows = {r["method"]: r for r in result["rows"]}
    trained, untrained = rows["hybrid"]["rel_l2"], rows["hybrid_untrained"]["rel_l2"]
    change = untrained / trained
    adds = f"training moves the hybrid from {untrained:.1e} to {trained:.1e} (" + (f"{change:.1f}x better" if change >= 1 else f"{1 / change:.1f}x worse") + ")"
    start = _attrs(case, rows["hybrid_untrained"])
    if start and not int(start.get("physics_input", 1)):
        adds = (
            f"the hybrid has no classical step here (cell Péclet {float(start['cell_peclet']):.1f}: the automatic rule turns the physics input off), "
            f"so it trains from random weights ({untrained:.1e}) to {trained:.1e}"
        )
    own = min(rows["crn"]["rel_l2"], rows["paper"]["rel_l2"])
    best_classical = min((rows[m] for m in ("classical_implicit", "classical_explicit") if m in rows), key=lambda r: r["rel_l2"])
    classical = best_classical["rel_l2"]
    best_network = min(trained, own, rows["pinn"]["rel_l2"])
    if untrained <= min(classical, best_network):  # a tie goes to the untrained row: same error, no training
        tool = "the untrained hybrid, a classical explicit step on the grid the networks train on"
    else:
        tool = "a classical solver" if classical <= best_network else "the trained hybrid" if trained == best_network else "a network"
    return (
        f"* **{case}**: {adds}; the best network that learns the physics itself (crn / paper) reaches {own:.1e} "
        f"against the PINN's {rows['pinn']['rel_l2']:.1e}; "
        + (
            f"the classical solvers reach {classical:.1e} in {best_classical['wall_seconds']:.1f} s ({LABELS[best_classical['method']]})"
            if math.isfinite(classical)
            else "the classical rows on this grid blew up or did not finish"
        )
        + f". Better tool on this grid: {tool}."
    )


def _attrs(case: str, row: dict) -> dict:
    """The attributes of a row's solution file (its resolved choices), or ``{}`` if it is gone."""
    path = CACHE / "three_way" / case / Path(row.get("file") or "none").name
    if not path.is_file():
        return {}
    with xr.open_dataset(path) as data:
        return dict(data.attrs)


def write_table(budget: float, command: str, note: str) -> None:
    results = {case: r for case in paper_cases() if (r := load(case)) is not None}
    for result in results.values():
        _retarget(result)
    text = [
        f"## The paper's nine cases: every method beside classical solvers, {budget:g} s of training per network",
        "",
        stamp(command),
        note,
        "rel L2 over space-time against the converged reference (mean over fields); the best of each row in bold.",
        "",
        *error_table(results),
        "",
        "Wall seconds of each row (the whole call, set-up included) and the training seconds it took to reach the PINN's error at the budget (classical rows: their wall time, if their error is at or below it).",
        "",
        *time_table(results),
        "",
        "What training adds, and the better tool, per case:",
        "",
        *(verdict(case, result) for case, result in results.items()),
    ]
    write_section("three_way", "\n".join(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0)
    parser.add_argument("--cases", nargs="*", default=None, help="default: the paper's nine cases")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--methods", nargs="*", default=None, help="rows to (re)run, merged into the cached case (default: all)")
    parser.add_argument("--table-only", action="store_true")
    parser.add_argument("--note", default="")
    args = parser.parse_args()
    (CACHE / "three_way").mkdir(parents=True, exist_ok=True)
    FIGURES.mkdir(exist_ok=True)
    if not args.table_only:
        for case in args.cases or paper_cases():
            result = run_case(case, args.budget, args.threads, args.methods)
            print(case, json.dumps({r["method"]: round(r["rel_l2"], 8) for r in result["rows"]}), flush=True)
    write_table(args.budget, f"python benchmarks/bench_three_way.py --budget {args.budget:g} --threads 1 (cases in two processes beside each other; rows merged per case)", args.note)


if __name__ == "__main__":
    main()
