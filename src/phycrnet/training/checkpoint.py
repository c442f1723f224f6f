"""Checkpoints: written atomically (temporary file, then rename), read with one-line errors.

A checkpoint holds everything a run needs to continue where it stopped: the task's
modules, the optimiser of the current phase, the weighting scheme, the engine's counters
and best state, and the random-number states. ``key`` names what it belongs to (the
problem and the method); a checkpoint of another problem is refused.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from phycrnet.errors import DataError

#: Bumped whenever the layout of a checkpoint changes.
VERSION = 2


def save(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically: a reader sees the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({"version": VERSION, **state}, temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load(path: Path, key: str, device: torch.device) -> dict[str, Any]:
    """The checkpoint at ``path``, which must belong to ``key``."""
    try:
        state = torch.load(path, map_location=device, weights_only=False)
    except FileNotFoundError:
        raise DataError(f"--resume: no checkpoint at {path}") from None
    except Exception as exc:  # a truncated or foreign file
        raise DataError(f"--resume: {path} is not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("version") != VERSION:
        raise DataError(f"--resume: {path} was written by an incompatible version")
    if state.get("key") != key:
        raise DataError(f"--resume: {path} belongs to a different spec or method")
    return state


def random_states() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def restore_random_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"].cpu())
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def describe_mismatch(path: Path, exc: Exception) -> DataError:
    """The error for a checkpoint whose tensors do not fit this run's modules."""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DataError(f"--resume: {path} does not fit this run's network or weighting ({first})")
