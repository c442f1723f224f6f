"""Loss-weighting schemes: named loss terms in, one scalar out.

Every scheme has the same interface (:class:`Weighting`): ``combine(losses)`` takes the
loss terms by name (scalar tensors, or one value per member of a batch) and returns the
total loss to minimise;
``weights`` holds the effective weights of the last call (for logging). Schemes that need
gradients per term receive a callable through :meth:`Weighting.attach`. Schemes are looked up
by name in :data:`WEIGHTINGS`:

* ``adaptive`` — the paper's L = sum L_i^2 / sum L_i (weights L_i / sum L_j, not detached,
  exactly as in the authors' code);
* ``adaptive_detached`` — the same weights, treated as constants in the gradient;
* ``fixed`` — constant weights per term (by full name or by prefix ``pde``/``bc``/``data``);
* ``uncertainty`` — learnable homoscedastic uncertainty weights (Kendall, Gal, Cipolla 2018):
  sum 0.5*exp(-s_i)*L_i + 0.5*s_i;
* ``lr_annealing`` — gradient-norm learning-rate annealing (Wang, Teng, Perdikaris 2021):
  lambda_i = max|grad L_pde| / mean|grad L_i|, smoothed by a moving average;
* ``relobralo`` — relative loss balancing with random lookback (Bischof, Kraus 2021);
* ``softadapt`` — softmax of the recent rates of change of each term (Heydari et al. 2019).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, cast

import torch
from torch import nn

from phycrnet.errors import OptionsError

Losses = Mapping[str, torch.Tensor]


class Weighting(nn.Module):
    """Base class: combines named loss terms into one scalar."""

    def __init__(self, **options: Any) -> None:
        super().__init__()
        if options:
            raise OptionsError(f"weighting: unknown option(s) {', '.join(sorted(options))} for {type(self).__name__}")
        self.weights: dict[str, float] = {}
        self._gradient_norms: Callable[[Losses], dict[str, tuple[float, float]]] | None = None

    #: Plain-Python attributes that make up the scheme's state (saved in checkpoints).
    persistent: tuple[str, ...] = ()

    def get_extra_state(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.persistent}
        if isinstance(generator := getattr(self, "generator", None), torch.Generator):
            state["generator"] = generator.get_state()
        return state

    def set_extra_state(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            if name == "generator":
                cast(torch.Generator, self.generator).set_state(value)
            else:
                setattr(self, name, value)

    def attach(self, gradient_norms: Callable[[Losses], dict[str, tuple[float, float]]]) -> None:
        """Give the scheme a way to measure per-term gradients: name -> (max |g|, mean |g|)."""
        self._gradient_norms = gradient_norms

    def combine(self, losses: Losses, step: int) -> torch.Tensor:
        raise NotImplementedError

    def _weighted(self, losses: Losses, weights: Mapping[str, float | torch.Tensor]) -> torch.Tensor:
        self.weights = _logged(weights)
        return cast(torch.Tensor, sum(weights[k] * v for k, v in losses.items()))


class Fixed(Weighting):
    """Constant weights; unspecified terms get weight 1."""

    def __init__(self, weights: Mapping[str, float] | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.config = dict(weights or {})

    def weight_of(self, name: str) -> float:
        if name in self.config:
            return float(self.config[name])
        prefix = name.split("_")[0]
        return float(self.config.get(prefix, 1.0))

    def combine(self, losses: Losses, step: int) -> torch.Tensor:
        return self._weighted(losses, {k: self.weight_of(k) for k in losses})


class Adaptive(Weighting):
    """The paper's ratio L = sum L_i^2 / sum L_i."""

    detach = False

    def combine(self, losses: Losses, step: int) -> torch.Tensor:
        total = sum(losses.values())
        weights = {k: v / total for k, v in losses.items()}
        if self.detach:
            weights = {k: w.detach() for k, w in weights.items()}
        return self._weighted(losses, weights)


class AdaptiveDetached(Adaptive):
    """The paper's weights L_i / sum L_j, held constant in the gradient."""

    detach = True


