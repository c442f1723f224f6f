"""Parameter sweeps: one base spec, many members, one method (``phycrnet sweep``).

``run_sweep(sweep_file, out_dir)`` reads the sweep file (:mod:`phycrnet.studies.sweep_file`),
builds and compiles every member before anything runs
(:mod:`phycrnet.studies.sweep_members`), then solves the members one after the other, or
spread over the processes of ``torchrun`` (:mod:`phycrnet.studies.distributed`).

Outputs in ``out_dir``, per member ``NAME`` (``member_000``, ...):

* ``NAME.nc``: its solution, with the method's log ``NAME.log.csv`` and checkpoint
  ``NAME.ckpt.pt`` beside it (PhyCRNet and PINN);
* ``NAME.spec.yaml``: the spec it ran (the base with the sweep's options and its
  overrides; the first line names the member and its fingerprint);
* ``NAME.ref.nc``: its reference, with ``reference:`` set
  (:mod:`phycrnet.studies.sweep_references`);
* ``NAME.row.json``: its row, written as soon as it finishes
  (:mod:`phycrnet.studies.sweep_rows`);

and ``summary.csv`` and ``summary.json`` built from the rows.

Restarts: a rerun skips members whose row and solution exist (and whose spec and method
settings are unchanged: the row's fingerprint). A member killed mid-training resumes from
its checkpoint, unless its spec file says it ran another spec, or the checkpoint does not
fit (then it starts afresh, with a line saying so). A member that diverges is recorded
with status ``diverged``; one that fails otherwise (a :class:`PhycrnetError` while it runs)
with status ``failed``; the sweep goes on, and a rerun tries them again.

With ``batch: N > 1`` the work units are chunks of members trained together
(:mod:`phycrnet.studies.sweep_batch`); a chunk that the batched trainer refuses (an
option it does not batch) trains its members one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xarray as xr
import yaml

from phycrnet.errors import DataError, DivergenceError, OptionsError, PhycrnetError
from phycrnet.io.solution import read_solution
from phycrnet.methods.classical import classical
from phycrnet.methods.pinn import pinn_solve
from phycrnet.methods.run import run_paths
from phycrnet.methods.solve import solve
from phycrnet.studies import sweep_rows as rows
from phycrnet.studies.distributed import ProcessGroup, World, torch_threads
from phycrnet.studies.sweep_batch import batch_groups, chunk_checkpoints, solve_chunk
from phycrnet.studies.sweep_file import SweepFile, read_sweep
from phycrnet.studies.sweep_members import Member, build_members, route_options
from phycrnet.studies.sweep_references import prepare_references, score


@dataclass(frozen=True)
class Sweep:
    """A sweep file, read and checked, with its members built."""

    settings: SweepFile
    members: list[Member]
    threads: int | None = None
    device: str | None = None

    @property
    def reference(self) -> dict[str, Any] | None:
        return self.settings.reference_settings()

    def recipe(self) -> dict[str, Any]:
        """The method's settings a member's result depends on (besides its spec)."""
        s = self.settings
        return {"method": s.method, "preset": s.preset, "scheme": s.scheme, "substeps": s.substeps}

    def units(self) -> list[list[int]]:
        """The work units: chunks of members trained together, else one member each."""
        if self.settings.batch > 1:
            return batch_groups([m.spec for m in self.members], self.settings.batch)
        return [[m.index] for m in self.members]


@dataclass
class SweepResult:
    """What :func:`run_sweep` did: the summary (rank 0 only) and the members computed here."""

    out_dir: Path
    summary: Path | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    computed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Run:
    """What solving the members needs: the sweep and this process's share of the machine."""

    sweep: Sweep
    out_dir: Path
    world: World
    threads: int
    device: str | None
    progress: bool
    report: Callable[[str], None]


def load_sweep(source: str | Path | Mapping[str, Any], *, base_dir: Path | None = None, threads: int | None = None, device: str | None = None) -> Sweep:
    """Read ``source`` and build every member (nothing runs); ``threads`` and ``device``
    override the sweep's ``options``."""
    settings, folder, origin = read_sweep(source, base_dir)
    members = build_members(settings, folder, origin)
    _, process = route_options(settings.options, settings.method, origin)
    if threads is not None and threads < 1:
        raise OptionsError(f"--threads: {threads} must be at least 1")
    return Sweep(settings, members, threads or process.get("threads"), device or process.get("device"))


