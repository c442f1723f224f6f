"""Killed inside the L-BFGS finish, resumed: how old the checkpoint was, and the result.

Three runs of ``phycrnet solve`` with a 120 s budget on one thread (default settings):
one uninterrupted; one killed with SIGKILL once its log shows 100 s of training (inside
the L-BFGS finish, which is the last 80 % of the budget); and that one resumed with
``--resume``. Reported: the phase and age of the checkpoint at the kill (wall-clock
seconds since it was written), and the resumed run's error against the uninterrupted
run's.

    python benchmarks/bench_resume.py [--case allen_cahn_periodic] [--budget 120] [--kill-at 100]

Writes RESULTS.md section ``resume``.
"""

from __future__ import annotations

import argparse
import csv
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import reference_for, stamp, write_section
from phycrnet.analysis.metrics import evaluate
from phycrnet.io.solution import read_solution
from phycrnet.spec import load_spec


def command(case: str, out: Path, budget: float, *extra: str) -> list[str]:
    return [sys.executable, "-m", "phycrnet", "solve", case, "--out", str(out), "--time-budget", str(budget), "--threads", "1", "--quiet", *extra]


def trained_seconds(log: Path) -> float:
    """The training seconds of the last row the run's log holds (flushed every 10 s)."""
    if not log.exists():
        return 0.0
    with open(log, newline="") as handle:
        rows = list(csv.DictReader(handle))
    return float(rows[-1]["seconds"]) if rows else 0.0


def kill_at(case: str, out: Path, budget: float, seconds: float) -> tuple[float, dict]:
    """Start a run, SIGKILL it once its log shows ``seconds`` of training; the checkpoint's
    age (wall seconds) and counters at that moment."""
    process = subprocess.Popen(command(case, out, budget))
    log, checkpoint = out.with_name(out.stem + ".log.csv"), out.with_name(out.stem + ".ckpt.pt")
    while process.poll() is None and trained_seconds(log) < seconds:
        time.sleep(0.5)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    age = time.time() - checkpoint.stat().st_mtime if checkpoint.exists() else float("inf")
    state = torch.load(checkpoint, weights_only=False) if checkpoint.exists() else {"counters": {}}
    return age, state["counters"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", default="allen_cahn_periodic")
    parser.add_argument("--budget", type=float, default=120.0)
    parser.add_argument("--kill-at", type=float, default=100.0)
    args = parser.parse_args()
    reference = reference_for(load_spec(args.case))
    with tempfile.TemporaryDirectory() as folder:
        whole, broken = Path(folder) / "whole.nc", Path(folder) / "broken.nc"
        subprocess.run(command(args.case, whole, args.budget), check=True)
        age, counters = kill_at(args.case, broken, args.budget, args.kill_at)
        subprocess.run(command(args.case, broken, args.budget, "--resume"), check=True)
        errors = [evaluate(read_solution(p), reference)["rel_l2_mean"] for p in (whole, broken)]
    lines = [
        f"## Killed inside the L-BFGS finish and resumed: {args.case}, {args.budget:g} s budget, one thread",
        "",
        stamp(f"python benchmarks/bench_resume.py --case {args.case} --budget {args.budget:g} --kill-at {args.kill_at:g}"),
        f"* killed with SIGKILL when the log showed {args.kill_at:g} s of training; the checkpoint then was {age:.1f} s old (wall clock), "
        f"written in the {counters.get('phase', '?')} phase at {counters.get('seconds', float('nan')):.1f} s of training, iteration {counters.get('iteration', '?')};",
        f"* rel L2 uninterrupted {errors[0]:.2e}, killed and resumed {errors[1]:.2e} (ratio {errors[1] / errors[0]:.2f}).",
    ]
    write_section("resume", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
