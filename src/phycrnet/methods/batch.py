"""Independent PhyCRNet members trained as one batched computation (a sweep's ``batch: N``).

Members that share grid, frames and equations and differ in coefficients, initial values
or seed are separate networks (each built from its own seed, with its own classical
start), trained at once: their weights are stacked along a leading member dimension
(``torch.func.stack_module_state``) and one member's loss, a pure function of its
weights and data (:meth:`~phycrnet.methods.crn.CrnTask.member_losses`), is mapped over
the members with ``torch.func.vmap``. Adam's update is elementwise, so each member follows
exactly the steps it would take alone; the engine keeps a best state, a divergence count
and a result per member (:mod:`phycrnet.training`). On small grids a step is bound by the
overhead of launching many small operations, which the batch shares.

Members of a batch share the most demanding member's sub-steps and predictor steps (a
member that would take fewer takes the same, shorter steps); where they resolve to other
different choices (physics input, implicit diffusion, ...) they train in separate groups,
one after the other. Not batched: learned coefficients,
observations, gradient checkpointing, weighting schemes that keep a state of their own
(``lr_annealing``, ``relobralo``, ``softadapt``, ``uncertainty``); such members train with
``batch: 1``. The L-BFGS finish sees the members' summed (each rescaled) losses, so its
line search is shared; weights of an adaptive scheme enter it as the member mean.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import torch
import xarray as xr
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from phycrnet.errors import OptionsError
from phycrnet.io.solution import write_solution
from phycrnet.methods.crn import CrnTask
from phycrnet.methods.run import start_engine
from phycrnet.methods.solve import CrnRun, prepare, solution
from phycrnet.spec.problem import Problem
from phycrnet.training.engine import Engine
from phycrnet.training.task import TrainingResult

#: Weighting schemes whose weights are a function of the current losses alone.
BATCHED_WEIGHTINGS = ("fixed", "adaptive", "adaptive_detached")


class StackedNetworks(nn.Module):
    """The members' networks as one module: every parameter and buffer stacked along a
    leading member dimension (names with ``.`` written ``__``)."""

    def __init__(self, networks: Sequence[nn.Module]) -> None:
        super().__init__()
        parameters, buffers = stack_module_state(list(networks))
        self.names = list(parameters)
        self.stacked = nn.ParameterDict({_key(n): nn.Parameter(v.detach().clone()) for n, v in parameters.items()})
        for name, value in buffers.items():
            self.register_buffer(_key(name), value.clone())
        self.buffer_names = list(buffers)

    def parameters_of(self) -> dict[str, torch.Tensor]:
        return {n: self.stacked[_key(n)] for n in self.names}

    def buffers_of(self) -> dict[str, torch.Tensor]:
        return {n: getattr(self, _key(n)) for n in self.buffer_names}

    def write_back(self, networks: Sequence[nn.Module]) -> None:
        """Copy each member's weights into its own network."""
        stacked = {**self.parameters_of(), **self.buffers_of()}
        with torch.no_grad():
            for m, network in enumerate(networks):
                network.load_state_dict({n: v[m] for n, v in stacked.items()}, strict=False)


def _key(name: str) -> str:
    return name.replace(".", "__")


class BatchTask:
    """The members of one batch as one training task (see the module docstring)."""

    def __init__(self, runs: Sequence[CrnRun]) -> None:
        self.runs = list(runs)
        self.template: CrnTask = runs[0].task
        self.members = len(runs)
        self.device = self.template.device
        self.key = "batch\n" + "\n".join(run.task.key for run in runs)
        self.networks = StackedNetworks([run.task.model for run in runs]).to(self.device)
        self.base = copy.deepcopy(self.template.model).to("meta")
        self.data = _member_data(runs)
        self._losses = vmap(self._member_losses, in_dims=(0, 0, 0, None))

    def _member_losses(self, parameters: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], member: dict[str, Any], n_steps: int) -> dict[str, torch.Tensor]:
        def network(*args: Any, **kwargs: Any) -> Any:
            return functional_call(self.base, (parameters, buffers), args, kwargs)

        return self.template.member_losses(network, member, n_steps)

    # -- the task interface ---------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"networks": self.networks}

    def parameter_groups(self) -> list[dict[str, Any]]:
        return [{"params": list(self.networks.parameters()), "factor": 1.0}]

    def trainable(self, *, coefficients: bool = True) -> list[nn.Parameter]:
        return list(self.networks.parameters())

    def network_parameters(self) -> list[nn.Parameter]:
        return list(self.networks.parameters())

    def windows(self, curriculum: tuple[int, ...] | None) -> list[int | None]:
        return self.template.windows(curriculum)

    def prepare(self, phase: str, iteration: int) -> None:
        """Nothing to prepare."""

    def losses(self, window: int | None, phase: str) -> dict[str, torch.Tensor]:
        n_steps = self.template.n_network_steps if window is None else window
        return self._losses(self.networks.parameters_of(), self.networks.buffers_of(), self.data, n_steps)

    def standstill_loss(self) -> torch.Tensor:
        return torch.cat([run.task.standstill_loss() for run in self.runs])

    def learned_parameters(self) -> dict[str, float]:
        return {}

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """No state outside the modules."""


