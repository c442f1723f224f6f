"""The training engine: one loop for every network of the package.

:class:`Engine` trains a :class:`~phycrnet.training.task.Task` (PhyCRNet, the PINN, or a
batch of PhyCRNet members): Adam on the weighted loss until ``1 - lbfgs_fraction`` of the
budget (:mod:`phycrnet.training.schedule`), then the L-BFGS finish
(:mod:`phycrnet.training.lbfgs`), with one divergence policy
(:mod:`phycrnet.training.divergence`), checkpoints every ``checkpoint_every`` seconds in
both phases (:mod:`phycrnet.training.checkpoint`) and a CSV log. Time spent on
checkpoints and callbacks is not training time.

Learnable coefficients (a task's parameter group marked ``coefficients``) are trained
from ``coefficient_warmup`` to ``identification_share`` of the run, in both phases:
before, against an untrained network's residual they run to wherever that residual is
smallest; after, the data weight decays and they would follow the residual of an
imperfect solution instead of the data (docs/method.md, "Observations").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from phycrnet.errors import DivergenceError
from phycrnet.losses.weighting import Weighting, make_weighting
from phycrnet.options import TrainingOptions
from phycrnet.training import checkpoint
from phycrnet.training.averaging import WeightAverage
from phycrnet.training.divergence import DivergenceGuard
from phycrnet.training.lbfgs import LbfgsFinish
from phycrnet.training.log import CsvLog, ProgressBar
from phycrnet.training.schedule import Budget, schedule_factor
from phycrnet.training.state import blend, deep_copy
from phycrnet.training.task import Task, TrainingResult


class Engine:
    """Trains one task.

    Args:
        task: what is trained (see :class:`~phycrnet.training.task.Task`).
        options: the training options.
        log_path: CSV log (``None``: no log).
        checkpoint_path: checkpoint file (``None``: no checkpoints).
        progress: show a progress bar.
        callback: ``callback(engine)`` after every Adam iteration and L-BFGS outer step;
            its time is not training time (benchmarks record error curves with it).
    """

    def __init__(
        self,
        task: Task,
        options: TrainingOptions,
        *,
        log_path: Path | None = None,
        checkpoint_path: Path | None = None,
        progress: bool = False,
        callback: Callable[[Engine], None] | None = None,
    ) -> None:
        self.task = task
        self.options = options
        self.windows = task.windows(options.curriculum)
        self.budget = Budget.of(options, len(self.windows))
        self.weighting = make_weighting(options.weighting, **options.weighting_options).to(task.device)
        self.weighting.attach(lambda losses: gradient_norms(self.task.network_parameters(), losses))
        if hasattr(self.weighting, "log_variances"):  # lazily created (``uncertainty``): needed before Adam
            with torch.no_grad():
                self.weighting.combine(task.losses(self.windows[0], "adam"), 0)
        self.optimizer = torch.optim.Adam(_adam_groups(task, self.weighting), lr=options.lr)
        adam_parameters = [p for group in self.optimizer.param_groups for p in group["params"]]
        self.average = WeightAverage(adam_parameters, options.weight_average) if options.weight_average > 0 else None
        self.guard = DivergenceGuard(task.members, options.divergence_factor, options.max_recoveries, task.standstill_loss())
        self.checkpoint_path = checkpoint_path
        self.log = CsvLog(log_path)
        self.progress = progress
        self.callback = callback
        self.iteration = 0
        self.seconds = 0.0
        self.lr_scale = 1.0
        self.current_lr = options.lr
        self.phase = "adam"
        self.stage = 0
        self.stage_start = 0
        self.last_terms: dict[str, float] = {}
        #: The learned coefficients of the state the next log row describes.
        self.logged_parameters = task.learned_parameters()
        self.lbfgs: LbfgsFinish | None = None
        #: Iterations of the Adam phase (set when the L-BFGS finish begins).
        self.adam_iterations: int | None = None
        self._last_checkpoint = 0.0
        self._bar: ProgressBar | None = None

    # -- progress --------------------------------------------------------------------------
    def progress_fraction(self) -> float:
        """Share of the run done, in [0, 1]."""
        return self.budget.progress(self.iteration, self.seconds)

    def coefficients_frozen(self) -> bool:
        """Whether learnable coefficients are held now (module docstring)."""
        p = self.progress_fraction()
        return p < self.options.coefficient_warmup or p >= self.options.identification_share

    def learning_rate(self) -> float:
        """Adam's learning rate now: the schedule over its span, times the recovery scale."""
        o = self.options
        q = self.budget.schedule_progress(self.progress_fraction(), o.schedule_span)
        return o.lr * schedule_factor(o.schedule, q, iteration=self.iteration - self.stage_start, options=o) * self.lr_scale

    # -- the loop --------------------------------------------------------------------------
    def train(self) -> TrainingResult:
        """Adam, then the L-BFGS finish, until the iteration cap or the time budget."""
        self._bar = ProgressBar(self.progress)
        if self.iteration == 0 and self.windows[0] is not None:
            # A curriculum trains on parts of the window first: the start, scored on the
            # whole window, is the first candidate for the best state, so the short windows
            # cannot leave a network that starts as a classical step worse than it began.
            self.track_current_state("adam")
        stopped_by = self.budget.adam_done(self.iteration, self.seconds)
        try:
            while self.phase == "adam" and stopped_by is None:
                self._adam_iteration()
                stopped_by = self.budget.adam_done(self.iteration, self.seconds)
            if self.phase == "adam" and self.average is not None:
                self._adopt_average()
            if self.options.lbfgs_fraction > 0 and self.budget.done(self.iteration, self.seconds) is None or self.phase == "lbfgs":
                self._enter_lbfgs()
                assert self.lbfgs is not None
                self.lbfgs.run()
        finally:
            self._bar.close()
            self.log.flush()
        if self.checkpoint_path is not None:
            self.save_checkpoint()
        return self._result(self.budget.done(self.iteration, self.seconds) or stopped_by or "iterations")

    def _adam_iteration(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One Adam iteration with its bookkeeping; its loss terms and total (per member)."""
        start = time.perf_counter()
        terms, total = self._adam_step()
        self.seconds += time.perf_counter() - start
        self.iteration += 1
        raw = _raw(terms)
        bad = self.guard.blown_up(raw, self.iteration)
        if bool(bad.any()):
            self._recover(bad, raw)
            return terms, total
        self.last_terms = _first_member(terms)
        if self.iteration % self.options.log_every == 0 or self.iteration == 1:
            self.write_log(terms, total, lr=self.current_lr)
        self._after_step()
        return terms, total

    def _adam_step(self) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        stage = self.budget.stage(self.progress_fraction())
        if stage != self.stage:
            self.stage, self.stage_start = stage, self.iteration
        lr = self.current_lr = self.learning_rate()
        frozen = self.coefficients_frozen()
        for group in self.optimizer.param_groups:
            group["lr"] = 0.0 if frozen and group.get("coefficients") else lr * group.get("factor", 1.0)
        window = self.windows[self.stage]
        self.task.prepare("adam", self.iteration)
        losses = self.task.losses(window, "adam")
        total = self.weighting.combine(losses, self.iteration)
        self.optimizer.zero_grad(set_to_none=True)
        total.sum().backward()
        if self.options.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.task.network_parameters(), self.options.grad_clip)
        terms = _detached(losses)
        raw = _raw(terms)
        self.logged_parameters = self.task.learned_parameters()
        if window is None:
            # The parameters that produced this loss are the ones before the step.
            self.guard.track(raw, self.snapshot)
        if bool(torch.isfinite(raw).any()):
            self.optimizer.step()
            self._hold_failed()
            if self.average is not None and window is None:
                self.average.update()
        return terms, total.detach().reshape(-1).double().cpu()

    def _adopt_average(self) -> None:
        """The weight average becomes the best state, where its whole-window loss is finite
        and within the divergence factor of the best (:mod:`phycrnet.training.averaging`)."""
        assert self.average is not None
        current = self.snapshot()
        self.average.load_into_parameters()
        self.track_current_state("adam", adopt=True)
        self.restore(current)

    def _recover(self, bad: torch.Tensor, raw: torch.Tensor) -> None:
        restored, failed = self.guard.recover(bad)
        if bool(self.guard.failed.all()) or (self.task.members == 1 and bool(failed.any())):
            best = float(self.guard.best_loss.min())
            raise DivergenceError(
                f"training diverged at iteration {self.iteration} (loss {float(raw.min()):.3g}, best {best:.3g}); "
                "no result was written — try a smaller learning rate (--lr)"
            )
        if bool(restored.any()) and self.guard.best_state is not None:
            self.lr_scale *= 0.5
            self.restore(self.guard.best_state, restored, optimizer=True)
        self._hold_failed()

    def _hold_failed(self) -> None:
        """Members out of recoveries stay at their best state (a batch trains on)."""
        if bool(self.guard.failed.any()) and self.guard.best_state is not None:
            self.restore(self.guard.best_state, self.guard.failed, optimizer=True)

    def _after_step(self) -> None:
        if self._bar is not None:
            self._bar.update(self.progress_fraction(), self.iteration, self.last_terms)
        if self.callback is not None:
            self.callback(self)
        if self.checkpoint_path is not None and self.seconds - self._last_checkpoint >= self.options.checkpoint_every:
            self.save_checkpoint()

    def _enter_lbfgs(self) -> None:
        if self.lbfgs is not None:  # resumed inside the finish
            return
        if self.guard.best_state is not None:
            self.restore(self.guard.best_state)
        if not self.weighting.weights:  # no Adam step ran: let the scheme weigh the start
            with torch.no_grad():
                self.weighting.combine(self.task.losses(None, "lbfgs"), self.iteration)
        self.phase = "lbfgs"
        self.adam_iterations = self.iteration
        self.lbfgs = LbfgsFinish(self)

    def after_lbfgs_step(self, start: tuple[dict[str, torch.Tensor], torch.Tensor]) -> None:
        """Log the state an outer step started from; progress, callback, checkpoint."""
        terms, total = start
        self.last_terms = _first_member(terms)
        self.logged_parameters = self.task.learned_parameters()
        assert self.lbfgs is not None
        self.write_log(terms, total, lr=self.lbfgs.optimizer.param_groups[0]["lr"])
        self._after_step()

    def track_current_state(self, phase: str, *, adopt: bool = False) -> None:
        """Score the current state on the whole window as a candidate for the best state
        (the start before a curriculum; the state the last L-BFGS step ended in); with
        ``adopt`` it replaces the best unless it is not finite or far worse."""
        start = time.perf_counter()
        with torch.no_grad():
            terms = _detached(self.task.losses(None, phase))
        self.seconds += time.perf_counter() - start
        if adopt:
            self.guard.adopt(_raw(terms), self.snapshot)
        else:
            self.guard.track(_raw(terms), self.snapshot)

    # -- state -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A copy of the trained state: the task's modules and Adam's state."""
        modules = {name: deep_copy(module.state_dict()) for name, module in self.task.modules().items()}
        return {"modules": modules, "optimizer": deep_copy(self.optimizer.state_dict())}

    def restore(self, snapshot: dict[str, Any], members: torch.Tensor | None = None, *, optimizer: bool = False) -> None:
        """Load ``snapshot`` (for ``members`` only, when given; Adam's state too with ``optimizer``)."""
        members = torch.ones(self.task.members, dtype=torch.bool) if members is None else members
        for name, module in self.task.modules().items():
            module.load_state_dict(blend(snapshot["modules"][name], module.state_dict(), members))
        if optimizer:
            self.optimizer.load_state_dict(blend(deep_copy(snapshot["optimizer"]), self.optimizer.state_dict(), members))

    def _result(self, stopped_by: str) -> TrainingResult:
        if self.guard.best_state is not None:
            self.restore(self.guard.best_state)
        with torch.no_grad():
            terms = _detached(self.task.losses(None, "final"))
        finite = torch.isfinite(_raw(terms)) & ~self.guard.failed
        if not bool(finite.any()):
            raise DivergenceError("training ended with a non-finite solution; no result was written")
        members = [{k: float(v[m]) for k, v in terms.items()} for m in range(self.task.members)]
        return TrainingResult(
            iterations=self.iteration,
            seconds=self.seconds,
            loss_terms=members[0],
            best_loss=float(self.guard.best_loss[0]),
            stopped_by=stopped_by,
            recoveries=int(self.guard.recoveries.sum()),
            lbfgs_stalls=self.lbfgs.stalls if self.lbfgs is not None else 0,
            parameters=self.task.learned_parameters(),
            member_terms=members,
            diverged=[not bool(f) for f in finite],
        )

    # -- pieces ----------------------------------------------------------------------------
    def write_log(self, terms: dict[str, torch.Tensor], total: torch.Tensor, *, lr: float) -> None:
        """One log row (member means where a batch trains several)."""
        row: dict[str, Any] = {"iteration": self.iteration, "seconds": round(self.seconds, 4), "lr": lr, "loss": float(total.mean())}
        row.update({k: float(v.mean()) for k, v in terms.items()})
        row.update({f"w_{k}": v for k, v in self.weighting.weights.items()})
        row.update({f"param_{k}": v for k, v in self.logged_parameters.items()})
        self.log.append(row)

    # -- checkpoints -----------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        """Write the checkpoint atomically; the log is flushed first."""
        assert self.checkpoint_path is not None
        self.log.flush()
        state = {
            "key": self.task.key,
            "modules": {name: module.state_dict() for name, module in self.task.modules().items()},
            "task": self.task.extra_state(),
            "weighting": self.weighting.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "lbfgs": self.lbfgs.state_dict() if self.lbfgs is not None else None,
            "average": self.average.state_dict() if self.average is not None else None,
            "guard": self.guard.state_dict(),
            "counters": {k: getattr(self, k) for k in ("iteration", "seconds", "lr_scale", "phase", "stage", "stage_start", "last_terms", "adam_iterations")},
            "rng": checkpoint.random_states(),
        }
        checkpoint.save(state, self.checkpoint_path)
        self._last_checkpoint = self.seconds

    def load_checkpoint(self, path: Path) -> None:
        """Continue from a checkpoint written by :meth:`save_checkpoint`, in any phase."""
        state = checkpoint.load(path, self.task.key, self.task.device)
        try:
            for name, module in self.task.modules().items():
                module.load_state_dict(state["modules"][name])
            self.weighting.load_state_dict(state["weighting"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise checkpoint.describe_mismatch(path, exc) from None
        self.task.load_extra_state(state["task"])
        self.guard.load_state_dict(state["guard"])
        for key, value in state["counters"].items():
            setattr(self, key, value)
        if state["lbfgs"] is not None:
            self.lbfgs = LbfgsFinish(self, state["lbfgs"])
        if self.average is not None and state.get("average") is not None:
            self.average.load_state_dict(state["average"])
        self._last_checkpoint = self.seconds
        checkpoint.restore_random_states(state["rng"])
        self.log.truncate(self.iteration)


def _detached(losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each term per member, ``(members,)`` float64 on the CPU."""
    return {k: v.detach().reshape(-1).double().cpu() for k, v in losses.items()}


def _raw(terms: dict[str, torch.Tensor]) -> torch.Tensor:
    """The unweighted loss of each member (the divergence policy's measure)."""
    return sum(terms.values())  # type: ignore[return-value]


def _first_member(terms: dict[str, torch.Tensor]) -> dict[str, float]:
    return {k: float(v[0]) for k, v in terms.items()}


def gradient_norms(parameters: list[torch.nn.Parameter], losses: Mapping[str, torch.Tensor]) -> dict[str, tuple[float, float]]:
    """Per term: (max |g|, mean |g|) of its gradient on ``parameters`` (those that train)."""
    params = [p for p in parameters if p.requires_grad]
    norms = {}
    for name, value in losses.items():
        grads = torch.autograd.grad(value.sum(), params, retain_graph=True, allow_unused=True)
        flat = torch.cat([g.abs().flatten() for g in grads if g is not None])
        norms[name] = (float(flat.max()), float(flat.mean()))
    return norms


def _adam_groups(task: Task, weighting: Weighting) -> list[dict[str, Any]]:
    """The task's parameter groups, and the weighting scheme's parameters (if any) at the base rate."""
    groups = task.parameter_groups()
    own = list(weighting.parameters())
    return [*groups, {"params": own, "factor": 1.0}] if own else groups
