"""Snapshots of a run's trainable state, and their member-wise blending.

A snapshot is a deep copy of the task's module states and of Adam's state. With several
members trained as one batch, every parameter (and Adam moment) carries a leading member
dimension; :func:`blend` takes the members picked by a mask from one snapshot and the
rest from another, so each member keeps its own best state.
"""

from __future__ import annotations

import copy
from typing import Any

import torch


def blend(chosen: Any, other: Any, mask: torch.Tensor) -> Any:
    """``chosen`` where ``mask`` (members,) is true, ``other`` elsewhere, through nested
    dicts and lists. Tensors whose first dimension is the member count are blended row by
    row; everything else (counters, hyper-parameters) is taken from ``chosen``."""
    members = mask.numel()
    if members == 1:
        return chosen if bool(mask[0]) else other
    if isinstance(chosen, dict):
        return {k: blend(v, other[k], mask) if k in other else v for k, v in chosen.items()}
    if isinstance(chosen, (list, tuple)) and len(chosen) == len(other):
        return type(chosen)(blend(a, b, mask) for a, b in zip(chosen, other))
    if isinstance(chosen, torch.Tensor) and chosen.dim() >= 1 and chosen.shape[0] == members and chosen.shape == other.shape:
        shape = (members,) + (1,) * (chosen.dim() - 1)
        return torch.where(mask.to(chosen.device).view(shape), chosen, other)
    return chosen


def deep_copy(state: Any) -> Any:
    """A copy of ``state`` that later training steps cannot change."""
    return copy.deepcopy(state)
