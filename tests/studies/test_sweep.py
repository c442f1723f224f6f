"""``phycrnet sweep``: members and their specs, one-line errors, the outputs, restarts,
batches, the command line, and two processes under torchrun (gloo on the CPU).

Every run is tiny: periodic heat on 16 x 16 nodes, 4 steps, a tiny network, 3 iterations.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import phycrnet
from phycrnet.errors import DivergenceError, OptionsError, SpecError
from phycrnet.io.solution import read_solution, solution_dataset
from phycrnet.studies import sweep as sweep_module
from phycrnet.studies import sweep_batch, sweep_references
from phycrnet.studies.distributed import World
from phycrnet.studies.sweep import load_sweep, run_sweep
from phycrnet.studies.sweep_batch import batch_groups, batch_key
from phycrnet.studies.sweep_members import expand, member_names, set_dotted

#: The directory holding the phycrnet package these tests import (for the subprocesses).
SRC = Path(phycrnet.__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _single_process(monkeypatch):
    """In-process sweeps run as one process, whatever the environment says."""
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def sweep_of(periodic_heat_spec, tiny_model):
    """``sweep_of(**keys)``: a sweep of tiny PhyCRNet runs on the periodic heat spec."""

    def make(**keys):
        return {"base": periodic_heat_spec, "options": {"iterations": 3, "threads": 1}, "model": tiny_model, **keys}

    return make


def exact(problem):
    """The exact solution of a periodic heat member as a solution dataset."""
    k = problem.parameters["k"].value
    x, y, t = problem.grid.x.points, problem.grid.y.points, problem.times
    u = np.exp(-8 * np.pi**2 * k * t)[:, None, None] * np.sin(2 * np.pi * x)[None, None, :] * np.sin(2 * np.pi * y)[None, :, None]
    return solution_dataset({"u": u}, t, x, y, solver="exact", spec_yaml=problem.to_yaml(), periodic=problem.periodic, wall_seconds=0.0)


def read_summary(folder: Path) -> list[dict]:
    with open(folder / "summary.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def script_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SRC), env.get("PYTHONPATH")]))
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(name, None)
    return env


# --------------------------------------------------------------------------- members


def test_members_are_the_list_then_the_product_last_key_fastest():
    members = [{"parameters.eps": 0.001}, {}]
    product = {"parameters.eps": [0.001, 0.002], "training.seed": [0, 1]}
    assert expand(members, product) == [
        {"parameters.eps": 0.001},
        {},
        {"parameters.eps": 0.001, "training.seed": 0},
        {"parameters.eps": 0.001, "training.seed": 1},
        {"parameters.eps": 0.002, "training.seed": 0},
        {"parameters.eps": 0.002, "training.seed": 1},
    ]
    assert expand([], {}) == [{}]
    assert member_names(3) == ["member_000", "member_001", "member_002"] and member_names(1001)[-1] == "member_1000"


def test_dotted_overrides_reach_spec_keys_and_options_the_base_does_not_write(mixed_bc_spec):
    sweep = load_sweep(
        {
            "base": mixed_bc_spec,
            "options": {"iterations": 7, "lr": 1e-3},
            "members": [
                {"parameters.k": 0.1, "initial.u": "x**2", "boundary.u.right.value": 3, "grid.nx": 20},
                {"training.seed": 4, "model.lstm_channels": 32, "physics.boundary": "soft", "training.lr": 2e-3, "domain.x.1": 2.0},
            ],
        }
    )
    first, second = sweep.members
    assert first.problem.parameters["k"].value == 0.1 and first.spec["initial"]["u"] == "x**2"
    assert first.spec["boundary"]["u"]["right"]["value"] == 3 and first.problem.grid.x.n == 20
    assert first.spec["training"] == {"iterations": 7, "lr": 1e-3} and first.label.startswith("parameters.k=0.1, ")
    # option keys the base does not write; a member's own value beats the sweep's options
    assert second.spec["training"] == {"iterations": 7, "lr": 2e-3, "seed": 4}
    assert second.spec["model"] == {"lstm_channels": 32} and second.spec["physics"] == {"boundary": "soft"}
    assert second.problem.grid.x.end == 2.0 and second.problem.parameters["k"].value == 0.05


def test_a_parameter_written_with_settings_keeps_them():
    data = {"parameters": {"eps": {"init": 0.1, "learn": True}}}
    set_dotted(data, "parameters.eps", 0.2)
    assert data == {"parameters": {"eps": {"init": 0.2, "learn": True}}}
    with pytest.raises(SpecError, match=r"^parameters\.epz: no such key in the base spec$"):
        set_dotted(data, "parameters.epz", 0.2)


@pytest.mark.parametrize(
    ("keys", "error", "message"),
    [
        ({"members": [{}, {}, {}, {"parameters.epz": 0.1}]}, SpecError, r"^member 3 \(parameters\.epz=0\.1\): parameters\.epz: no such key in the base spec$"),
        ({"product": {"parameters.k": [0.1, "hot"]}}, SpecError, r"^member 1 \(parameters\.k=hot\): parameters\.k: Input should be a valid number"),
        ({"members": [{"training.lr": -1}]}, SpecError, r"^member 0 \(training\.lr=-1\): training\.lr: Input should be greater than 0"),
        ({"members": [{"training.lrr": 1}]}, SpecError, r"^member 0 \(training\.lrr=1\): training\.lrr: no such key"),
        ({"method": "magic"}, SpecError, r"^sweep: method: Input should be 'solve', 'pinn' or 'classical', got 'magic'$"),
        ({"batch": 0}, SpecError, r"^sweep: batch: Input should be greater than or equal to 1, got 0$"),
        ({"bogus": 1}, SpecError, r"^sweep: bogus: unknown key \(keys: base, method"),
        ({"product": {"training.seed": 3}}, SpecError, r"^sweep: product\.training\.seed: Input should be a valid list"),
        ({"options": {"lrr": 1}}, OptionsError, r"^sweep: options\.lrr: not an option of method solve"),
        ({"method": "pinn", "batch": 2, "model": None}, OptionsError, r"^sweep: batch: 2 \(members trained together\) needs method solve"),
        ({"method": "classical", "model": None, "options": {"iterations": 3}}, OptionsError, r"^sweep: options\.iterations: not an option of method classical"),
        ({"base": "no_such_case"}, SpecError, r"^sweep: base: 'no_such_case' is neither a spec file nor a catalog case"),
    ],
)
def test_bad_sweeps_end_in_one_line_before_anything_runs(tmp_path, sweep_of, keys, error, message):
    with pytest.raises(error, match=message) as caught:
        run_sweep(sweep_of(**keys), tmp_path / "out")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_the_command_line_turns_a_bad_member_into_one_line_and_exit_code_2(tmp_path, sweep_of, capsys):
    from phycrnet.cli import main

    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep_of(members=[{"parameters.epz": 0.1}])))
    assert main(["sweep", str(path), "--out-dir", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == "error: member 0 (parameters.epz=0.1): parameters.epz: no such key in the base spec\n"


# --------------------------------------------------------------------------- batches


def test_members_share_a_batch_only_if_they_differ_in_values_and_seeds(periodic_heat_spec):
    base = load_sweep({"base": periodic_heat_spec}).members[0].spec
    variants = [
        {},
        {"parameters": {"k": 0.2}},
        {"initial": {"u": "cos(2*pi*x)"}, "training": {"seed": 3}},
        {"grid": {"nx": 20, "ny": 16}},
        {"parameters": {"k": 0.3}, "training": {"seed": 1}},
        {"training": {"lr": 1e-3}},
        {"parameters": {"k": 0.4}},
    ]
    specs = [{**base, **v} for v in variants]
    assert batch_key(specs[0]) == batch_key(specs[2]) != batch_key(specs[3])
    assert batch_groups(specs, 3) == [[0, 1, 2], [4, 6], [3], [5]]
    assert batch_groups(specs, 1) == [[0], [1], [2], [4], [6], [3], [5]]


def test_batched_chunks_go_to_the_batched_trainer(tmp_path, sweep_of, monkeypatch):
    calls = []

    def solve_batch(problems, outs, *, preset=None, model=None, resume=False, progress=False, **options):
        calls.append((len(problems), resume, options["threads"]))
        results = [exact(p).assign_attrs(iterations=3, loss_terms=json.dumps({"pde_u": 1e-3})) for p in problems]
        return [None if p.parameters["k"].value == 0.3 else r for p, r in zip(problems, results)]

    monkeypatch.setattr(sweep_batch, "solve_batch", solve_batch)
    product = {"parameters.k": [0.1, 0.2, 0.3], "training.seed": [0, 1]}
    result = run_sweep(sweep_of(product=product, batch=4, members=[{"grid.nx": 20}]), tmp_path)
    # member 0 differs in its grid: alone; the other six in chunks of 4 and 2
    assert calls == [(4, False, 1), (2, False, 1)]
    statuses = [row["status"] for row in result.rows]
    assert statuses == ["done", "done", "done", "done", "done", "diverged", "diverged"]
    assert all((tmp_path / f"member_00{i}.nc").exists() for i in range(5)) and not (tmp_path / "member_005.nc").exists()
    calls.clear()
    run_sweep(sweep_of(product=product, batch=4, members=[{"grid.nx": 20}]), tmp_path)
    assert calls == [(2, False, 1)]  # only the chunk with the diverged members runs again


# --------------------------------------------------------------------------- sequential sweeps


def test_a_classical_sweep_writes_solutions_references_and_the_summary(tmp_path, periodic_heat_spec, monkeypatch):
    references = []

    def fake_reference(problem, **settings):
        references.append((problem.parameters["k"].value, settings["time_limit"]))
        return exact(problem)

    monkeypatch.setattr(sweep_references, "solve_reference", fake_reference)
    spec_path = tmp_path / "heat.yaml"
    spec_path.write_text(yaml.safe_dump(periodic_heat_spec))
    sweep_path = tmp_path / "sweep.yaml"
    product = {"parameters.k": [0.05, 0.1], "physics.derivatives": ["spectral", "fd4"]}
    sweep = {"base": "heat.yaml", "method": "classical", "scheme": "implicit", "options": {"threads": 1}, "members": [{}], "product": product}
    sweep_path.write_text(yaml.safe_dump({**sweep, "reference": {"time_limit": 5}}))
    lines = []
    result = run_sweep(sweep_path, tmp_path / "out", report=lines.append)
    out = tmp_path / "out"
    assert sorted(references) == [(0.05, 5), (0.1, 5)]  # one reference per distinct problem
    assert all((out / f"member_00{i}.nc").exists() and (out / f"member_00{i}.ref.nc").exists() for i in range(5))
    rows = read_summary(out)
    assert list(rows[0]) == ["member", "parameters.k", "physics.derivatives", "wall_seconds", "iterations", "final_loss", "rel_l2", "status", "file"]
    assert [r["member"] for r in rows] == [f"member_00{i}" for i in range(5)] and rows[1]["parameters.k"] == "0.05"
    assert rows[0]["parameters.k"] == "" and all(r["status"] == "done" and r["final_loss"] == "" for r in rows)
    assert all(0 < float(r["rel_l2"]) < 2e-2 for r in rows) and rows[3]["file"] == "member_003.nc"
    assert json.loads((out / "summary.json").read_text()) == result.rows
    assert len([line for line in lines if line.startswith("member_")]) == 5 and result.summary == out / "summary.csv"


def test_a_sweep_of_trained_members_and_a_rerun_that_skips_them(tmp_path, sweep_of, monkeypatch):
    calls = []
    original = sweep_module.solve
    monkeypatch.setattr(sweep_module, "solve", lambda problem, **kw: calls.append(kw["resume"]) or original(problem, **kw))
    sweep = sweep_of(product={"training.seed": [0, 1]})
    result = run_sweep(sweep, tmp_path)
    assert calls == [False, False] and result.computed == ["member_000", "member_001"]
    rows = read_summary(tmp_path)
    assert list(rows[0]) == ["member", "training.seed", "wall_seconds", "iterations", "final_loss", "status", "file"]
    assert [r["iterations"] for r in rows] == ["3", "3"] and all(float(r["final_loss"]) > 0 for r in rows)
    for name in ("member_001.nc", "member_001.log.csv", "member_001.ckpt.pt", "member_001.row.json", "member_001.spec.yaml"):
        assert (tmp_path / name).exists()
    assert read_solution(tmp_path / "member_001.nc").attrs["iterations"] == 3
    again = run_sweep(sweep, tmp_path)
    assert calls == [False, False] and again.computed == [] and len(again.rows) == 2


def test_a_killed_member_resumes_from_its_checkpoint(tmp_path, sweep_of, monkeypatch):
    sweep = sweep_of(product={"parameters.k": [0.05, 0.1]})
    run_sweep(sweep, tmp_path)
    (tmp_path / "member_001.nc").unlink()  # killed after a checkpoint, before its result
    (tmp_path / "member_001.row.json").unlink()
    calls = []
    original = sweep_module.solve
    monkeypatch.setattr(sweep_module, "solve", lambda problem, **kw: calls.append(kw["resume"]) or original(problem, **kw))
    result = run_sweep(sweep, tmp_path)
    assert calls == [True] and result.computed == ["member_001"] and (tmp_path / "member_001.nc").exists()
    assert [row["status"] for row in result.rows] == ["done", "done"]
    # another spec (more iterations): every member runs again, afresh
    lines = []
    result = run_sweep({**sweep, "options": {"iterations": 4, "threads": 1}}, tmp_path, report=lines.append)
    assert calls == [True, False, False] and result.computed == ["member_000", "member_001"]
    assert "member_000: its spec changed since its checkpoint; starting afresh" in lines
    assert read_solution(tmp_path / "member_000.nc").attrs["iterations"] == 4


def test_a_diverging_member_is_recorded_and_the_sweep_goes_on(tmp_path, sweep_of, monkeypatch):
    original = sweep_module.solve

    def diverging(problem, **kw):
        if problem.parameters["k"].value > 0.1:
            raise DivergenceError("training diverged at iteration 2")
        return original(problem, **kw)

    monkeypatch.setattr(sweep_module, "solve", diverging)
    lines = []
    result = run_sweep(sweep_of(product={"parameters.k": [0.05, 0.2]}), tmp_path, report=lines.append)
    assert [row["status"] for row in result.rows] == ["done", "diverged"] and result.rows[1]["file"] is None
    assert not (tmp_path / "member_001.nc").exists() and (tmp_path / "member_001.row.json").exists()
    assert "member_001 (parameters.k=0.2): diverged (training diverged at iteration 2)" in lines


def test_world_from_torchrun_environment():
    assert World.from_env({}) == World() and not World().distributed
    world = World.from_env({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"})
    assert world.distributed and [world.owns(i) for i in range(6)] == [False, False, True, False, False, False]
    assert world.threads(3) == 3 and world.threads(None) == max(1, (os.cpu_count() or 1) // 4)
    assert world.prefix == "[rank 2] "
    with pytest.raises(OptionsError, match="WORLD_SIZE is set but RANK is not"):
        World.from_env({"WORLD_SIZE": "2"})


# --------------------------------------------------------------------------- processes


def test_python_m_phycrnet_sweep(tmp_path, periodic_heat_spec):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"base": periodic_heat_spec, "method": "classical", "product": {"parameters.k": [0.05, 0.1]}}))
    done = subprocess.run(
        [sys.executable, "-m", "phycrnet", "sweep", str(path), "--out-dir", str(tmp_path / "out"), "--threads", "1"],
        capture_output=True,
        text=True,
        env=script_env(),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("member_000 (parameters.k=0.05): done") and lines[1].startswith("member_001 (parameters.k=0.1): done")
    assert lines[-1] == f"wrote {tmp_path / 'out' / 'summary.csv'}: 2 members (2 done)"


def test_two_processes_under_torchrun_share_four_members(tmp_path, sweep_of):
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(sweep_of(product={"parameters.k": [0.05, 0.1], "training.seed": [0, 1]})))
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "phycrnet",
        "sweep",
        str(path),
        "--out-dir",
        str(tmp_path / "out"),
        "--quiet",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=script_env(), timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "out"
    assert all((out / f"member_00{i}.nc").exists() for i in range(4))
    rows = read_summary(out)
    assert [r["member"] for r in rows] == [f"member_00{i}" for i in range(4)] and all(r["status"] == "done" for r in rows)
    assert [r["parameters.k"] for r in rows] == ["0.05", "0.05", "0.1", "0.1"] and [r["training.seed"] for r in rows] == ["0", "1", "0", "1"]
    # round robin: rank 0 computes members 0 and 2, rank 1 members 1 and 3; rank 0 writes the summary
    assert "[rank 0] member_002" in done.stdout and "[rank 1] member_003" in done.stdout
    assert done.stdout.count("wrote ") == 1
