"""PINN baseline check: phycrnet's ``pinn_solve`` against DeepXDE at the same time budget.

Both solve the built-in ``allen_cahn_periodic`` case (u_t = 0.001 Δu + u - u³ on the
periodic unit square, t in [0, 1]) with the same ingredients: Fourier features of harmonics
1 and 2 on both periodic axes (so periodicity is exact and no boundary loss is needed), the
initial value built in as u = u0(x, y) + t·N(x, y, t), a tanh MLP, random collocation points
resampled every 100 iterations, Adam with an exponential learning-rate decay over the Adam
phase, then L-BFGS for the last part of the budget. The runs are sequential, each with the
same number of torch threads; the error is the rel L2 over space-time against the cached
py-pde reference on the 32² grid at the 21 frame times (``phycrnet.metrics.evaluate``).

    pip install -e '.[bench]'         # DeepXDE (pytorch backend)
    python benchmarks/bench_deepxde.py [--budget 300] [--threads 2] [--seed 0] [--options JSON]
    python benchmarks/bench_deepxde.py --concurrent --threads 1   # on a loaded machine

On a machine busy with other work, two torch threads per run can stall on thread barriers
(DeepXDE's many small operations especially); ``--concurrent --threads 1`` runs both at once
with one thread each, so that both see the same load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("DDE_BACKEND", "pytorch")

from types import SimpleNamespace

import numpy as np
import torch

from common import reference_for, stamp, write_section
from phycrnet.analysis.metrics import evaluate
from phycrnet.io.solution import solution_dataset
from phycrnet.methods.pinn import pinn_solve
from phycrnet.options import pinn_options
from phycrnet.spec.problem import load_spec

CASE = "allen_cahn_periodic"


def merged_options(options: dict) -> SimpleNamespace:
    """Our PINN's training and network options as one record."""
    run = pinn_options(overrides=options)
    return SimpleNamespace(**run.training.model_dump(), **run.pinn.model_dump())


def deepxde_settings(config: SimpleNamespace) -> dict:
    """The DeepXDE run mirrors these options of ours."""
    return {
        "hidden": list(config.hidden),
        "harmonics": list(config.harmonics),
        "n_interior": config.n_interior,
        "resample_every": config.resample_every,
        "lr": config.lr,
        "final_lr_ratio": config.final_lr_ratio,
        "lbfgs_fraction": config.lbfgs_fraction,
    }


def run_deepxde(problem, budget: float, seed: int, settings: dict) -> tuple[np.ndarray, dict]:
    """Train DeepXDE for ``budget`` seconds; frames ``(T, ny, nx)`` and a summary."""
    import deepxde as dde

    dde.config.set_random_seed(seed)
    eps = problem.parameter_values()["eps"]
    harmonics = settings["harmonics"]

    def pde(x, u):
        u_t = dde.grad.jacobian(u, x, i=0, j=2)
        u_xx = dde.grad.hessian(u, x, i=0, j=0)
        u_yy = dde.grad.hessian(u, x, i=1, j=1)
        return u_t - (eps * (u_xx + u_yy) + u - u**3)

    def features(x):
        parts = []
        for axis in (0, 1):
            for k in harmonics:
                parts += [torch.sin(2 * math.pi * k * x[:, axis : axis + 1]), torch.cos(2 * math.pi * k * x[:, axis : axis + 1])]
        return torch.cat(parts + [2 * x[:, 2:3] / problem.t_end - 1], dim=1)

    def initial_built_in(x, n):
        u0 = 0.5 * (torch.sin(4 * math.pi * x[:, 0:1]) + torch.sin(4 * math.pi * x[:, 1:2]))
        return u0 + x[:, 2:3] / problem.t_end * n

    geometry = dde.geometry.GeometryXTime(dde.geometry.Rectangle([0.0, 0.0], [1.0, 1.0]), dde.geometry.TimeDomain(0.0, problem.t_end))
    data = dde.data.TimePDE(geometry, pde, [], num_domain=settings["n_interior"], num_boundary=0, num_initial=0, train_distribution="pseudo")
    width = 4 * len(harmonics) + 1
    net = dde.nn.FNN([width] + settings["hidden"] + [1], "tanh", "Glorot normal")
    net.apply_feature_transform(features)
    net.apply_output_transform(initial_built_in)
    model = dde.Model(data, net)

    adam_budget = budget * (1 - settings["lbfgs_fraction"])
    start = time.perf_counter()

    class Budget(dde.callbacks.Callback):
        def __init__(self, seconds: float) -> None:
            super().__init__()
            self.seconds = seconds

        def on_epoch_end(self) -> None:
            if time.perf_counter() - start >= self.seconds:
                self.model.stop_training = True

    # The same schedule as ours: lr * ratio**(fraction of the Adam time spent).
    decay = ("lambda", lambda _: settings["final_lr_ratio"] ** min(1.0, (time.perf_counter() - start) / adam_budget))
    model.compile("adam", lr=settings["lr"], decay=decay)
    resampler = dde.callbacks.PDEPointResampler(period=settings["resample_every"])
    history, _ = model.train(iterations=10**8, display_every=10**7, callbacks=[Budget(adam_budget), resampler], verbose=0)
    adam_iterations = model.train_state.step
    if settings["lbfgs_fraction"] > 0 and time.perf_counter() - start < budget:
        dde.optimizers.config.set_LBFGS_options(maxiter=10**7)
        dde.optimizers.config.LBFGS_options["iter_per_step"] = 20
        dde.optimizers.config.LBFGS_options["fun_per_step"] = 25
        model.compile("L-BFGS")
        model.train(display_every=10**7, callbacks=[Budget(budget)], verbose=0)
    seconds = time.perf_counter() - start
    grid = problem.grid
    T, Y, X = np.meshgrid(problem.times, grid.y.points, grid.x.points, indexing="ij")
    points = np.stack([X.ravel(), Y.ravel(), T.ravel()], axis=1).astype(np.float32)
    frames = model.predict(points).reshape(T.shape).astype(np.float64)
    return frames, {"iterations": int(model.train_state.step), "adam_iterations": int(adam_iterations), "seconds": seconds}