def run_sweep(
    source: str | Path | Mapping[str, Any],
    out_dir: str | Path,
    *,
    base_dir: Path | None = None,
    threads: int | None = None,
    device: str | None = None,
    progress: bool = False,
    report: Callable[[str], None] | None = None,
) -> SweepResult:
    """Solve every member of a sweep and write the summary.

    Args:
        source: sweep file (YAML) or the same as a mapping.
        out_dir: folder of the outputs (created).
        base_dir: what a relative ``base`` path refers to (default: the sweep file's
            folder, or the working directory for a mapping).
        threads, device: override the sweep's ``options`` (under torchrun, ``device``
            ``auto``/``cuda`` becomes ``cuda:LOCAL_RANK``).
        progress: show progress bars while training.
        report: called with one line per member (and per reference solved).
    """
    sweep = load_sweep(source, base_dir=base_dir, threads=threads, device=device)
    out = Path(out_dir)
    world = World.from_env()
    say = report or (lambda line: None)
    run = _Run(sweep, out, world, world.threads(sweep.threads), world.device(sweep.device), progress, lambda line: say(world.prefix + line))
    out.mkdir(parents=True, exist_ok=True)
    result = SweepResult(out)
    with ProcessGroup(world, run.device) as group, torch_threads(run.threads):
        if sweep.reference is not None:
            unscored = [m for m in sweep.members if (row := _finished(m, run)) is None or row.get("rel_l2") is None]
            prepare_references(unscored, out, world, sweep.reference, run.report)
            group.barrier()
        for index, unit in enumerate(sweep.units()):
            if world.owns(index):
                result.computed += _run_unit([sweep.members[i] for i in unit], run)
        group.barrier()
        if world.rank == 0:
            result.columns, result.rows = rows.summary_rows(sweep.members, out, sweep.reference is not None)
            result.summary = rows.write_summary(out, result.columns, result.rows)
    return result


def _finished(member: Member, run: _Run) -> dict[str, Any] | None:
    """The member's row if it finished with this spec and method and its solution exists."""
    row = rows.read_row(rows.row_path(run.out_dir, member.name))
    if row is None or row.get("status") != "done" or not (run.out_dir / f"{member.name}.nc").exists():
        return None
    stamp = row.get("fingerprint")
    return row if stamp in (None, rows.fingerprint(member, run.sweep.recipe())) else None


def _run_unit(members: list[Member], run: _Run) -> list[str]:
    """Solve a work unit unless all its members are done; the names it computed."""
    finished = [_finished(m, run) for m in members]
    if all(row is not None for row in finished):
        for member, row in zip(members, finished):
            assert row is not None
            if run.sweep.reference is not None and row.get("rel_l2") is None:
                row = _rescored(member, row, run)
            run.report(rows.describe_row(row, run.out_dir, skipped=True))
        return []
    fresh = _run_chunk(members, run) if len(members) > 1 else [_run_member(members[0], run)]
    for row in fresh:
        rows.write_row(rows.row_path(run.out_dir, row["member"]), row)
        run.report(rows.describe_row(row, run.out_dir))
    return [m.name for m in members]


def _run_member(member: Member, run: _Run) -> dict[str, Any]:
    """Solve one member (resuming from its checkpoint where it can) and return its row."""
    out = run.out_dir / f"{member.name}.nc"
    checkpoint = run_paths(out)[1]
    resume = run.sweep.settings.method != "classical" and checkpoint is not None and _resumable([member], [checkpoint], run)
    _write_spec(member, run)
    try:
        dataset = _with_resume(lambda again: _solve(member, out, again, run), resume, member.name, run)
    except DivergenceError as exc:
        return _failed(member, "diverged", exc, run)
    except PhycrnetError as exc:
        return _failed(member, "failed", exc, run)
    return _done(member, dataset, run)


