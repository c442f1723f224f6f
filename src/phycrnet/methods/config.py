"""Run configuration: the ``training:`` and ``model:`` sections of a spec, plus overrides.

Values come, in increasing priority, from the defaults here, the spec's sections and
keyword overrides (the command line). Unknown keys and bad values end in a one-line
:class:`~phycrnet.errors.OptionsError` naming the key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from phycrnet.errors import OptionsError, SpecError
from phycrnet.models.crn import ModelConfig
from phycrnet.physics.residual import PhysicsOptions

#: Iterations when neither an iteration count nor a time budget is given (the paper's).
DEFAULT_ITERATIONS = 20_000


class TrainingConfig(BaseModel):
    """How PhyCRNet is trained (see ``phycrnet solve --help``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    iterations: int | None = Field(None, ge=0)
    time_budget: float | None = Field(None, gt=0)
    lr: float = Field(6e-3, gt=0)
    schedule: Literal["step", "cosine", "exponential", "constant"] = "cosine"
    lr_decay: float = Field(0.2, gt=0, le=1)
    decay_every: float = Field(0.225, gt=0, le=1)
    final_lr_ratio: float = Field(1e-2, gt=0, le=1)
    weighting: str = "fixed"
    weighting_options: dict[str, Any] = Field(default_factory=dict)
    derivatives: Literal["auto", "fd2", "fd4", "spectral"] = "auto"
    boundary: Literal["soft", "hard"] = "hard"
    time_scheme: Literal["crank_nicolson", "bdf2", "central", "backward_euler", "adams_moulton"] = "crank_nicolson"
    bc_accuracy: int | None = Field(None, ge=1, le=4)
    substeps: int = Field(0, ge=0)  # 0: automatic (Trainer.automatic_substeps)
    # The network solves on a grid this many times finer per axis than the spec's (bounded
    # axes: (n - 1) * refine + 1 nodes, periodic: n * refine points); the output holds the
    # spec's nodes. For grids that do not resolve the solution (phycrnet.solver.refined).
    # "auto": refined where the transport is not resolved, under a time budget only
    # (phycrnet.solver.training_refinement).
    refine: Union[Annotated[int, Field(ge=1, le=8)], Literal["auto"]] = "auto"
    time_marching: int = Field(0, ge=0)
    # Weigh each network step's PDE residual by the inverse of the untrained network's at
    # that step (phycrnet.train.Trainer.measure_step_weights). "auto": where the network
    # starts as a classical step (the physics input with physics_init explicit).
    step_balance: Union[bool, Literal["auto"]] = "auto"
    causal: float = Field(0.0, ge=0)
    # 300 s, one thread, with the relative-loss L-BFGS (fc1a420): heat 3.3e-3 (0.5) -> 1.4e-3 (0.8),
    # Allen-Cahn 6.4e-5 -> 5.1e-5 (ad hoc runs, stop 12 note; catalog_300s is at this default).
    lbfgs_fraction: float = Field(0.8, ge=0, lt=1)
    grad_clip: float | None = Field(None, gt=0)
    data_weight: float = Field(1.0, gt=0)
    data_final_ratio: float = Field(0.01, gt=0, le=1)
    # With learned coefficients: the share of the run in which they are learned (the data
    # at full weight); then they are fixed and the data weight decays. 1 (the default):
    # learned to the end at a constant data weight. See phycrnet.observations.
    identification_share: float = Field(1.0, gt=0, le=1)
    coefficient_lr_factor: float = Field(5.0, gt=0)
    coefficient_warmup: float = Field(0.0, ge=0, lt=1)
    seed: int = 0
    dtype: Literal["float32", "float64"] = "float32"
    device: str = "auto"
    threads: int | None = Field(None, ge=1)
    divergence_factor: float = Field(1e4, gt=1)
    max_recoveries: int = Field(2, ge=0)
    checkpoint_every: float = Field(30.0, gt=0)
    log_every: int = Field(10, ge=1)

    @field_validator("refine", mode="before")
    @classmethod
    def _refine_factor_or_auto(cls, value: Any) -> Any:
        """An integer factor (a string of digits from the command line too) or ``"auto"``."""
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        if isinstance(value, bool) or not (value == "auto" or isinstance(value, int)):
            raise ValueError("must be 'auto' or an integer from 1 to 8")
        return value

    def physics_options(self) -> PhysicsOptions:
        """The residual's discretisation as these options choose it."""
        return PhysicsOptions(self.derivatives, self.boundary, self.time_scheme, self.bc_accuracy)

    def total_iterations(self) -> int | None:
        """Iteration cap: the given count, the paper's 20 000 without any budget, or none."""
        if self.iterations is not None:
            return self.iterations
        return None if self.time_budget is not None else DEFAULT_ITERATIONS


def _describe(exc: ValidationError, section: str) -> str:
    error = exc.errors()[0]
    key = ".".join(str(p) for p in error["loc"])
    if error["type"] == "extra_forbidden":
        return f"{section}.{key}: unknown option"
    value = error.get("input")
    suffix = f", got {value!r}" if isinstance(value, (str, int, float)) else ""
    return f"{section}.{key}: {error['msg']}{suffix}"


def training_config(section: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None) -> TrainingConfig:
    """Merge the spec's ``training:`` section with overrides (``None`` values are ignored)."""
    data = dict(section or {})
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        config = TrainingConfig.model_validate(data)
    except ValidationError as exc:
        raise OptionsError(_describe(exc, "training")) from None
    if config.coefficient_warmup >= config.identification_share:
        raise OptionsError(
            f"training.coefficient_warmup: {config.coefficient_warmup} must be below identification_share "
            f"({config.identification_share}), or learned coefficients are never trained"
        )
    return config


class _ModelSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    encoder_channels: tuple[int, ...] = ModelConfig.encoder_channels
    lstm_channels: int = ModelConfig.lstm_channels
    lstm_kernel: int = ModelConfig.lstm_kernel
    decoder_kernel: int = ModelConfig.decoder_kernel
    initial_state: str = ModelConfig.initial_state
    output_scale: float = ModelConfig.output_scale
    input_skip: bool = ModelConfig.input_skip
    head_channels: int = ModelConfig.head_channels
    shuffle_channels: int = ModelConfig.shuffle_channels
    physics_input: bool | Literal["auto"] = ModelConfig.physics_input
    physics_init: Literal["random", "explicit"] = ModelConfig.physics_init
    implicit_diffusion: bool | Literal["auto"] = ModelConfig.implicit_diffusion
    physics_predictor: Literal["euler", "heun"] = ModelConfig.physics_predictor
    predictor_steps: Annotated[int, Field(ge=1)] | Literal["auto"] = ModelConfig.predictor_steps


def model_config(section: Mapping[str, Any] | None, overrides: Mapping[str, Any] | None = None) -> ModelConfig:
    """The network architecture from the spec's ``model:`` section."""
    data = dict(section or {})
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    try:
        parsed = _ModelSection.model_validate(data)
    except ValidationError as exc:
        raise SpecError(_describe(exc, "model")) from None
    return ModelConfig(**parsed.model_dump())
