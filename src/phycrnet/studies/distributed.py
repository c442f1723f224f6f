"""A sweep on several processes: torchrun's environment, the process group, and what each
process computes on.

``torchrun --nproc_per_node=N -m phycrnet sweep ...`` starts N copies of the command with
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` set (its own rendezvous also spans nodes, so
nothing here is node-specific). Each copy takes the work units whose index modulo the
world size is its rank: round robin by index, the same on every rank without a message.
The ranks meet at barriers only (after the references, and at the end), so the group
carries no data. Without torchrun (no ``WORLD_SIZE``, or ``WORLD_SIZE=1``) everything runs
in this process and no group is formed.

* Backend: nccl when the process computes on a GPU, one GPU per local rank
  (``cuda:LOCAL_RANK``), else gloo.
* Threads: the requested count, else the CPU cores shared evenly among the processes
  (``max(1, cpu_count // world_size)``), so that N processes on one machine do not
  oversubscribe it.
* Barriers wait up to :data:`BARRIER_TIMEOUT`. A rank that is done early waits at the
  final barrier for the slowest rank, which can take hours; torch's default timeout would
  end the sweep first. A rank that fails makes torchrun stop the others, so no rank waits
  for a dead one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType

import torch
import torch.distributed as dist

from phycrnet.errors import OptionsError

#: How long a rank waits at a barrier for the others.
BARRIER_TIMEOUT = timedelta(days=7)


@dataclass(frozen=True)
class World:
    """This process's place among the sweep's processes (rank 0 of 1 without torchrun)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> World:
        """The world torchrun describes in ``env`` (default: ``os.environ``), or an
        already initialised process group's."""
        env = os.environ if env is None else env
        local_rank = _env_int(env, "LOCAL_RANK", 0)
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), local_rank)
        size = _env_int(env, "WORLD_SIZE", 1)
        if size <= 1:
            return cls()
        if "RANK" not in env:
            raise OptionsError("torchrun environment: WORLD_SIZE is set but RANK is not")
        rank = _env_int(env, "RANK", 0)
        if not 0 <= rank < size:
            raise OptionsError(f"torchrun environment: RANK={rank} is outside 0..{size - 1}")
        return cls(rank, size, local_rank)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def owns(self, index: int) -> bool:
        """Whether work unit ``index`` is this rank's (round robin by index)."""
        return index % self.size == self.rank

    def threads(self, requested: int | None) -> int:
        """Torch threads of this process: ``requested``, else an even share of the cores."""
        return requested or max(1, (os.cpu_count() or 1) // self.size)

    def device(self, requested: str | None) -> str | None:
        """The device of this rank: ``cuda:LOCAL_RANK`` when several processes share the
        GPUs of a node and none was pinned; otherwise ``requested`` (``None``: the spec's)."""
        if self.distributed and torch.cuda.is_available() and requested in (None, "auto", "cuda"):
            count = torch.cuda.device_count()
            if self.local_rank >= count:
                raise OptionsError(f"torchrun: local rank {self.local_rank} has no GPU of its own (this node has {count}); use --nproc_per_node={count} or --device cpu")
            return f"cuda:{self.local_rank}"
        return requested

    @property
    def prefix(self) -> str:
        """What this rank's lines start with (nothing in a single process)."""
        return f"[rank {self.rank}] " if self.distributed else ""


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise OptionsError(f"torchrun environment: {name}={raw!r} is not an integer") from None


class ProcessGroup:
    """The torch.distributed group of a sweep, as a context manager.

    It joins the group torchrun describes (``env://``) unless the caller already did (then
    it leaves the group to the caller) and destroys what it created on exit. In a single
    process it does nothing.
    """

    def __init__(self, world: World, device: str | None) -> None:
        self.world = world
        self.backend = "nccl" if device is not None and device.startswith("cuda") else "gloo"
        self.device = device
        self.created = False

    def __enter__(self) -> ProcessGroup:
        if not self.world.distributed or dist.is_initialized():
            return self
        if not dist.is_available():
            raise OptionsError("torchrun: this torch build has no torch.distributed")
        if self.backend == "nccl":
            torch.cuda.set_device(torch.device(self.device or "cuda"))
        try:
            dist.init_process_group(self.backend, timeout=BARRIER_TIMEOUT)
        except (RuntimeError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise OptionsError(f"torchrun: cannot join the process group ({first})") from None
        self.created = True
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.created:
            dist.destroy_process_group()
            self.created = False

    def barrier(self) -> None:
        """Wait until every rank gets here (nothing to wait for in a single process)."""
        if not self.world.distributed:
            return
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Use ``count`` intra-op threads inside the block; restore the previous count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