def _member_data(runs: Sequence[CrnRun]) -> dict[str, Any]:
    """What differs between the members, stacked along the member dimension."""
    template = runs[0].task
    dtype, device = template.dtype, template.device
    names = list(runs[0].problem.parameters)
    data: dict[str, Any] = {
        "u0": torch.stack([run.task.u0 for run in runs]),
        "parameters": {n: torch.tensor([run.resolved.problem.parameters[n].value for run in runs], dtype=dtype, device=device) for n in names},
        "gain": torch.tensor([run.resolved.input_gain for run in runs], dtype=dtype, device=device),
    }
    weights = [run.task.step_weights for run in runs]
    if all(w is not None for w in weights):
        data["step_weights"] = torch.stack(cast(list[torch.Tensor], weights))
    return data


def structure_key(run: CrnRun) -> str:
    """What members must share to train as one batch: the problem but for its parameter
    values and initial values, the options but for the seed, and the resolved choices."""
    spec = run.problem.model.dump()
    for key in ("name", "description", "initial"):
        spec.pop(key, None)
    spec.get("training", {}).pop("seed", None)
    spec["parameters"] = sorted(spec.get("parameters", {}))
    options = run.options.to_json()
    options["training"].pop("seed", None)
    resolved = dataclasses.asdict(dataclasses.replace(run.resolved, input_gain=0.0, stiffness=0.0, peclet=None, substeps=0, predictor_steps=0))
    resolved.pop("problem", None)
    if run.resolved.implicit_diffusion:  # the filter depends on the diffusivities
        resolved["parameters"] = run.problem.parameter_values()
    return json.dumps([spec, options, resolved], sort_keys=True, default=str)


def _check_batchable(run: CrnRun) -> None:
    training = run.options.training
    if any(p.learn for p in run.problem.parameters.values()):
        raise OptionsError("batch: learned coefficients train one member at a time (batch: 1)")
    if training.weighting not in BATCHED_WEIGHTINGS:
        raise OptionsError(f"batch: the {training.weighting} weighting keeps a state per run; use {', '.join(BATCHED_WEIGHTINGS)} or batch: 1")
    if training.memory_budget_gb is not None:
        raise OptionsError("batch: memory_budget_gb (gradient checkpointing) trains one member at a time (batch: 1)")


def solve_batch(
    problems: Sequence[Problem],
    outs: Sequence[Path | None],
    *,
    preset: str | None = None,
    model: dict[str, Any] | None = None,
    resume: bool = False,
    progress: bool = False,
    callback: Callable[[Engine], Any] | None = None,
    **options: Any,
) -> list[xr.Dataset | None]:
    """Train the members ``problems`` as batches and write each one's solution to ``outs``.

    Members are grouped by :func:`structure_key`; each group trains as one batch (its
    checkpoint and log beside the first member's output). Returns each member's solution
    in order, ``None`` for a member that diverged (the others train on).
    """
    if len(problems) != len(outs):
        raise OptionsError("batch: one output path per member")
    runs = [prepare(problem, preset=preset, model=model, **options) for problem in problems]
    for run in runs:
        _check_batchable(run)
    groups: dict[str, list[int]] = {}
    for index, run in enumerate(runs):
        groups.setdefault(structure_key(run), []).append(index)
    solutions: list[xr.Dataset | None] = [None] * len(runs)
    for indices in groups.values():
        group = _common_steps([runs[i] for i in indices], preset, model, options)
        for index, dataset in zip(indices, _train_group(group, [outs[i] for i in indices], resume, progress, callback)):
            solutions[index] = dataset
    return solutions


def _common_steps(runs: list[CrnRun], preset: str | None, model: dict[str, Any] | None, options: dict[str, Any]) -> list[CrnRun]:
    """The group's runs, rebuilt with the most sub-steps and predictor steps any member needs."""
    substeps = max(run.resolved.substeps for run in runs)
    predictor_steps = max(run.resolved.predictor_steps for run in runs)
    if all(run.resolved.substeps == substeps and run.resolved.predictor_steps == predictor_steps for run in runs):
        return runs
    common = {**(model or {}), "predictor_steps": predictor_steps}
    return [prepare(run.problem, preset=preset, model=common, **{**options, "substeps": substeps}) for run in runs]


def _train_group(runs: list[CrnRun], outs: list[Path | None], resume: bool, progress: bool, callback: Any) -> list[xr.Dataset | None]:
    task = BatchTask(runs)
    first = Path(outs[0]).with_name(Path(outs[0]).stem + ".batch.nc") if outs[0] is not None else None
    engine = start_engine(task, runs[0].options.training, out=first, resume=resume, progress=progress, callback=callback)
    # vmap turns each member's convolution into one grouped convolution; on the CPU the
    # native kernels run those (forward and backward) up to twice as fast as oneDNN's.
    with _native_convolutions():
        result = engine.train()
    task.networks.write_back([run.task.model for run in runs])
    datasets: list[xr.Dataset | None] = []
    for m, (run, out) in enumerate(zip(runs, outs)):
        if result.diverged[m]:
            datasets.append(None)
            continue
        dataset = solution(run, _member_result(result, m)).assign_attrs(batch=len(runs))
        if out is not None:
            write_solution(dataset, Path(out))
        datasets.append(dataset)
    return datasets


@contextmanager
def _native_convolutions() -> Iterator[None]:
    """oneDNN (mkldnn) off for the block, restored after (its ``flags`` context warns about
    TF32 on CPU builds)."""
    previous = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(previous)


def _member_result(result: TrainingResult, member: int) -> TrainingResult:
    terms = result.member_terms[member]
    return dataclasses.replace(result, loss_terms=terms, best_loss=sum(terms.values()), member_terms=[terms], diverged=[False])
