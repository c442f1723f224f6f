"""The typed sections of a spec: ``physics:``, ``model:``, ``training:`` and ``pinn:``.

Every option is a field with a type, a default, a unit where it has one and a description
(``docs/options.md`` is generated from them, see :mod:`phycrnet.options.docs`). The
sections forbid unknown keys, so a typo fails when the spec is loaded, with its key named.
This module imports no torch: parsing options is cheap.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TimeScheme = Literal["crank_nicolson", "bdf2", "central", "backward_euler", "adams_moulton"]
DerivativeScheme = Literal["auto", "fd2", "fd4", "spectral"]
BoundaryMode = Literal["soft", "hard"]
Schedule = Literal["cosine", "exponential", "step", "steplr", "constant"]
Weighting = Literal["fixed", "adaptive", "adaptive_detached", "uncertainty", "lr_annealing", "relobralo", "softadapt"]
Auto = Literal["auto"]


def option(default: Any, description: str, *, unit: str | None = None, **constraints: Any) -> Any:
    """A field with its documentation (``unit`` goes into ``docs/options.md``)."""
    extra: dict[str, Any] | None = {"unit": unit} if unit else None
    return Field(default, description=description, json_schema_extra=extra, **constraints)


class Section(BaseModel):
    """A section of the spec: unknown keys are errors; values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class PhysicsOptions(Section):
    """How the residual is discretised; shared by PhyCRNet and ``phycrnet classical``."""

    derivatives: DerivativeScheme = option(
        "auto",
        "Spatial stencils: fd2 or fd4 (finite differences of accuracy 2 or 4, one-sided closures at bounded sides), "
        "spectral (FFT on periodic axes, fd4 elsewhere). auto: spectral where every axis is periodic, else fd4.",
    )
    boundary: BoundaryMode = option(
        "hard",
        "hard: ghost nodes carry Neumann and Robin conditions into the stencils and Dirichlet nodes are set; "
        "soft: each side's condition is a residual term bc_<field>_<side> (the paper's method).",
    )
    time_scheme: TimeScheme = option(
        "crank_nicolson",
        "Time residual between frames: crank_nicolson (2nd order), bdf2 (2nd order, L-stable), central (the paper's, "
        "leaves the first step free), backward_euler (1st order) or adams_moulton (4th order).",
    )
    bc_accuracy: int | None = option(
        None, "Accuracy of the one-sided normal derivative of soft boundary residuals (default: that of the stencils).", ge=1, le=4
    )


