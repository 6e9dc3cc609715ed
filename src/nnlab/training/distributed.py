"""Data-parallel training on ``torch.distributed`` (DistributedDataParallel).

``fit(..., distributed=None)`` turns this on when the variables ``torchrun`` sets say there is
more than one process (``WORLD_SIZE > 1``) or a process group of size > 1 is already initialised;
``distributed=True`` demands it, ``distributed=False`` forbids it. The process group is created
if needed (``gloo`` on CPU, ``nccl`` when CUDA is available, with ``cuda:LOCAL_RANK`` as device)
and destroyed at the end of ``fit`` only if ``fit`` created it.

Each step every rank computes the mean loss on its ``batch_size // world_size`` samples; DDP
averages the gradients, which equals the gradient of the mean loss over the global batch of
``batch_size`` samples, so N processes follow the same trajectory as one (up to float rounding).
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

__all__ = ["DistContext", "setup", "teardown", "all_reduce_sum", "broadcast_int"]


@dataclass
class DistContext:
    enabled: bool = False
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device | None = None
    created_group: bool = False

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_world() -> int:
    try:
        return int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        raise ValueError(f"WORLD_SIZE={os.environ['WORLD_SIZE']!r} is not an integer") from None


def setup(distributed: bool | None) -> DistContext:
    """Decide whether to run data-parallel, and initialise the process group if needed."""
    if distributed not in (None, True, False):
        raise TypeError(f"distributed must be None (auto-detect), True or False; got {distributed!r}")
    initialised = dist.is_available() and dist.is_initialized()
    world = dist.get_world_size() if initialised else _env_world()
    if distributed is False or (distributed is None and world <= 1):
        return DistContext()
    if not dist.is_available():
        raise RuntimeError("distributed=True but this torch build has no torch.distributed")
    created = False
    if not initialised:
        missing = [v for v in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if v not in os.environ]
        if missing:
            raise ValueError(f"distributed=True needs a process group: launch with torchrun (or set "
                             f"{', '.join(missing)}), or call torch.distributed.init_process_group first")
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
        created = True
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.get_backend() == "nccl":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    return DistContext(True, dist.get_rank(), dist.get_world_size(), local, device, created)


def teardown(ctx: DistContext, finished: bool = False) -> None:
    """Destroy the process group ``setup`` created (if it did), while the interpreter is alive.

    After a ``finished`` fit every rank first meets at a barrier: a rank that shut its gloo
    connections down while a peer was still inside the last collective could leave the peer's
    gloo threads to be torn down at interpreter exit, where they abort the process
    ("terminate called without an active exception"). Then a ``gc.collect()`` frees what a
    reference cycle still holds of the DDP wrapper (its reducer keeps the process group alive),
    so the group's threads end here, not during finalisation. After an error there is no barrier:
    the other ranks may never arrive.
    """
    if ctx.enabled and ctx.created_group and dist.is_initialized():
        try:
            if finished:
                dist.barrier()
        finally:
            gc.collect()
            dist.destroy_process_group()


def all_reduce_sum(values: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Sum a float64 vector over ranks (identity in one process)."""
    if not ctx.enabled:
        return values
    buf = values.to(ctx.device if dist.get_backend() == "nccl" else "cpu").clone()
    dist.all_reduce(buf, op=dist.ReduceOp.SUM)
    return buf.to(values.device)


def broadcast_int(value: int, ctx: DistContext) -> int:
    """Rank 0's ``value`` on every rank."""
    if not ctx.enabled:
        return value
    obj = [value]
    dist.broadcast_object_list(obj, src=0)
    return int(obj[0])
