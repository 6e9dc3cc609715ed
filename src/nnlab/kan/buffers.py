"""Reused scratch tensors for the native CPU layer (:mod:`nnlab.kan.cpu_layer`).

The features + GEMM route writes a feature matrix ``F`` and, in backward, ``∂L/∂F``: each
(batch, (K+1)·in) values, megabytes at ordinary sizes. A fresh allocation of that size comes
from the C library as new pages (``mmap``, or the heap top that ``free`` has just trimmed),
and the first write to every 4 KiB page is a page fault: at (1024, 64→64, G=5) about 190
faults per training step, a quarter of the step's time on a virtual machine. Here such
buffers are kept per thread and handed out again once nothing uses them any more.

Each buffer is handed out as one view tensor and tracked by a weak reference to it: the buffer
is free again when that view has died, i.e. when every holder has dropped it (autograd drops
tensors it saved once backward has run without ``retain_graph``, or when the graph is freed).
A caller must therefore keep only that view (or temporaries of it that die before it) and hand
no derived view out. At most :data:`MAX_BUFFERS` buffers and :data:`MAX_BYTES` bytes are kept
per thread; buffers below :data:`MIN_BYTES` (cheap to allocate) are never kept.
"""
from __future__ import annotations

import math
import threading
import weakref

import torch

__all__ = ["take", "clear", "held_bytes"]

#: at most this many buffers kept per thread (in use or free)
MAX_BUFFERS = 4
#: at most this many bytes kept per thread; a larger request is allocated and not kept
MAX_BYTES = 64 << 20
#: requests below this size are plain allocations (small ones come from the allocator's free
#: lists without page faults)
MIN_BYTES = 256 << 10


class _Local(threading.local):
    def __init__(self):
        self.entries: list[list] = []  # [flat buffer, weakref to the view handed out or None]


_local = _Local()


def take(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised contiguous CPU tensor of ``shape`` and ``dtype``: a free kept buffer
    when one of that size exists, else a new one (kept if the limits allow)."""
    numel = math.prod(shape)
    nbytes = numel * dtype.itemsize
    if nbytes < MIN_BYTES or nbytes > MAX_BYTES:
        return torch.empty(shape, dtype=dtype)
    entries = _local.entries
    for n, e in enumerate(entries):
        buf, ref = e
        if buf.numel() == numel and buf.dtype == dtype and (ref is None or ref() is None):
            v = buf.view(shape)
            e[1] = weakref.ref(v)
            entries.append(entries.pop(n))  # most recently used last
            return v
    buf = torch.empty(numel, dtype=dtype)
    v = buf.view(shape)
    entries.append([buf, weakref.ref(v)])
    held = held_bytes()
    while entries and (len(entries) > MAX_BUFFERS or held > MAX_BYTES):
        old = entries.pop(0)  # stop tracking the least recently used (its holder keeps it)
        held -= old[0].numel() * old[0].element_size()
    return v


def clear() -> None:
    """Forget this thread's kept buffers (those in use live on with their holders)."""
    _local.entries.clear()


def held_bytes() -> int:
    """Bytes of the buffers this thread keeps (in use or free)."""
    return sum(b.numel() * b.element_size() for b, _ in _local.entries)
