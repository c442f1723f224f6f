"""Sparse noisy observations: coefficient identification and the gain from data.

Observations are drawn with :func:`phycrnet.observations.sample_observations` (the engine
of ``phycrnet sample``) from the converged py-pde reference of the case: a fraction of the
space-time nodes of the training window, with Gaussian noise relative to each field's
standard deviation. Every run trains PhyCRNet for the same number of iterations.

Parts (``--part``, results cached in ``benchmarks/.cache/observations.json``):

* ``table``: Allen-Cahn periodic (the paper's setup) with eps unknown (init 0.002, bounds
  [1e-4, 1e-2]; truth 1e-3), for sampling fractions 1 %, 5 %, 20 % and noise 0 %, 5 %, 10 %:
  identified eps and its error, solution rel L2 against the reference.
* ``burgers``: the viscosity unknown (init 0.01, bounds [1e-3, 5e-2]; truth 5e-3) from 5 %
  of the points with 5 % noise, on two Burgers cases: burgers_phycrnet (the original
  PhyCRNet's case, smooth enough to be resolved) trained on a 32² grid, where the converged
  solution put into the residual gives nu within 0.5 % (``--part bias``), and burgers_mixed
  (the paper's 33² case, whose shocks are thinner than a cell: 26 % bias at 33²) on the
  grid given by ``--solver-grid``.
* ``gain``: burgers_mixed (the weakest physics-only case) with known coefficients, without
  and with 5 % / 5 % observations, at equal iterations.

    python benchmarks/bench_observations.py --part table [--iterations 1500] [--threads 1]
    python benchmarks/bench_observations.py --table-only
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from common import CACHE, FIGURES, reference_for, reference_frames, stamp, write_section
from phycrnet.analysis.metrics import evaluate
from phycrnet.io.observations import sample_observations
from phycrnet.methods.solve import solve
from phycrnet.spec.problem import load_spec

RESULTS_FILE = CACHE / "observations.json"
FRACTIONS = (0.01, 0.05, 0.2)
NOISES = (0.0, 0.05, 0.1)
AC_UNKNOWN = {"eps": {"init": 0.002, "learn": True, "bounds": [1e-4, 1e-2]}}
BURGERS_UNKNOWN = {"nu": {"init": 0.01, "learn": True, "bounds": [1e-3, 5e-2]}}
TRUTH = {"eps": 1e-3, "nu": 5e-3}
#: The Burgers identification run that the 5 % target is judged on: a case the grid resolves.
RESOLVED_BURGERS_KEY = "burgers_nu_resolved_f0.05_n0.05"
#: Discretisations whose bias in nu is measured (``--part bias``).
BIAS_OPTIONS = {
    "fd4_hard_cn": {"derivatives": "fd4", "boundary": "hard"},
    "fd2_hard_cn": {"derivatives": "fd2", "boundary": "hard"},
    "fd4_hard_bdf2": {"derivatives": "fd4", "boundary": "hard", "time_scheme": "bdf2"},
}
RESOLVED_BIAS_OPTIONS = {"spectral_cn": {"derivatives": "spectral"}}


def run(key: str, case: str, *, fraction: float | None, noise: float, unknown: dict | None, iterations: int, threads: int | None, seed: int, options: dict, results_file=None, solver_grid: int | None = None) -> dict:
    """Train one configuration and return (and cache) its figures.

    ``solver_grid`` (nodes per axis) trains on a finer grid than the case's; the
    observations still come from the case's nodes, and the error is measured at them.
    """
    problem = load_spec(case)
    reference = reference_for(problem)
    observations = None
    if fraction is not None:
        observations = sample_observations(reference, fraction=fraction, noise=noise, seed=seed, t_max=problem.t_end)
    spec = problem if unknown is None else problem.with_changes(parameters={**problem.parameter_values(), **unknown})
    if solver_grid:
        spec = spec.with_changes(grid={"nx": solver_grid, "ny": solver_grid})
    prediction = solve(spec, iterations=iterations, threads=threads, data=observations, seed=seed, **options)
    device = str(prediction.attrs.get("device", "cpu"))
    report = evaluate(_at_nodes(prediction, reference), reference)
    identified = json.loads(prediction.attrs.get("identified_parameters", "{}"))
    result = {
        "case": case,
        "fraction": fraction,
        "noise": noise,
        "points": 0 if observations is None else len(observations),
        "rel_l2": report["rel_l2_mean"],
        "identified": identified,
        "identified_error": {k: abs(v - TRUTH[k]) / TRUTH[k] for k, v in identified.items() if k in TRUTH},
        "iterations": int(prediction.attrs["iterations"]),
        "seconds": float(prediction.attrs["wall_seconds"]),
        "device": device,
        "solver_grid": int(prediction.sizes["x"]),
        "options": options,
    }
    store(key, result, results_file)
    print(key, json.dumps(result), flush=True)
    return result


def discretisation_bias(case: str, name: str, nodes: int, options: dict, substeps: int = 1) -> dict:
    """The coefficient that best fits the converged solution through the discrete residual.

    No network and no noise: the case's py-pde reference, solved on ``nodes`` x ``nodes``
    and stored every dt / ``substeps`` (the network's sub-steps), is put into PhyCRNet's
    residual, which is linear in ``name``, and ``name`` is found by least squares. Its
    distance from the truth is the bias that remains however well the network fits the data.
    """
    import torch

    from phycrnet.physics.residual import Physics, PhysicsOptions

    problem = load_spec(case)
    refined = nodes != problem.grid.x.n or substeps != 1
    if refined:
        problem = problem.with_changes(grid={"nx": nodes, "ny": nodes}, time={"t_end": problem.t_end, "dt": problem.dt / substeps})
    reference = reference_for(problem, tag=f"{case}_{nodes}_s{substeps}" if refined else None)
    frames = torch.tensor(reference_frames(reference, problem.fields, problem.n_steps + 1), dtype=torch.float64)
    t = torch.as_tensor(problem.times, dtype=torch.float64)
    physics = Physics(problem, PhysicsOptions(**options), dtype=torch.float64)
    values = problem.parameter_values()
    at_zero = physics.pde_residual(frames, t, {**values, name: 0.0})
    slope = physics.pde_residual(frames, t, {**values, name: 1.0}) - at_zero
    at_two = physics.pde_residual(frames, t, {**values, name: 2.0})
    if not torch.allclose(at_two, at_zero + 2 * slope, atol=1e-8 * float(slope.abs().max())):
        raise SystemExit(f"the residual of {case} is not linear in {name}")
    mask = physics.pde_mask
    r0 = torch.cat([at_zero[:, c][:, mask[c]].flatten() for c in range(len(problem.fields))])
    r1 = torch.cat([slope[:, c][:, mask[c]].flatten() for c in range(len(problem.fields))])
    fitted = float(-(r0 * r1).sum() / (r1 * r1).sum())
    return {"case": case, "nodes": nodes, "substeps": substeps, "options": options, "fitted": fitted, "error": abs(fitted - TRUTH[name]) / TRUTH[name]}


def _at_nodes(prediction, reference):
    """The prediction at the reference's nodes (a finer solver grid must contain them); a
    coarser one is left as it is, and the error is measured at its own nodes (the reference
    interpolated onto them by :func:`phycrnet.metrics.evaluate`)."""
    if prediction.sizes["x"] <= reference.sizes["x"] and prediction.sizes["y"] <= reference.sizes["y"]:
        return prediction
    picked = prediction.sel(x=reference["x"].values, y=reference["y"].values, method="nearest")
    offset = max(np.abs(picked["x"].values - reference["x"].values).max(), np.abs(picked["y"].values - reference["y"].values).max())
    if offset > 1e-9:
        raise SystemExit(f"the solver grid does not contain the case's nodes (offset {offset:.2g})")
    return picked.assign_coords(x=reference["x"].values, y=reference["y"].values)


def store(key: str, result: dict, results_file=None) -> None:
    """Add one result to the JSON file (re-read first: several processes may share it)."""
    path = results_file or RESULTS_FILE
    results = json.loads(path.read_text()) if path.exists() else {}
    results[key] = result
    path.write_text(json.dumps(results, indent=1))


def jobs(part: str) -> list[tuple[str, dict]]:
    table = [
        (f"ac_f{fraction:g}_n{noise:g}", dict(case="allen_cahn_periodic", fraction=fraction, noise=noise, unknown=AC_UNKNOWN))
        for fraction in FRACTIONS
        for noise in NOISES
    ]
    table.append(("ac_physics_only", dict(case="allen_cahn_periodic", fraction=None, noise=0.0, unknown=None)))
    burgers = [
        ("burgers_nu_f0.05_n0.05", dict(case="burgers_mixed", fraction=0.05, noise=0.05, unknown=BURGERS_UNKNOWN)),
        (RESOLVED_BURGERS_KEY, dict(case="burgers_phycrnet", fraction=0.05, noise=0.05, unknown=BURGERS_UNKNOWN, solver_grid=32)),
    ]
    gain = [
        ("burgers_physics_only", dict(case="burgers_mixed", fraction=None, noise=0.0, unknown=None)),
        ("burgers_data_f0.05_n0.05", dict(case="burgers_mixed", fraction=0.05, noise=0.05, unknown=None)),
    ]
    parts = {"table": table, "burgers": burgers, "gain": gain}
    return [job for name in (parts if part == "all" else [part]) for job in parts[name]]


def write_report(command: str, note: str = "", results_file: Path | None = None) -> None:
    """Write the sections from the cached results; from ``results_file`` (``--results``)
    they go to sections named with the file's stem as suffix, leaving the main ones alone."""
    path = results_file or RESULTS_FILE
    results = json.loads(path.read_text()) if path.exists() else {}
    suffix = f"_{path.stem}" if results_file else ""
    lines = ["## Observations: coefficient identification and the gain from data\n", stamp(command)]
    if note:
        lines.append(f"\n{note}\n")
    table_keys = [f"ac_f{f:g}_n{n:g}" for f in FRACTIONS for n in NOISES]
    if any(k in results for k in table_keys):
        sample = next(results[k] for k in table_keys if k in results)
        lines += [
            f"\n### Allen-Cahn periodic, eps unknown (init 0.002, truth 0.001), {sample['iterations']} iterations per run\n",
            "| fraction | noise | points | identified eps | eps error | solution rel L2 | train s | device |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for key in table_keys:
            if key in results:
                r = results[key]
                lines.append(
                    f"| {r['fraction']:.0%} | {r['noise']:.0%} | {r['points']} | {r['identified']['eps']:.5f} | "
                    f"{r['identified_error']['eps']:.2%} | {r['rel_l2']:.2e} | {r['seconds']:.0f} | {r.get('device', 'cpu')} |"
                )
        if "ac_physics_only" in results:
            r = results["ac_physics_only"]
            lines.append(f"\nFor comparison, physics only with eps known: solution rel L2 {r['rel_l2']:.2e} after {r['iterations']} iterations.")
        target = results.get("ac_f0.05_n0.05")
        if target:
            met = "met" if target["identified_error"]["eps"] <= 0.02 else "**missed**"
            lines.append(f"\nTarget: eps within 2 % from 5 % of the points with 5 % noise: {target['identified_error']['eps']:.2%} ({met}).")
            seeds = sorted(k for k in results if k.startswith("ac_f0.05_n0.05_seed"))
            if seeds:
                runs = ", ".join(f"{k.rsplit('_', 1)[-1]} {results[k]['identified_error']['eps']:.2%} (solution {results[k]['rel_l2']:.1e})" for k in seeds)
                within = sum(results[k]["identified_error"]["eps"] <= 0.02 for k in seeds)
                lines.append(f"\nOther seeds of this run (observations and network): {runs}; {within} of {len(seeds)} within 2 %.")
        figure = _figure(results, table_keys, suffix)
        lines.append(f"\n![solution error and eps error versus sampling fraction](figures/{figure})\n")
    lines += _constant_weight_table(table_keys)
    if any(k in results for k in table_keys):
        write_section("observations" + suffix, "\n".join(lines) + "\n")
    lines = ["## Observations: Burgers viscosity and the gain from data\n", stamp(command)]
    if note:
        lines.append(f"\n{note}\n")
    burgers_keys = sorted(k for k in results if k.startswith("burgers_nu_"))
    if burgers_keys:
        lines += [
            "\n### Burgers, nu unknown (init 0.01, truth 0.005), 5 % of the case's space-time nodes observed, 5 % noise\n",
            "burgers_phycrnet (64² case, smooth enough to be resolved; 0.5 % bias at 32² with spectral derivatives) is trained on a 32² grid "
            "and its error measured there; burgers_mixed (33², shocks thinner than a cell: 26 % bias at 33², 1.7 – 4.4 % at 65², "
            "section `observations_bias`) on the solver grid given, its error at the case's 33² nodes.\n",
            "| run | case | solver grid | overrides | iterations | train s | identified nu | nu error | solution rel L2 | device |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for key in burgers_keys:
            r = results[key]
            grid = r.get("solver_grid", 33)
            lines.append(
                f"| {key} | {r.get('case', 'burgers_mixed')} | {grid}² | `{json.dumps(r.get('options', {}))}` | {r['iterations']} | {r['seconds']:.0f} | "
                f"{r['identified']['nu']:.5f} | {r['identified_error']['nu']:.2%} | {r['rel_l2']:.2e} | {r.get('device', 'cpu')} |"
            )
        for key in (RESOLVED_BURGERS_KEY, "burgers_nu_f0.05_n0.05"):
            if key in results:
                r = results[key]
                met = "met" if r["identified_error"]["nu"] <= 0.05 else "**missed**"
                lines.append(f"\nTarget: nu within 5 % from 5 % / 5 % observations, {r['case']} (run `{key}`): {r['identified_error']['nu']:.2%} ({met}).")
        resolved = [results[k]["identified_error"]["nu"] for k in burgers_keys if k.startswith(RESOLVED_BURGERS_KEY)]
        if len(resolved) > 1:
            within = sum(e <= 0.05 for e in resolved)
            lines.append(f"\nEvery burgers_phycrnet run in this table: nu within 5 % in {within} of {len(resolved)} (worst {max(resolved):.2%}).")
    if "burgers_physics_only" in results and "burgers_data_f0.05_n0.05" in results:
        a, b = results["burgers_physics_only"], results["burgers_data_f0.05_n0.05"]
        lines += [
            f"\n### The gain from data: burgers_mixed, known coefficients, {a['iterations']} iterations each\n",
            "| run | solution rel L2 | train s |",
            "|---|---|---|",
            f"| physics only | {a['rel_l2']:.2e} | {a['seconds']:.0f} |",
            f"| physics + 5 % observations, 5 % noise ({b['points']} points) | {b['rel_l2']:.2e} | {b['seconds']:.0f} |",
            f"\nThe data reduce the error {a['rel_l2'] / b['rel_l2']:.1f}-fold.",
        ]
    if len(lines) > 2 + bool(note):
        write_section("observations_burgers" + suffix, "\n".join(lines) + "\n")
    _write_bias_report(results, command, note, suffix)


def _write_bias_report(results: dict, command: str, note: str, suffix: str) -> None:
    """The discretisation-bias table (``--part bias``) in its own section."""
    lines = ["## Observations: how well can the Burgers viscosity be identified at all?\n", stamp(command)]
    if note:
        lines.append(f"\n{note}\n")
    bias_keys = [k for k in results if k.startswith("bias_nu_")]
    if bias_keys:
        lines += [
            "\nThe converged reference put into PhyCRNet's residual, nu fitted by least squares (no network, no noise). "
            "The shocks of burgers_mixed are thinner than a 33² cell, so the residual needs extra viscosity to explain them; "
            "burgers_phycrnet (smooth initial data) is resolved on 32² with spectral derivatives.\n",
            "| case | solver grid | sub-steps per frame | discretisation | fitted nu | error |",
            "|---|---|---|---|---|---|",
        ]
        for key in bias_keys:
            r = results[key]
            lines.append(f"| {r['case']} | {r['nodes']}² | {r.get('substeps', 1)} | `{json.dumps(r['options'])}` | {r['fitted']:.5f} | {r['error']:.1%} |")
        write_section("observations_bias" + suffix, "\n".join(lines) + "\n")


def _constant_weight_table(keys: list[str]) -> list[str]:
    """The earlier runs with a constant data weight (``data_final_ratio: 1``), if kept."""
    path = CACHE / "observations_constant_weight_1500it.json"
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    lines = [
        "\n#### The same with a constant data weight (data_final_ratio 1), 1500 iterations\n",
        "Measured before the decaying data weight became the default (runs on this CPU and, "
        "for equal iteration counts, on an H100; `device` column).\n",
        "| fraction | noise | eps error | solution rel L2 | device |",
        "|---|---|---|---|---|",
    ]
    for key in keys:
        if key in old:
            r = old[key]
            lines.append(f"| {r['fraction']:.0%} | {r['noise']:.0%} | {r['identified_error']['eps']:.2%} | {r['rel_l2']:.2e} | {r.get('device', 'cpu')} |")
    if "ac_physics_only" in old:
        lines.append(f"\nPhysics only, eps known, 1500 iterations: {old['ac_physics_only']['rel_l2']:.2e}.")
    return lines


def _figure(results: dict, keys: list[str], suffix: str = "") -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for noise in NOISES:
        rows = [results[f"ac_f{f:g}_n{noise:g}"] for f in FRACTIONS if f"ac_f{f:g}_n{noise:g}" in results]
        if not rows:
            continue
        x = [100 * r["fraction"] for r in rows]
        left.loglog(x, [r["rel_l2"] for r in rows], "o-", label=f"noise {noise:.0%}")
        right.loglog(x, [max(r["identified_error"]["eps"], 1e-5) for r in rows], "o-", label=f"noise {noise:.0%}")
    left.set(xlabel="observed points (%)", ylabel="solution rel L2", title="Allen-Cahn, eps unknown")
    right.set(xlabel="observed points (%)", ylabel="|eps - eps_true| / eps_true", title="identified eps")
    right.axhline(0.02, color="grey", ls=":", label="2 % target")
    for axis in (left, right):
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=8)
    fig.tight_layout()
    FIGURES.mkdir(exist_ok=True)
    name = f"observations_allen_cahn{suffix}.png"
    fig.savefig(FIGURES / name, dpi=120)
    plt.close(fig)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["table", "burgers", "gain", "bias", "all"], default="all")
    parser.add_argument("--only", nargs="*", default=None, help="run only these job keys")
    parser.add_argument("--iterations", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", default="{}", help="JSON training overrides (e.g. data_weight)")
    parser.add_argument("--tag", default="", help="suffix of the result keys (trial runs)")
    parser.add_argument("--results", type=Path, default=None, help="JSON file for the results (default .cache/observations.json)")
    parser.add_argument("--merge", nargs="*", type=Path, default=(), help="merge these result files into the default one")
    parser.add_argument("--note", default="", help="how the runs were made (machine, load)")
    parser.add_argument("--solver-grid", type=int, default=None, help="nodes per axis of the solver grid (default: the case's)")
    parser.add_argument("--table-only", action="store_true")
    args = parser.parse_args()
    CACHE.mkdir(exist_ok=True)
    for extra in args.merge:
        for key, result in json.loads(extra.read_text()).items():
            store(key, result)
    if not args.table_only and args.part in ("bias", "all"):
        for nodes, substeps in ((33, 1), (65, 1), (65, 2), (65, 4)):
            for label, options in BIAS_OPTIONS.items():
                key = f"bias_nu_g{nodes}_s{substeps}_{label}"
                result = discretisation_bias("burgers_mixed", "nu", nodes, options, substeps)
                store(key, result, args.results)
                print(key, json.dumps(result), flush=True)
        # The resolved case of the identification target (periodic: spectral is its default).
        for nodes in (32, 64):
            for label, options in {**RESOLVED_BIAS_OPTIONS, "fd4_hard_cn": BIAS_OPTIONS["fd4_hard_cn"]}.items():
                key = f"bias_nu_burgers_phycrnet_g{nodes}_s1_{label}"
                result = discretisation_bias("burgers_phycrnet", "nu", nodes, options)
                store(key, result, args.results)
                print(key, json.dumps(result), flush=True)
    if not args.table_only and args.part != "bias":
        for key, job in jobs(args.part):
            if args.only is None or key in args.only:
                job = {"solver_grid": args.solver_grid, **job}  # a job's own grid wins
                run(key + args.tag, iterations=args.iterations, threads=args.threads, seed=args.seed, options=json.loads(args.options), results_file=args.results, **job)
    arguments = sys.argv[1:]
    if "--note" in arguments:
        i = arguments.index("--note")
        arguments = arguments[:i] + arguments[i + 2 :]
    write_report("python benchmarks/bench_observations.py " + " ".join(arguments), args.note, args.results)


if __name__ == "__main__":
    main()
