"""Memory of a computation graph: how much autograd stores, and peak memory of a process.

Gradient checkpointing trades recomputation for memory: a rollout of ``S`` steps stores
every step's activations for the backward pass; recomputed in segments of ``k`` steps it
stores one segment's at a time (plus the state at each segment's start).
:func:`saved_bytes` measures what one call stores, so the segment length can be chosen
from a memory budget instead of guessed.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Callable
from typing import Any

import torch

#: Share of the memory budget one recomputed segment (of the rollout, or of the residual)
#: may take: the rest is left to what is stored whole (the frames, their gradient, the
#: state at each segment's start).
SEGMENT_SHARE = 0.5


def saved_bytes(function: Callable[[], Any]) -> int:
    """Bytes of the tensors autograd saves while ``function()`` runs (each storage once)."""
    seen: set[int] = set()
    total = 0

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        nonlocal total
        storage = tensor.untyped_storage()
        key = storage.data_ptr()
        if key not in seen:
            seen.add(key)
            total += storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        function()
    return total


def segment_length(per_step_bytes: int, steps: int, budget_gb: float | None) -> int | None:
    """Steps per checkpointed segment so that one segment's activations take at most
    :data:`SEGMENT_SHARE` of ``budget_gb``; ``None`` where every step fits (no
    checkpointing needed) or no budget is set."""
    if budget_gb is None or per_step_bytes <= 0:
        return None
    allowed = SEGMENT_SHARE * budget_gb * 1e9
    if per_step_bytes * steps <= allowed:
        return None
    return max(1, int(allowed // per_step_bytes))


def peak_memory_gb(device: torch.device) -> float:
    """Peak memory of this process so far: the CUDA allocator's peak on a GPU, the peak
    resident set size on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1e9
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e9 if sys.platform == "darwin" else peak * 1024 / 1e9