class ModelOptions(Section):
    """The PhyCRNet network: encoder, ConvLSTM, pixel-shuffle decoder, and what the decoder sees."""

    encoder_channels: tuple[int, ...] = option(
        (8, 32, 64), "Channels of the strided encoder convolutions; each halves the resolution (the paper's: 8, 32, 128)."
    )
    lstm_channels: int = option(64, "Channels of the ConvLSTM cell at the coarsest resolution (the paper's: 128).", ge=1)
    lstm_kernel: int = option(3, "Kernel size of the ConvLSTM convolutions (odd).", ge=1)
    decoder_kernel: int = option(5, "Kernel size of the decoder's output convolution (odd).", ge=1)
    initial_state: Literal["learned", "zeros", "random"] = option(
        "learned", "The ConvLSTM's initial state: learned, zeros, or random and fixed (the paper's)."
    )
    output_scale: float = option(1.0, "Factor on the decoder output before the time step u + dt * output_scale * y.", gt=0)
    input_skip: bool = option(True, "Feed the current state to the decoder beside the shuffled LSTM output.")
    head_channels: int = option(0, "Channels of an extra hidden decoder layer (0: none).", ge=0)
    shuffle_channels: int = option(
        0, "Channels per pixel after the pixel shuffle; 0: lstm_channels / upscale**2, at least 4 per field for systems.", ge=0
    )
    physics_input: bool | Auto = option(
        "auto",
        "Feed the predictor's direction (the PDE's right-hand side F, see physics_predictor) to the decoder, so a "
        "network step learns a correction to a classical step. auto: on unless the grid does not resolve the "
        "transport (cell Peclet number above peclet_limit), the problem is too stiff for the predictor "
        "(physics_input_limit), or a coefficient is learned on a non-stiff problem (dt * rho at or below stiff_step).",
    )
    physics_init: Literal["explicit", "random"] = option(
        "explicit",
        "How the output layer starts: explicit makes the untrained network exactly the predictor (identity on its "
        "input, zero elsewhere); random is the paper's start.",
    )
    implicit_diffusion: bool | Auto = option(
        "auto",
        "Treat each field's constant diffusion implicitly in the physics input (an IMEX step). auto: on periodic grids "
        "where max_imex_substeps explicit sub-steps stay above stiff_step; on bounded grids where "
        "max_explicit_substeps sub-steps of max_predictor_steps predictor steps do.",
    )
    physics_predictor: Literal["heun", "euler"] = option(
        "heun", "The predictor fed to the decoder: heun (average of F at both ends of an explicit step) or euler (F(u_k))."
    )
    predictor_steps: Annotated[int, Field(ge=1)] | Auto = option(
        "auto",
        "Predictor steps per network step (the decoder sees their mean direction). auto: the fewest that bring each "
        "one's dt * rho to stiff_step, at most max_predictor_steps; 1 with implicit diffusion.",
    )

    @field_validator("lstm_kernel", "decoder_kernel")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd")
        return value

    @field_validator("encoder_channels")
    @classmethod
    def _positive_channels(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(c < 1 for c in value):
            raise ValueError("needs at least one positive channel count")
        return value

    @property
    def upscale(self) -> int:
        """The decoder's pixel-shuffle factor, ``2 ** len(encoder_channels)``."""
        return 2 ** len(self.encoder_channels)


class TrainingOptions(Section):
    """How a network is trained: budget, optimiser, schedule, loss weighting, robustness, output."""

    iterations: int | None = option(
        None, "Stop after this many iterations (an L-BFGS evaluation counts as one). Neither this nor time_budget: 20 000.", ge=0
    )
    time_budget: float | None = option(None, "Stop after this many seconds of training.", unit="s", gt=0)
    lr: float = option(6e-3, "Adam's initial learning rate.", gt=0)
    schedule: Schedule = option(
        "cosine",
        "Learning-rate schedule over the run's progress: cosine (to final_lr_ratio), exponential (to final_lr_ratio), "
        "step (times lr_decay every decay_every of the run), steplr (times lr_decay every step_size iterations, "
        "torch's StepLR, the paper's) or constant.",
    )
    schedule_span: Literal["run", "adam"] = option(
        "run", "What the schedule's progress spans: the whole run, or only the Adam phase before the L-BFGS finish."
    )
    lr_decay: float = option(0.2, "Factor per decay of the step and steplr schedules.", gt=0, le=1)
    decay_every: float = option(0.225, "Share of the run between decays of the step schedule.", unit="fraction of the run", gt=0, le=1)
    step_size: int = option(100, "Iterations between decays of the steplr schedule.", unit="iterations", ge=1)
    final_lr_ratio: float = option(1e-2, "Learning rate at the end of the cosine and exponential schedules, relative to lr.", gt=0, le=1)
    weighting: Weighting = option(
        "fixed",
        "Loss weighting: fixed (a plain sum, or weights by term name), adaptive (the paper's sum L_i^2 / sum L_i), "
        "adaptive_detached, uncertainty, lr_annealing, relobralo, softadapt.",
    )
    weighting_options: dict[str, Any] = option({}, "Options of the weighting scheme (for fixed: {weights: {name: value}}).")
    refine: Annotated[int, Field(ge=1, le=8)] | Auto = option(
        "auto",
        "Train on a grid this many times finer per axis; the output keeps the spec's nodes. auto: under a time budget "
        "alone, where the cell Peclet number on the spec's grid exceeds resolved_peclet, by ceil(Pe / resolved_peclet), "
        "at most max_auto_refine; 1 otherwise.",
    )
    substeps: int = option(
        0,
        "Network steps per output frame; 0 (auto): the fewest that bring the step's dt * rho to stiff_step, at most "
        "max_explicit_substeps, with the physics input; max_imex_substeps with implicit diffusion; 1 without physics input.",
        ge=0,
    )
    curriculum: tuple[int, ...] | None = option(
        None,
        "Train on the first N frames, then on more, from the previous state (the original PhyCRNet's 100, 200, 500, "
        "1000 steps). The Adam share of the run is split equally between the stages, each with its own learning-rate "
        "schedule; the full window follows if the list stops short of it, and the L-BFGS finish trains on it.",
        unit="frames",
    )
    memory_budget_gb: float | None = option(
        None,
        "Recompute the rollout in segments (gradient checkpointing) sized so that the stored activations fit in this "
        "many GB; None: store every step.",
        unit="GB",
        gt=0,
    )
    step_balance: bool | Auto = option(
        "auto",
        "Divide each network step's PDE residual by the untrained network's residual at that step (weights at most "
        "step_balance_limit). auto: where the untrained network is a classical step (physics input, explicit init).",
    )
    causal: float = option(0.0, "Causal weighting strength epsilon of the PDE residual over time (0: off).", ge=0)
    lbfgs_fraction: float = option(0.8, "Share of the run given to the L-BFGS finish.", unit="fraction of the run", ge=0, lt=1)
    lbfgs_history: int = option(50, "Curvature pairs L-BFGS keeps.", ge=1)
    lbfgs_max_iter: int = option(20, "Most L-BFGS iterations per outer step (between budget, log and checkpoint checks).", ge=1)
    grad_clip: float | None = option(None, "Clip the network's gradient norm to this (None: no clipping).", gt=0)
    weight_average: float = option(
        0.0, "Decay of a moving average of the weights over the Adam phase that becomes the result (0: off; 0.98: about the last 50 steps).", ge=0, lt=1
    )
    data_weight: float = option(1.0, "Weight of the data misfit terms data_<field>.", gt=0)
    data_final_ratio: float = option(0.01, "Data weight at the end of the run relative to data_weight (it decays geometrically).", gt=0, le=1)
    identification_share: float = option(
        1.0, "Share of the run in which learned coefficients are trained; then they are fixed and the data weight decays.", gt=0, le=1
    )
    coefficient_lr_factor: float = option(5.0, "Learning rate of learned coefficients relative to the network's.", gt=0)
    coefficient_warmup: float = option(0.0, "Share of the run before learned coefficients start to move.", ge=0, lt=1)
    seed: int = option(0, "Seed of the weights and of every random draw.")
    dtype: Literal["float32", "float64"] = option("float32", "Floating-point precision of the network and the residual.")
    device: str = option("auto", "auto (a GPU when present), cpu, cuda or cuda:N.")
    threads: int | None = option(None, "Torch intra-op threads on the CPU (None: every core).", ge=1)
    divergence_factor: float = option(
        1e4,
        "A loss this many times above the best seen (and above a standing-still solution's) is a blow-up: the best "
        "state is restored and the learning rate halved.",
        gt=1,
    )
    max_recoveries: int = option(2, "Blow-ups recovered from before the run ends with a divergence error.", ge=0)
    checkpoint_every: float = option(30.0, "Seconds of training between checkpoints, in every phase.", unit="s", gt=0)
    log_every: int = option(10, "Adam iterations between rows of the CSV log (every L-BFGS outer step is logged).", ge=1)

    @field_validator("refine", mode="before")
    @classmethod
    def _refine_factor_or_auto(cls, value: Any) -> Any:
        """An integer factor (a string of digits from the command line too) or ``"auto"``."""
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, bool) or not (value == "auto" or isinstance(value, int)):
            raise ValueError("must be 'auto' or an integer from 1 to 8")
        return value

    @field_validator("curriculum")
    @classmethod
    def _increasing_windows(cls, value: tuple[int, ...] | None) -> tuple[int, ...] | None:
        if value is not None and (not value or any(w < 1 for w in value) or list(value) != sorted(set(value))):
            raise ValueError("must be increasing positive frame counts, e.g. [100, 200, 500, 1000]")
        return value

    @model_validator(mode="after")
    def _warmup_before_identification(self) -> TrainingOptions:
        if self.coefficient_warmup >= self.identification_share:
            raise ValueError(
                f"coefficient_warmup ({self.coefficient_warmup}) must be below identification_share "
                f"({self.identification_share}), or learned coefficients are never trained"
            )
        return self