class Uncertainty(Weighting):
    """Learnable log-variances s_i: sum 0.5*exp(-s_i)*L_i + 0.5*s_i."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.log_variances = nn.ParameterDict()

    def combine(self, losses: Losses, step: int) -> torch.Tensor:
        total: Any = 0.0
        weights = {}
        for name, value in losses.items():
            if name not in self.log_variances:
                # Start at the term's own scale so every weighted term begins near 1.
                start = math.log(max(float(value.detach()), 1e-12))
                self.log_variances[name] = nn.Parameter(torch.tensor(start, dtype=value.dtype, device=value.device))
            s = self.log_variances[name]
            weights[name] = 0.5 * torch.exp(-s)
            total = total + weights[name] * value + 0.5 * s
        self.weights = _logged(weights)
        return cast(torch.Tensor, total)


class LearningRateAnnealing(Weighting):
    """Gradient-norm balancing against the PDE terms, updated every ``every`` steps."""

    persistent = ("lambdas",)

    def __init__(self, every: int = 50, alpha: float = 0.9, **options: Any) -> None:
        super().__init__(**options)
        self.every = every
        self.alpha = alpha
        self.lambdas: dict[str, float] = {}

    def combine(self, losses: Losses, step: int) -> torch.Tensor:
        if self._gradient_norms is not None and step % self.every == 0 and torch.is_grad_enabled():
            norms = self._gradient_norms(losses)
            reference = max((m for k, (m, _) in norms.items() if k.startswith("pde")), default=1.0)
            for name, (_, mean) in norms.items():
                if name.startswith("pde"):
                    continue
                target = reference / max(mean, 1e-12)
                old = self.lambdas.get(name, target)
                self.lambdas[name] = self.alpha * old + (1 - self.alpha) * target
        return self._weighted(losses, {k: self.lambdas.get(k, 1.0) for k in losses})



class ReLoBRaLo(Weighting):
    """Relative loss balancing with random lookback (Bischof & Kraus 2021)."""

    persistent = ("initial", "previous", "lambdas")

    def __init__(self, alpha: float = 0.999, rho: float = 0.999, temperature: float = 0.1, **options: Any) -> None:
        super().__init__(**options)
        self.alpha, self.rho, self.temperature = alpha, rho, temperature
        self.initial: dict[str, float] = {}
        self.previous: dict[str, float] = {}
        self.lambdas: dict[str, float] = {}
        self.generator = torch.Generator().manual_seed(0)

    def _balance(self, current: dict[str, float], reference: dict[str, float]) -> dict[str, float]:
        names = list(current)
        ratios = torch.tensor([current[k] / (self.temperature * max(reference[k], 1e-30)) for k in names])
        weights = len(names) * torch.softmax(ratios, dim=0)
        return dict(zip(names, weights.tolist()))

    def combine(self, losses: Losses, step: int) -> torch.Tensor:
        current = {k: float(v.detach()) for k, v in losses.items()}
        if not self.initial:
            self.initial = dict(current)
            self.previous = dict(current)
            self.lambdas = {k: 1.0 for k in current}
        for name in current:
            self.initial.setdefault(name, current[name])
            self.previous.setdefault(name, current[name])
            self.lambdas.setdefault(name, 1.0)
        lookback = float(torch.rand((), generator=self.generator)) < self.rho
        from_previous = self._balance(current, self.previous)
        from_initial = self._balance(current, self.initial)
        for name in current:
            history = self.lambdas[name] if lookback else from_initial[name]
            self.lambdas[name] = self.alpha * history + (1 - self.alpha) * from_previous[name]
        self.previous = current
        return self._weighted(losses, dict(self.lambdas))


class SoftAdapt(Weighting):
    """Weights from a softmax of each term's relative rate of change (Heydari et al. 2019)."""

    persistent = ("previous",)

    def __init__(self, beta: float = 0.1, **options: Any) -> None:
        super().__init__(**options)
        self.beta = beta
        self.previous: dict[str, float] = {}

    def combine(self, losses: Losses, step: int) -> torch.Tensor:
        current = {k: float(v.detach()) for k, v in losses.items()}
        names = list(current)
        if all(k in self.previous for k in names):
            rates = torch.tensor([(current[k] - self.previous[k]) / max(self.previous[k], 1e-30) for k in names])
            weights = dict(zip(names, (len(names) * torch.softmax(self.beta * rates / (rates.abs().max() + 1e-12), 0)).tolist()))
        else:
            weights = {k: 1.0 for k in names}
        self.previous = current
        return self._weighted(losses, weights)


def _logged(weights: Mapping[str, float | torch.Tensor]) -> dict[str, float]:
    """The weights as floats (a batch's member mean where a weight is per member)."""
    return {k: float(w.detach().mean()) if isinstance(w, torch.Tensor) else float(w) for k, w in weights.items()}


WEIGHTINGS: dict[str, type[Weighting]] = {
    "adaptive": Adaptive,
    "adaptive_detached": AdaptiveDetached,
    "fixed": Fixed,
    "uncertainty": Uncertainty,
    "lr_annealing": LearningRateAnnealing,
    "relobralo": ReLoBRaLo,
    "softadapt": SoftAdapt,
}


def make_weighting(name: str, **options: Any) -> Weighting:
    """The weighting scheme called ``name`` (see :data:`WEIGHTINGS`)."""
    try:
        cls = WEIGHTINGS[name]
    except KeyError:
        raise OptionsError(f"weighting: unknown scheme {name!r} (choose from {', '.join(WEIGHTINGS)})") from None
    return cls(**options)
