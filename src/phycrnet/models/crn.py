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
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from phycrnet.errors import OptionsError
from phycrnet.options import ModelOptions


def _pad(x: torch.Tensor, pad: tuple[int, int, int, int], periodic: tuple[bool, bool], mode: str = "constant") -> torch.Tensor:
    """Pad (left, right, top, bottom) = pad; circular on periodic axes, ``mode`` elsewhere."""
    px, py = periodic
    left, right, bottom, top = pad
    if left or right:
        x = F.pad(x, (left, right, 0, 0), mode="circular" if px else mode)
    if bottom or top:
        x = F.pad(x, (0, 0, bottom, top), mode="circular" if py else mode)
    return x


class NormalisedConv2d(nn.Module):
    """A weight-normalised convolution (Salimans & Kingma 2016): ``w = g v / ||v||`` per
    output channel, as ``torch.nn.utils.parametrizations.weight_norm`` computes it, but in
    plain operations that ``torch.func.vmap`` batches (members trained as one batch stack
    these weights). Starts from ``conv``'s weights: ``v = w``, ``g = ||w||``."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.stride = conv.stride
        self.direction = nn.Parameter(conv.weight.detach().clone())
        self.magnitude = nn.Parameter(torch.linalg.vector_norm(conv.weight.detach(), dim=(1, 2, 3), keepdim=True))
        self.bias = conv.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.direction * (self.magnitude / torch.linalg.vector_norm(self.direction, dim=(1, 2, 3), keepdim=True))
        return F.conv2d(x, weight, self.bias, stride=self.stride)


class PaddedConv(nn.Module):
    """A convolution that pads per axis (circular on periodic axes, zeros otherwise)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, periodic: tuple[bool, bool], *, bias: bool = True, normalise: bool = False) -> None:
        super().__init__()
        self.periodic = periodic
        self.kernel = kernel
        conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=0, bias=bias)
        self.conv: nn.Conv2d | NormalisedConv2d = NormalisedConv2d(conv) if normalise else conv

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
            assert bias is not None
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

    def __init__(self, n_fields: int, shape: tuple[int, int], periodic: tuple[bool, bool], config: ModelOptions | None = None, *, seed: int = 0) -> None:
        super().__init__()
        self.config = config = config or ModelOptions()
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

    def _build(self, n_fields: int, config: ModelOptions, periodic: tuple[bool, bool]) -> None:
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
        self.hidden_head: PaddedConv | None = None
        if config.head_channels:
            self.hidden_head = PaddedConv(head_in, config.head_channels, config.decoder_kernel, 1, periodic)
            self.output = PaddedConv(config.head_channels, n_fields, 1, 1, periodic)
        else:
            self.output = PaddedConv(head_in, n_fields, config.decoder_kernel, 1, periodic)
        coarse = tuple(n // factor for n in self.padded_shape)
        init = torch.randn(2, 1, config.lstm_channels, *coarse) if config.initial_state == "random" else torch.zeros(2, 1, config.lstm_channels, *coarse)
        if config.initial_state == "learned":
            self.initial_state = nn.Parameter(init)
        else:
            self.register_buffer("initial_state", init)
        with torch.no_grad():
            self.output_layer.weight.mul_(0.1)
            self.output_layer.bias.zero_()  # type: ignore[union-attr]

    @property
    def output_layer(self) -> nn.Conv2d:
        """The decoder's last convolution (a plain, not weight-normalised one)."""
        conv = self.output.conv
        assert isinstance(conv, nn.Conv2d)
        return conv

    def scale_output(self, factor: float) -> None:
        """Multiply the output layer's weights by ``factor`` (before training: a long time
        step needs a smaller initial update)."""
        with torch.no_grad():
            self.output_layer.weight.mul_(factor)

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
        weight = self.output_layer.weight
        n, centre = self.n_fields, self.config.decoder_kernel // 2
        with torch.no_grad():
            weight.zero_()
            for c in range(n):
                weight[c, weight.shape[1] - n + c, centre, centre] = gain / self.config.output_scale

    @staticmethod
    def automatic_shuffle_channels(n_fields: int, config: ModelOptions) -> int:
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

    def forward(
        self,
        u0: torch.Tensor,
        n_steps: int,
        dt: float,
        state: tuple[torch.Tensor, torch.Tensor] | None = None,
        constrain: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
        rhs: Callable[[int, torch.Tensor], torch.Tensor] | None = None,
        *,
        start: int = 0,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Roll out ``n_steps`` steps from ``u0`` ``(B, C, ny, nx)``, the state of step ``start``.

        Returns frames ``(n_steps + 1, B, C, ny, nx)`` (frame 0 is ``u0``) and the final LSTM
        state. ``constrain(k, u)``, if given, is applied to each new state ``u_k`` (e.g. to
        impose Dirichlet values) before it is fed back. ``rhs(k, u)`` gives the physics
        input at ``u_k`` for ``physics_input``. ``k`` counts from ``start``.
        """
        state = state if state is not None else self.initial_hidden(u0.shape[0])
        frames = [u0]
        u = u0
        for k in range(start + 1, start + n_steps + 1):
            u, state = self.step(u, state, dt, rhs(k - 1, u) if rhs is not None else None)
            if constrain is not None:
                u = constrain(k, u)
            frames.append(u)
        return torch.stack(frames), state