def _solve(member: Member, out: Path, resume: bool, run: _Run) -> xr.Dataset:
    """One member by the sweep's method."""
    s = run.sweep.settings
    common: dict[str, Any] = {"out": out, "resume": resume, "progress": run.progress, "threads": run.threads, "device": run.device}
    if s.method == "solve":
        return solve(member.problem, preset=s.preset, **common)
    if s.method == "pinn":
        return pinn_solve(member.problem, **common)
    return classical(member.problem, scheme=s.scheme or "implicit", out=out, preset=s.preset, substeps=s.substeps)


def _run_chunk(members: list[Member], run: _Run) -> list[dict[str, Any]]:
    """Train a chunk of members as one batch and return their rows."""
    outs = [run.out_dir / f"{m.name}.nc" for m in members]
    resume = _resumable(members, chunk_checkpoints(outs), run)
    for member in members:
        _write_spec(member, run)
    options = {"threads": run.threads, **({"device": run.device} if run.device else {})}
    problems = [m.problem for m in members]

    def train(again: bool) -> list[xr.Dataset | None]:
        return solve_chunk(problems, outs, preset=run.sweep.settings.preset, resume=again, progress=run.progress, options=options)

    try:
        datasets = _with_resume(train, resume, ", ".join(m.name for m in members), run)
    except DivergenceError as exc:
        return [_failed(m, "diverged", exc, run) for m in members]
    except OptionsError as exc:
        run.report(f"{', '.join(m.name for m in members)}: not trained together ({exc}); training them one at a time")
        return [_run_member(m, run) for m in members]
    except PhycrnetError as exc:
        return [_failed(m, "failed", exc, run) for m in members]
    return [_done(m, d, run) if d is not None else _failed(m, "diverged", "diverged in its batch", run) for m, d in zip(members, datasets)]


def _with_resume(attempt: Callable[[bool], Any], resume: bool, names: str, run: _Run) -> Any:
    """``attempt(resume)``; a checkpoint that cannot be resumed means starting afresh."""
    try:
        return attempt(resume)
    except DataError as exc:
        if not resume:
            raise
        run.report(f"{names}: cannot resume ({exc}); starting afresh")
        return attempt(False)


def _resumable(members: list[Member], checkpoints: list[Path], run: _Run) -> bool:
    """Whether a checkpoint is there and the members' spec files (if any) say it ran the
    same specs and method settings (the fingerprint in their first line)."""
    if not any(path.exists() for path in checkpoints):
        return False
    for member in members:
        path = _spec_path(member, run)
        if path.exists() and path.read_text().partition("\n")[0] != _spec_text(member, run).partition("\n")[0]:
            run.report(f"{member.name}: its spec changed since its checkpoint; starting afresh")
            return False
    return True


def _spec_path(member: Member, run: _Run) -> Path:
    return run.out_dir / f"{member.name}.spec.yaml"


def _spec_text(member: Member, run: _Run) -> str:
    header = f"# {member.name} ({member.label}); fingerprint {rows.fingerprint(member, run.sweep.recipe())}\n"
    return header + yaml.safe_dump(member.spec, sort_keys=False)


def _write_spec(member: Member, run: _Run) -> None:
    rows.atomic_write(_spec_path(member, run), _spec_text(member, run))


def _done(member: Member, dataset: xr.Dataset, run: _Run) -> dict[str, Any]:
    rel_l2 = score(dataset, run.out_dir, member.name) if run.sweep.reference is not None else None
    trained = run.sweep.settings.method != "classical"
    stamp = rows.fingerprint(member, run.sweep.recipe())
    return rows.result_row(member, dataset, stamp=stamp, file=f"{member.name}.nc", trained=trained, rel_l2=rel_l2)


def _failed(member: Member, status: str, error: Exception | str, run: _Run) -> dict[str, Any]:
    return rows.failed_row(member, stamp=rows.fingerprint(member, run.sweep.recipe()), status=status, error=str(error))


def _rescored(member: Member, row: dict[str, Any], run: _Run) -> dict[str, Any]:
    """A finished member's row with its score against a reference added after the fact."""
    row = {**row, "rel_l2": score(read_solution(run.out_dir / row["file"]), run.out_dir, member.name)}
    rows.write_row(rows.row_path(run.out_dir, member.name), row)
    return row
