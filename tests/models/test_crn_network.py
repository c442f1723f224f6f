"""The PhyCRNet network itself (phycrnet.models.crn): decoder width per field and the
physics input, on tiny networks without training (training: tests/methods/test_solve.py)."""

from __future__ import annotations

import pytest
import torch

from phycrnet.models.crn import PhyCRNet
from phycrnet.options import ModelOptions


def test_automatic_decoder_width_gives_each_field_of_a_system_its_own_channels(tiny_model):
    config = ModelOptions(**tiny_model)  # 64 LSTM channels, upscale 8: one channel
    single = PhyCRNet(1, (16, 16), (True, True), config)
    assert single.project is None  # the paper's decoder, unchanged for one field
    for n_fields in (2, 3):
        system = PhyCRNet(n_fields, (16, 16), (True, True), config)
        assert system.project is not None and system.project.out_channels == 4 * n_fields * config.upscale**2
        u = torch.zeros(1, n_fields, 16, 16)
        frames, _ = system(u, 2, 0.1, rhs=lambda k, state: torch.zeros_like(state))
        assert frames.shape == (3, 1, n_fields, 16, 16)


def test_physics_input_network_needs_and_uses_the_right_hand_side(tiny_model):
    """With ``physics_input`` the step depends on F(u) (so it fails loudly without it);
    without, F cannot reach the network."""
    u = torch.rand(1, 1, 16, 16)
    network = PhyCRNet(1, (16, 16), (True, True), ModelOptions(**tiny_model))
    with pytest.raises(ValueError, match="right-hand side"):
        network(u, 1, 0.1)

    def step(value: float) -> torch.Tensor:
        with torch.no_grad():
            return network(u, 1, 0.1, rhs=lambda k, state: torch.full_like(state, value))[0]

    assert not torch.allclose(step(0.0), step(1.0))
    plain = PhyCRNet(1, (16, 16), (True, True), ModelOptions(**{**tiny_model, "physics_input": False}))
    with torch.no_grad():
        first, _ = plain(u, 1, 0.1, rhs=lambda k, state: torch.zeros_like(state))
        second, _ = plain(u, 1, 0.1)
    assert torch.equal(first, second)
