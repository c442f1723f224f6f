"""Where and how reproducibly a run computes: device, CPU threads, seeds."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from phycrnet.errors import OptionsError


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else the CPU; ``cuda:N`` a given GPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise OptionsError(f"device: unknown device {name!r} (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OptionsError("device: CUDA was requested but no GPU is available")
    return device


def configure_threads(threads: int | None) -> None:
    """Use ``threads`` intra-op threads, or every CPU core when ``None``."""
    torch.set_num_threads(threads or max(1, os.cpu_count() or 1))


def seed_everything(seed: int) -> None:
    """Seed every generator; on CUDA also pick deterministic cuDNN kernels, so that a run
    and its resumed twin produce the same numbers (the kernels are a little slower)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def dtype_of(name: str) -> torch.dtype:
    """The torch dtype of the ``dtype`` option."""
    return torch.float64 if name == "float64" else torch.float32
