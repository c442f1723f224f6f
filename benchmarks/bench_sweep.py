"""One sweep run by one process, then by two under torchrun: wall times and their ratio.

The sweep: ``allen_cahn_periodic`` (32², 20 frames), PhyCRNet with its default preset,
``--members`` members that differ in ``training.seed`` only, ``--iterations`` each (the
default is meant to give one member 20-30 s on a two-core machine). Both runs go through
the command line in a subprocess, from empty folders, so the times include start-up
(imports, and the process group under torchrun). Each process takes the sweep's default
threads: every core for one process, half of them each for two. Target: two processes
take at most 0.75x the wall time of one.

    python benchmarks/bench_sweep.py [--iterations 200] [--members 4] [--threads N] [--work-dir DIR]
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from common import stamp, write_section

CASE = "allen_cahn_periodic"
#: The wall-time ratio of two processes to one the sweep should reach.
TARGET = 0.75


def write_sweep(folder: Path, iterations: int, members: int, threads: int | None) -> Path:
    """The sweep file of the benchmark in ``folder``."""
    options: dict = {"iterations": iterations}
    if threads is not None:
        options["threads"] = threads
    sweep = {"base": CASE, "method": "solve", "options": options, "product": {"training.seed": list(range(members))}}
    path = folder / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


def timed(command: list[str]) -> float:
    """Wall seconds of ``command``; its output is shown; a failure ends the benchmark."""
    print("$", " ".join(command), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - start


def member_seconds(out_dir: Path) -> list[float]:
    """The training seconds of each member, from the sweep's summary."""
    with open(out_dir / "summary.csv", newline="") as handle:
        return [float(row["wall_seconds"]) for row in csv.DictReader(handle) if row["status"] == "done"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None, help="Torch threads per process (default: the sweep's share of the cores).")
    parser.add_argument("--work-dir", type=Path, default=None, help="Keep the sweeps' outputs here (default: a temporary folder).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = args.work_dir or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        sweep = write_sweep(work, args.iterations, args.members, args.threads)
        single = timed([sys.executable, "-m", "phycrnet", "sweep", str(sweep), "--out-dir", str(work / "one"), "--quiet"])
        torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
        double = timed([*torchrun, "-m", "phycrnet", "sweep", str(sweep), "--out-dir", str(work / "two"), "--quiet"])
        per_member = (member_seconds(work / "one"), member_seconds(work / "two"))
    ratio = double / single
    print(f"1 process: {single:.1f} s, 2 processes: {double:.1f} s, ratio {ratio:.2f} (target <= {TARGET})", flush=True)
    command = "python benchmarks/bench_sweep.py " + " ".join(sys.argv[1:])
    mean = [sum(s) / len(s) if s else float("nan") for s in per_member]
    text = (
        "## Sweeps under torchrun (phycrnet sweep)\n\n"
        + stamp(command.strip())
        + f"\n`{CASE}`, {args.members} members (training.seed 0..{args.members - 1}), {args.iterations} iterations each, "
        "through `python -m phycrnet sweep` (one process) and `python -m torch.distributed.run --standalone --nproc_per_node=2 "
        "-m phycrnet sweep` (two processes, gloo); wall time of the whole command, start-up included.\n\n"
        "| processes | wall s | mean training s per member |\n|---|---|---|\n"
        f"| 1 | {single:.1f} | {mean[0]:.1f} |\n| 2 | {double:.1f} | {mean[1]:.1f} |\n\n"
        f"Ratio 2 / 1 processes: **{ratio:.2f}** (target <= {TARGET}: {'met' if ratio <= TARGET else 'not met'}).\n"
    )
    write_section("sweep_torchrun", text)


if __name__ == "__main__":
    main()
