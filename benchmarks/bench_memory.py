"""Peak memory and seconds per iteration against the number of steps, on 128².

The full-size Burgers case (``burgers_phycrnet_full``, 128², dt 0.002) truncated to 100,
250, 500 and 1000 frames; each size trains two Adam iterations in a fresh process, with
every step's activations stored and with gradient checkpointing of the rollout and the
residual under a memory budget (``memory_budget_gb``). Reported: the process's peak resident memory and the seconds of
the second iteration. Runs that would not fit in ``--limit-gb`` without checkpointing
(estimated from the measured bytes per step) are skipped and marked.

    python benchmarks/bench_memory.py [--steps 100 250 500 1000] [--budget-gb 4]

Writes RESULTS.md section ``memory``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from common import stamp, write_section

CASE = "burgers_phycrnet_full"


def worker(frames: int, budget: float | None) -> dict:
    """One size in this process: bytes per step, seconds of an iteration, peak memory."""
    import torch

    from phycrnet.methods.solve import prepare
    from phycrnet.spec import load_spec
    from phycrnet.training.engine import Engine
    from phycrnet.training.memory import peak_memory_gb

    torch.set_num_threads(1)
    problem = load_spec(CASE)
    problem = problem.with_changes(time={"t_end": frames * problem.dt, "dt": problem.dt}, training={})
    run = prepare(problem, threads=1, iterations=10, memory_budget_gb=budget)
    engine = Engine(run.task, run.options.training)
    engine._adam_iteration()
    start = time.perf_counter()
    engine._adam_iteration()
    seconds = time.perf_counter() - start
    return {
        "frames": frames,
        "network_steps": run.task.n_network_steps,
        "segment": run.task.segment,
        "residual_chunk": run.task.residual_chunk,
        "step_mb": run.task.step_bytes() / 1e6,
        "residual_step_mb": run.task.residual_step_bytes() / 1e6,
        "seconds": seconds,
        "peak_gb": peak_memory_gb(torch.device("cpu")),
    }


def measure(frames: int, budget: float | None) -> dict:
    command = [sys.executable, __file__, "--worker", str(frames), "--worker-budget", str(budget or 0.0)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, nargs="*", default=[100, 250, 500, 1000])
    parser.add_argument("--budget-gb", type=float, default=4.0)
    parser.add_argument("--limit-gb", type=float, default=12.0, help="skip stored runs estimated above this")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--worker-budget", type=float, default=0.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.worker_budget or None)))
        return
    rows = []
    for frames in args.steps:
        checkpointed = measure(frames, args.budget_gb)
        estimate = (checkpointed["step_mb"] + checkpointed["residual_step_mb"]) * checkpointed["network_steps"] / 1e3
        stored = measure(frames, None) if estimate < 0.8 * args.limit_gb else None
        rows.append((frames, checkpointed, stored, estimate))
        print(frames, checkpointed, stored, flush=True)
    lines = [
        f"## Peak memory and seconds per iteration against steps, {CASE} (128², two fields), one thread",
        "",
        stamp("python benchmarks/bench_memory.py --steps " + " ".join(map(str, args.steps)) + f" --budget-gb {args.budget_gb:g}"),
        f"| frames | network steps | stored: peak GB | stored: s / iteration | memory_budget_gb {args.budget_gb:g}: steps per segment, rollout / residual | peak GB | s / iteration |",
        "|---|---|---|---|---|---|---|",
    ]
    for frames, c, s, estimate in rows:
        stored = f"{s['peak_gb']:.1f} | {s['seconds']:.1f}" if s else f"skipped (about {estimate:.0f} GB of activations) | –"
        segments = f"{c['segment'] or 'all'} / {c['residual_chunk'] or 'all'}"
        lines.append(f"| {frames} | {c['network_steps']} | {stored} | {segments} | {c['peak_gb']:.1f} | {c['seconds']:.1f} |")
    first = rows[0][1]
    lines += [
        "",
        f"Autograd stores {first['step_mb']:.1f} MB per network step for the rollout and {first['residual_step_mb']:.1f} MB for the loss (measured); "
        "'all': that part fits the budget whole and is not recomputed. Peak = the process's peak resident set size.",
    ]
    write_section("memory", "\n".join(lines))


if __name__ == "__main__":
    main()
