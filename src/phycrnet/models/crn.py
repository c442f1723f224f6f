"""The PhyCRNet network: convolutional encoder, ConvLSTM, pixel-shuffle decoder.

One step maps the state ``u_k`` ``(B, C, ny, nx)`` to ``u_{k+1} = u_k + dt * N(u_k, h_k)``
(residual time stepping, Ren et al. 2022); with ``physics_input`` the decoder also sees the
PDE's right-hand side F(u_k), which the caller supplies. The encoder halves the resolution ``depth``
times with weight-normalised strided convolutions, a ConvLSTM cell carries the memory at the
coarse resolution, and a pixel shuffle plus a final convolution bring the output back to the
grid. Any grid size works: the input is padded up to a multiple of ``2**depth`` (circularly
on periodic axes, by edge replication otherwise) and the output cropped back. Convolutions
pad circularly on periodic axes and with zeros on the others.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from phycrnet.errors import OptionsError


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of the network.

    The defaults are the paper's design at half its width (64 instead of 128 ConvLSTM
    channels, which costs a quarter of the time per step and trained as well per iteration
    in our measurements) with the current state fed to the decoder (``input_skip``), which
    lowered the error reached in a fixed number of iterations by about 2x on Allen–Cahn, and
    with the PDE's right-hand side fed to the decoder as well (``physics_input``). The
    paper's network is ``encoder_channels=(8, 32, 128), lstm_channels=128, input_skip=False,
    physics_input=False``.
    """

    encoder_channels: tuple[int, ...] = (8, 32, 64)
    lstm_channels: int = 64
    lstm_kernel: int = 3
    decoder_kernel: int = 5
    initial_state: str = "learned"  # "learned", "zeros" or "random" (fixed, as in the paper)
    output_scale: float = 1.0
    #: Feed the current state to the decoder head beside the upsampled LSTM output, and give
    #: the head ``head_channels`` hidden channels with a nonlinearity (0: the paper's single
    #: output convolution). Lets the decoder form local nonlinear updates directly.
    input_skip: bool = True
    head_channels: int = 0
    #: Channels per pixel after the pixel shuffle. 0 (automatic): the paper's
    #: lstm_channels / upscale**2 for one field, and at least 4 per field for systems, whose
    #: fields otherwise share a single channel (measured on two-field cases, RESULTS.md
    #: "Two-field cases: decoder width": Burgers 0.30 -> 0.18 at 120 s, diffusion-reaction
    #: unchanged). A 1x1 convolution at the coarse resolution provides them when they differ.
    shuffle_channels: int = 0
    #: Feed the right-hand side F(u_k) of the PDE to the decoder head beside the current
    #: state (the trainer supplies it, evaluated with the residual's own operators and, in
    #: hard mode, the boundary conditions' ghost nodes). The network then learns a
    #: correction to an explicit step instead of the physics itself, and it sees the
    #: boundary data, which it otherwise has to infer from the loss alone. Measured at 120 s,
    #: one thread (RESULTS.md, "Physics input" and "Automatic sub-steps"): Allen–Cahn
    #: 5.4e-4 -> 2.9e-4; heat needs sub-steps with it; diffusion–reaction and Burgers mixed
    #: about unchanged (4.6e-3, 0.15 -> 0.17). ``"auto"`` (the default): on unless the grid
    #: does not resolve the transport or the problem is too stiff for it (the trainer
    #: decides, see ``phycrnet.train.Trainer.automatic_physics_input``); a network built
    #: directly treats it as on.
    physics_input: bool | str = "auto"
    #: How the output layer starts. ``"explicit"`` (the default): the identity on F at the
    #: centre tap and zero on everything else, so that the untrained network steps exactly
    #: like the predictor below (taken ``predictor_steps`` times per network step, and
    #: damped only where even that would be unstable, see the trainer's
    #: ``explicit_step_gain``) and training only learns the correction.
    #: ``"random"``: random weights everywhere (the paper's start). Measured ad hoc at
    #: 120 s, one thread, beside other jobs, Allen–Cahn: random 2.1e-4; identity on F with
    #: random other weights 9.0e-5; with zero other weights 4.8e-5. burgers_phycrnet
    #: 1.7e-2 / 3.9e-3 (random / identity with random others); lambda-omega 0.88 (300 s)
    #: / 1.5e-2. Zero weights on F only were measured too (300 s): burgers_phycrnet
    #: 8.9e-3 -> 0.32.
    physics_init: str = "explicit"
    #: Treat each field's constant diffusion implicitly in the F the decoder sees (the IMEX
    #: Euler step, see :mod:`phycrnet.implicit`; periodic grids only). ``"auto"``: where
    #: explicit sub-steps cannot make the step stable (the trainer decides).
    implicit_diffusion: bool | str = "auto"
    #: What the decoder is fed as "F": ``"heun"`` (the default), the average of F at u_k
    #: and at the end of the explicit step from it, so the explicitly initialised network
    #: starts as Heun's second-order method and has less to correct, at one more
    #: evaluation of F per step; or ``"euler"``, F(u_k) (the network starts as explicit
    #: Euler). Ad hoc at 120 s, one thread (heun / euler): Allen–Cahn 2.6e-5 / 4.8e-5,
    #: lambda-omega 7.2e-4 / 1.6e-2, burgers_phycrnet 5.0e-5 / 3.9e-3 (euler with random
    #: other weights); FitzHugh-Nagumo 2.0e-2 / 1.6e-2 at one sub-step.
    physics_predictor: str = "heun"
    #: Steps of the predictor above per network step: each takes ``dt / predictor_steps``,
    #: and the decoder is fed their mean direction ``(u_end - u_k) / dt``, so that the
    #: explicitly initialised network starts as the predictor taken ``predictor_steps``
    #: times. ``"auto"`` (the default): the fewest that keep each step within the explicit
    #: stability limit, at most ``phycrnet.train.MAX_PREDICTOR_STEPS`` (the trainer
    #: decides, see ``Trainer.automatic_predictor_steps``); 1 with implicit diffusion.
    predictor_steps: int | str = "auto"

    def __post_init__(self) -> None:
        if not self.encoder_channels or any(c < 1 for c in self.encoder_channels):
            raise OptionsError("model.encoder_channels: need at least one positive channel count")
        if self.lstm_channels < 1:
            raise OptionsError("model.lstm_channels: must be positive")
        if self.lstm_kernel % 2 == 0 or self.decoder_kernel % 2 == 0:
            raise OptionsError("model: lstm_kernel and decoder_kernel must be odd")
        if self.head_channels < 0 or self.shuffle_channels < 0:
            raise OptionsError("model: head_channels and shuffle_channels must be >= 0")
        if self.physics_input not in (True, False, "auto"):
            raise OptionsError("model.physics_input: choose true, false or auto")
        if self.implicit_diffusion not in (True, False, "auto"):
            raise OptionsError("model.implicit_diffusion: choose true, false or auto")
        if self.physics_predictor not in ("euler", "heun"):
            raise OptionsError("model.physics_predictor: choose euler or heun")
        if self.predictor_steps != "auto" and (isinstance(self.predictor_steps, bool) or not isinstance(self.predictor_steps, int) or self.predictor_steps < 1):
            raise OptionsError(f"model.predictor_steps: {self.predictor_steps!r} is not a positive integer or auto")
        if self.physics_init not in ("random", "explicit"):
            raise OptionsError("model.physics_init: choose random or explicit")
        if self.initial_state not in ("learned", "zeros", "random"):
            raise OptionsError("model.initial_state: choose learned, zeros or random")

    @property
    def upscale(self) -> int:
        return 2 ** len(self.encoder_channels)