class PinnOptions(Section):
    """The PINN baseline's network and collocation points (its training options are in ``training:``)."""

    hidden: tuple[int, ...] = option((64, 64, 64), "Widths of the hidden layers of the MLP.")
    activation: Literal["tanh", "sin"] = option("tanh", "Activation of the hidden layers.")
    harmonics: tuple[int, ...] = option((1, 2), "Fourier wave numbers on periodic axes (an integer K means 1..K).")
    hard_initial: bool = option(True, "Build the initial condition into the network (u = u0 + phi(t) N) instead of a loss term.")
    initial_ramp: Literal["linear", "exp"] = option("linear", "phi(t) of the hard initial condition: t / t_end or 1 - exp(-t / t_end).")
    n_interior: int = option(4000, "Space-time collocation points of the PDE residual.", unit="points", ge=1)
    n_boundary: int = option(256, "Collocation points per bounded side (over space and time).", unit="points", ge=1)
    n_initial: int = option(1024, "Points at t = 0 of a soft initial condition.", unit="points", ge=1)
    resample_every: int = option(100, "Adam iterations between fresh collocation points (0: never).", unit="iterations", ge=0)
    lbfgs_interior: int | None = option(None, "Interior points of the L-BFGS phase's fixed set (None: n_interior).", unit="points", ge=1)
    causal_bins: int = option(20, "Time bins of the causal weighting.", ge=1)

    @field_validator("harmonics", mode="before")
    @classmethod
    def _count_or_list(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return tuple(range(1, value + 1))
        return value

    @field_validator("hidden", "harmonics")
    @classmethod
    def _positive(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if not value or any(v < 1 for v in value):
            raise ValueError("needs positive integers")
        return value


#: The sections by the spec key that holds them.
SECTIONS: dict[str, type[Section]] = {
    "physics": PhysicsOptions,
    "model": ModelOptions,
    "training": TrainingOptions,
    "pinn": PinnOptions,
}
