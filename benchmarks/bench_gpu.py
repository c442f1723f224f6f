"""GPU throughput, in one short run (at most about five minutes on one GPU).

Measures, on the first CUDA device (or on the CPU with ``--cpu``, to check the script):

* iterations per second of the default (hybrid) PhyCRNet at 32² (``allen_cahn_periodic``)
  and 128² (``burgers_phycrnet_full`` cut to 20 frames);
* member-iterations per second of independent members trained as one batch
  (:mod:`phycrnet.methods.batch`) at 32², for 1, 8, 32 and 128 members;
* the effect of ``torch.compile`` on the network step (``mode="reduce-overhead"`` uses
  CUDA graphs, which remove most launch overhead) at 32².

    python benchmarks/bench_gpu.py [--seconds 20] [--cpu]

Writes RESULTS.md section ``gpu`` (or ``gpu_check_on_cpu`` with ``--cpu``).
"""

from __future__ import annotations

import argparse
import time

import torch

from common import stamp, write_section
from phycrnet.methods.batch import BatchTask
from phycrnet.methods.solve import prepare
from phycrnet.spec import load_spec
from phycrnet.training.engine import Engine


def rate(engine: Engine, seconds: float, members: int = 1) -> float:
    """(member-)iterations per second of Adam, after two warm-up iterations."""
    for _ in range(2):
        engine._adam_iteration()
    _sync()
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        engine._adam_iteration()
        done += 1
    _sync()
    return members * done / (time.perf_counter() - start)


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def single(problem, device: str, seconds: float, compiled: bool = False) -> float:
    run = prepare(problem, device=device, iterations=10**6)
    if compiled:
        run.task.model.step = torch.compile(run.task.model.step, mode="reduce-overhead" if device != "cpu" else "default")
    return rate(Engine(run.task, run.options.training), seconds)


def batched(problem, device: str, seconds: float, members: int) -> float:
    runs = [prepare(problem.with_changes(training={"seed": m}), device=device, iterations=10**6) for m in range(members)]
    return rate(Engine(BatchTask(runs), runs[0].options.training), seconds, members)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measuring time per row")
    parser.add_argument("--cpu", action="store_true", help="run on the CPU (to check the script)")
    parser.add_argument("--members", type=int, nargs="*", default=[1, 8, 32, 128])
    args = parser.parse_args()
    device = "cpu" if args.cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no GPU: run on a machine with CUDA, or with --cpu to check the script")
    small = load_spec("allen_cahn_periodic")
    full = load_spec("burgers_phycrnet_full")
    large = full.with_changes(time={"t_end": 20 * full.dt, "dt": full.dt}, training={})
    rows = [
        ("32², one member", single(small, device, args.seconds)),
        ("128² (20 frames), one member", single(large, device, args.seconds)),
        ("32², one member, torch.compile'd network step", single(small, device, args.seconds, compiled=True)),
    ]
    rows += [(f"32², {m} members as one batch (member-iterations)", batched(small, device, args.seconds, m)) for m in args.members]
    for label, value in rows:
        print(f"{label}: {value:.2f}/s", flush=True)
    lines = [
        f"## GPU throughput ({torch.cuda.get_device_name(0) if device == 'cuda' else 'CPU check'})",
        "",
        stamp("python benchmarks/bench_gpu.py" + (" --cpu" if args.cpu else "") + f" --seconds {args.seconds:g}"),
        "| run | iterations per second |",
        "|---|---|",
        *(f"| {label} | {value:.2f} |" for label, value in rows),
    ]
    write_section("gpu" if device == "cuda" else "gpu_check_on_cpu", "\n".join(lines))


if __name__ == "__main__":
    main()