def _pad(x: torch.Tensor, pad: tuple[int, int, int, int], periodic: tuple[bool, bool], mode: str = "constant") -> torch.Tensor:
    """Pad (left, right, top, bottom) = pad; circular on periodic axes, ``mode`` elsewhere."""
    px, py = periodic
    left, right, bottom, top = pad
    if left or right:
        x = F.pad(x, (left, right, 0, 0), mode="circular" if px else mode)
    if bottom or top:
        x = F.pad(x, (0, 0, bottom, top), mode="circular" if py else mode)
    return x


class PaddedConv(nn.Module):
    """A convolution that pads per axis (circular on periodic axes, zeros otherwise)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, periodic: tuple[bool, bool], *, bias: bool = True, normalise: bool = False) -> None:
        super().__init__()
        self.periodic = periodic
        self.kernel = kernel
        conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=0, bias=bias)
        self.conv = weight_norm(conv) if normalise else conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = (self.kernel - 1) // 2
        high = self.kernel - 1 - low
        if self.conv.stride[0] == 2 and self.kernel % 2 == 0:
            low = high = self.kernel // 2 - 1
        return self.conv(_pad(x, (low, high, low, high), self.periodic))


class ConvLSTMCell(nn.Module):
    """ConvLSTM cell without peepholes; the forget-gate bias starts at 1."""

    def __init__(self, cin: int, hidden: int, kernel: int, periodic: tuple[bool, bool]) -> None:
        super().__init__()
        self.hidden = hidden
        self.input_conv = PaddedConv(cin, 4 * hidden, kernel, 1, periodic, bias=True)
        self.hidden_conv = PaddedConv(hidden, 4 * hidden, kernel, 1, periodic, bias=False)
        with torch.no_grad():
            bias = self.input_conv.conv.bias
            bias.zero_()
            bias[hidden : 2 * hidden] = 1.0

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = state
        gates = self.input_conv(x) + self.hidden_conv(h)
        i, f, o, g = torch.chunk(gates, 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class PhyCRNet(nn.Module):
    """Encoder - ConvLSTM - pixel-shuffle decoder with residual time stepping.

    Args:
        n_fields: number of fields C.
        shape: grid shape ``(ny, nx)``.
        periodic: ``(periodic_x, periodic_y)``.
        config: the architecture.
        seed: seeds the weight initialisation (and the fixed random initial state).
    """

    def __init__(self, n_fields: int, shape: tuple[int, int], periodic: tuple[bool, bool], config: ModelConfig | None = None, *, seed: int = 0) -> None:
        super().__init__()
        self.config = config = config or ModelConfig()
        self.n_fields = n_fields
        self.shape = shape
        self.periodic = periodic
        factor = config.upscale
        self.padded_shape = tuple(math.ceil(n / factor) * factor for n in shape)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            self._build(n_fields, config, periodic)
        finally:
            torch.random.set_rng_state(generator_state)

    def _build(self, n_fields: int, config: ModelConfig, periodic: tuple[bool, bool]) -> None:
        channels = (n_fields, *config.encoder_channels)
        self.encoder = nn.ModuleList(
            PaddedConv(cin, cout, 4, 2, periodic, normalise=True) for cin, cout in zip(channels[:-1], channels[1:])
        )
        self.lstm = ConvLSTMCell(channels[-1], config.lstm_channels, config.lstm_kernel, periodic)
        factor = config.upscale
        shuffled = config.shuffle_channels or self.automatic_shuffle_channels(n_fields, config)
        if shuffled < 1:
            raise OptionsError(f"model.lstm_channels: {config.lstm_channels} is fewer than the {factor**2} a pixel shuffle by {factor} needs")
        self.project = None
        if shuffled * factor**2 != config.lstm_channels:
            self.project = nn.Conv2d(config.lstm_channels, shuffled * factor**2, 1)
        self.shuffle = nn.PixelShuffle(factor)
        head_in = shuffled + (n_fields if config.input_skip else 0) + (n_fields if config.physics_input else 0)
        if config.head_channels:
            self.hidden_head = PaddedConv(head_in, config.head_channels, config.decoder_kernel, 1, periodic)
            self.output = PaddedConv(config.head_channels, n_fields, 1, 1, periodic)
        else:
            self.hidden_head = None
            self.output = PaddedConv(head_in, n_fields, config.decoder_kernel, 1, periodic)
        coarse = tuple(n // factor for n in self.padded_shape)
        init = torch.randn(2, 1, config.lstm_channels, *coarse) if config.initial_state == "random" else torch.zeros(2, 1, config.lstm_channels, *coarse)
        if config.initial_state == "learned":
            self.initial_state = nn.Parameter(init)
        else:
            self.register_buffer("initial_state", init)
        with torch.no_grad():
            self.output.conv.weight.mul_(0.1)
            self.output.conv.bias.zero_()

    def scale_output(self, factor: float) -> None:
        """Multiply the output layer's weights by ``factor`` (before training: a long time
        step needs a smaller initial update)."""
        with torch.no_grad():
            self.output.conv.weight.mul_(factor)

    def start_as_explicit_step(self, gain: float = 1.0) -> None:
        """Make the decoder pass F through: the output layer's weights on F become ``gain``
        times the identity at the centre tap, all its other weights zero, so the untrained
        step is exactly ``u + gain * dt * F(u)`` (plus the output bias, zero too). The
        network's other layers keep their random weights and start to learn once the
        output layer's weights on them grow (as with a zero-initialised last layer of a
        residual block). Needs ``physics_input`` and no hidden head (whose nonlinearity
        would bend F)."""
        if not self.config.physics_input or self.hidden_head is not None:
            raise OptionsError("model.physics_init explicit needs physics_input and head_channels 0")
        weight = self.output.conv.weight
        n, centre = self.n_fields, self.config.decoder_kernel // 2
        with torch.no_grad():
            weight.zero_()
            for c in range(n):
                weight[c, weight.shape[1] - n + c, centre, centre] = gain / self.config.output_scale

    @staticmethod
    def automatic_shuffle_channels(n_fields: int, config: ModelConfig) -> int:
        """Channels per pixel after the shuffle when ``shuffle_channels`` is 0 (see there)."""
        paper = config.lstm_channels // config.upscale**2
        return paper if n_fields == 1 else max(paper, 4 * n_fields)

    def initial_hidden(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = self.initial_state
        return h.expand(batch, -1, -1, -1), c.expand(batch, -1, -1, -1)

    def _pad_to_network(self, u: torch.Tensor) -> torch.Tensor:
        """``(B, C, ny, nx)`` padded up to the network's shape (a multiple of the upscale)."""
        (ny, nx), (pny, pnx) = self.shape, self.padded_shape
        return _pad(u, (0, pnx - nx, 0, pny - ny), self.periodic, mode="replicate")

    def step(self, u: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], dt: float, rhs: torch.Tensor | None = None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """One time step: ``u (B, C, ny, nx) -> u_next``, with the LSTM state carried along.

        ``rhs`` is F(u) ``(B, C, ny, nx)``, required when ``physics_input`` is set.
        """
        ny, nx = self.shape
        x = x_in = self._pad_to_network(u)
        for conv in self.encoder:
            x = F.relu(conv(x))
        h, c = self.lstm(x, state)
        y = self.shuffle(h if self.project is None else self.project(h))
        if self.config.input_skip:
            y = torch.cat([y, x_in], dim=1)
        if self.config.physics_input:
            if rhs is None:
                raise ValueError("physics_input needs the right-hand side F(u) at every step")
            y = torch.cat([y, self._pad_to_network(rhs)], dim=1)
        if self.hidden_head is not None:
            y = torch.tanh(self.hidden_head(y))
        y = self.output(y)[..., :ny, :nx]
        return u + dt * self.config.output_scale * y, (h, c)

    def forward(self, u0: torch.Tensor, n_steps: int, dt: float, state: tuple[torch.Tensor, torch.Tensor] | None = None, constrain=None, rhs=None) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Roll out ``n_steps`` steps from ``u0`` ``(B, C, ny, nx)``.

        Returns frames ``(n_steps + 1, B, C, ny, nx)`` (frame 0 is ``u0``) and the final LSTM
        state. ``constrain(k, u)``, if given, is applied to each new state ``u_k`` (e.g. to
        impose Dirichlet values) before it is fed back. ``rhs(k, u)`` gives F(u_k) for
        ``physics_input``.
        """
        state = state if state is not None else self.initial_hidden(u0.shape[0])
        frames = [u0]
        u = u0
        for k in range(1, n_steps + 1):
            u, state = self.step(u, state, dt, rhs(k - 1, u) if rhs is not None else None)
            if constrain is not None:
                u = constrain(k, u)
            frames.append(u)
        return torch.stack(frames), state