def rel_l2(problem, frames: np.ndarray, reference) -> float:
    grid = problem.grid
    dataset = solution_dataset({"u": frames}, problem.times, grid.x.points, grid.y.points, solver="deepxde", periodic=problem.periodic)
    return float(evaluate(dataset, reference)["fields"]["u"]["rel_l2"])


OURS, THEIRS = "phycrnet pinn", "DeepXDE 1.15 (pytorch)"


def measure(which: str, problem, reference, args, options: dict) -> dict:
    """Train one solver for the budget; its rel L2, iterations and seconds."""
    torch.set_num_threads(args.threads)
    if which == "ours":
        ours = pinn_solve(problem, time_budget=args.budget, seed=args.seed, device="cpu", **{**options, "threads": args.threads})
        return {
            "rel_l2": float(evaluate(ours, reference)["fields"]["u"]["rel_l2"]),
            "iterations": int(ours.attrs["iterations"]),
            "adam_iterations": int(ours.attrs["adam_iterations"]),
            "seconds": float(ours.attrs["wall_seconds"]),
        }
    frames, summary = run_deepxde(problem, args.budget, args.seed, deepxde_settings(merged_options(options)))
    return {"rel_l2": rel_l2(problem, frames, reference), **summary}


def run_concurrently(args) -> dict:
    """Both solvers at once, each in its own process (so both see the same machine load)."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        runs = {}
        for which in ("ours", "deepxde"):
            target = Path(directory) / f"{which}.json"
            command = [sys.executable, __file__, "--only", which, "--json", str(target), "--budget", str(args.budget),
                       "--threads", str(args.threads), "--seed", str(args.seed), "--options", args.options]  # fmt: skip
            runs[which] = (subprocess.Popen(command), target)
        for process, _ in runs.values():
            process.wait()
        return {OURS: json.loads(runs["ours"][1].read_text()), THEIRS: json.loads(runs["deepxde"][1].read_text())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=300.0, help="seconds of training per solver")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of each run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--options", default="{}", help="JSON overrides of our PINN options (training and pinn sections)")
    parser.add_argument("--concurrent", action="store_true", help="run both at once (use --threads 1) instead of one after the other")
    parser.add_argument("--only", choices=("ours", "deepxde"), help="run one solver and print its figures (no RESULTS.md)")
    parser.add_argument("--json", type=Path, help="with --only: write the figures to this file")
    args = parser.parse_args()
    options = json.loads(args.options)
    torch.set_num_threads(args.threads)
    if args.concurrent and not args.only:
        results = run_concurrently(args)
    else:
        problem = load_spec(CASE)
        reference = reference_for(problem)
        names = {"ours": OURS, "deepxde": THEIRS}
        results = {names[w]: measure(w, problem, reference, args, options) for w in ([args.only] if args.only else ["ours", "deepxde"])}
    for name, figures in results.items():
        print(name, figures, flush=True)
    if args.only:
        if args.json:
            args.json.write_text(json.dumps(results[{"ours": OURS, "deepxde": THEIRS}[args.only]]))
        return
    write_results(args, merged_options(options), results)


def write_results(args, config: SimpleNamespace, results: dict) -> None:
    rows = ["| solver | rel L2 (space-time) | iterations (Adam + L-BFGS) | training s | iterations/s |", "|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['rel_l2']:.2e} | {r['iterations']} ({r['adam_iterations']} + {r['iterations'] - r['adam_iterations']}) "
            f"| {r['seconds']:.1f} | {r['iterations'] / r['seconds']:.1f} |"
        )
    ours, theirs = results[OURS]["rel_l2"], results[THEIRS]["rel_l2"]
    command = "python benchmarks/bench_deepxde.py " + " ".join(sys.argv[1:])
    how = "Concurrent runs (both at once)" if args.concurrent else "Sequential runs"
    text = (
        f"## PINN baseline vs DeepXDE, Allen–Cahn periodic, {args.budget:g} s each\n\n"
        + stamp(command)
        + f"\n{how}, {args.threads} torch thread(s) each, seed {args.seed}. Same setup for both: Fourier features "
        f"(harmonics {list(config.harmonics)}) on x and y, built-in initial value u0 + t·N, tanh MLP {list(config.hidden)}, "
        f"{config.n_interior} collocation points resampled every {config.resample_every} iterations, Adam lr {config.lr:g} "
        f"decaying exponentially to {config.lr * config.final_lr_ratio:g}, then L-BFGS for the last {config.lbfgs_fraction:.0%} of the budget; "
        f"ours in {config.dtype} with forward-propagated derivatives and "
        f"{f'causal weighting ε = {config.causal:g}' if config.causal else 'no causal weighting'}. "
        "rel L2 over space-time (21 frames, 32²) against the cached py-pde reference:\n\n"
        + "\n".join(rows)
        + f"\n\nOurs / DeepXDE error ratio: {ours / theirs:.2f}.\n"
    )
    write_section("deepxde_check", text)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
