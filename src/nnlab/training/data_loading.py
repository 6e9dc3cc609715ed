"""Turn what the user passes as ``train``/``val`` into batches, with clear errors at the boundary.

Accepted: an ``(X, y)`` pair of tensors or arrays (X: ``(n, ...)`` with n samples; y: ``(n,)`` or
``(n, k)``), a map-style ``torch.utils.data.Dataset`` yielding ``(x, y)`` pairs, or a ``DataLoader``.

Shuffling is seeded and deterministic: the order of epoch ``e`` is the one
``DistributedSampler(seed=seed)`` gives after ``set_epoch(e)`` (a permutation drawn from its own
``torch.Generator`` seeded with ``seed + e``). One process uses the same sampler with one replica,
so a run on N processes visits exactly the same *global* batches as a one-process run, and a resumed
run continues the same sequence. A user ``DataLoader`` is iterated as given in a single process
(its own sampler decides the order); under ``torch.distributed`` its dataset is re-sampled as above.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, IterableDataset, default_collate

from nnlab._validate import check_finite, check_xy

from .losses import LossSpec, check_labels

__all__ = ["Source", "as_source", "batches", "batch_slices"]


@dataclass
class Source:
    """A validated data source. ``X``/``y`` are set for in-memory tensors (kind ``"tensors"``)."""

    kind: str  # "tensors" | "dataset" | "loader"
    name: str
    n: int | None
    X: torch.Tensor | None = None
    y: torch.Tensor | None = None
    dataset: Any = None
    loader: DataLoader | None = None


def as_source(data: Any, name: str, spec: LossSpec, dtype: torch.dtype) -> Source:
    """Validate ``data`` (see module docstring); tensors are cast to the model's float ``dtype``."""
    if isinstance(data, DataLoader):
        n = _len_or_none(data.dataset)
        if n == 0:
            raise ValueError(f"{name} DataLoader has an empty dataset (0 samples)")
        return Source("loader", name, n, dataset=data.dataset, loader=data)
    if isinstance(data, Dataset):
        if isinstance(data, IterableDataset):
            raise TypeError(f"{name} is an IterableDataset; wrap it in a DataLoader yourself")
        n = _len_or_none(data)
        if n is None:
            raise TypeError(f"{name} Dataset has no __len__; wrap it in a DataLoader instead")
        if n == 0:
            raise ValueError(f"{name} Dataset is empty (0 samples)")
        return Source("dataset", name, n, dataset=data)
    if isinstance(data, (tuple, list)):
        if len(data) != 2:
            raise ValueError(f"{name} must be an (X, y) pair; got a {type(data).__name__} of length "
                             f"{len(data)}")
        X, y = check_xy(data[0], data[1], f"{name} X", f"{name} y")
        if X.ndim < 2:
            raise ValueError(f"{name} X must have shape (n_samples, n_features), got {tuple(X.shape)}; "
                             "for one feature use X.reshape(-1, 1)")
        X, y = _cast(X, y, spec, dtype, name)
        return Source("tensors", name, int(X.shape[0]), X=X, y=y)
    raise TypeError(f"{name} must be an (X, y) pair of tensors/arrays, a Dataset or a DataLoader; "
                    f"got {type(data).__name__}")


def _cast(X: torch.Tensor, y: torch.Tensor, spec: LossSpec, dtype: torch.dtype,
          name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if X.is_floating_point():
        X = X.to(dtype)  # integer inputs (e.g. token ids) are left as they are
    if spec.kind == "cross_entropy":
        if y.is_floating_point():
            raise TypeError(f"{name} y must hold integer class labels (int64) for "
                            f"loss='cross_entropy', got dtype {y.dtype}; convert with y.long()")
        y = y.to(torch.int64)
    elif spec.kind == "mse":
        y = y.to(dtype)
    return X, y


def _len_or_none(ds: Any) -> int | None:
    try:
        return len(ds)
    except TypeError:
        return None


def probe(src: Source, k: int = 2) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The first ``k`` samples as a batch (for shape checks), or None for an iterable dataset."""
    if src.kind == "tensors":
        return src.X[:k], src.y[:k]
    if src.n is None or isinstance(src.dataset, IterableDataset):
        return None
    collate = src.loader.collate_fn if src.loader is not None else default_collate
    batch = collate([src.dataset[i] for i in range(min(k, src.n))])
    return _as_pair(batch, src.name)


def _as_pair(batch: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError(f"{name} batches must be (x, y) pairs; got {type(batch).__name__}"
                         + (f" of length {len(batch)}" if isinstance(batch, (tuple, list)) else ""))
    return batch[0], batch[1]


def order(n: int, epoch: int, seed: int, shuffle: bool, rank: int = 0, world: int = 1) -> list[int]:
    """Sample indices this rank visits in ``epoch`` (see the module docstring)."""
    if not shuffle:
        return list(range(rank, n, world))  # held-out data: no padding, every sample once
    sampler = DistributedSampler(range(n), num_replicas=world, rank=rank, shuffle=True, seed=seed)
    sampler.set_epoch(epoch)
    return list(sampler)


def _order_tensor(n: int, epoch: int, seed: int, shuffle: bool, rank: int, world: int) -> torch.Tensor:
    """:func:`order` as an int64 tensor; one process draws the sampler's permutation directly
    (``DistributedSampler`` with one replica: ``randperm(n)`` from a generator seeded with
    ``seed + epoch``, no padding) instead of going through a Python list."""
    if shuffle and world == 1:
        return torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
    return torch.as_tensor(order(n, epoch, seed, shuffle, rank, world), dtype=torch.int64)


_CHUNK_BYTES = 1 << 20  # rows gathered at once by _tensor_batches (1 MiB: stays in cache)


def _tensor_batches(X: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, batch_size: int | None,
                    device: torch.device) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches ``X[idx[k*b:(k+1)*b]]`` in order. Rows are gathered (and moved to ``device``) a
    chunk of whole batches at a time, and each batch is a view of its chunk: one gather and one
    copy per ~1 MiB (whole batches) instead of two per batch; the values are exactly those of ``X[sel]``."""
    n = len(idx)
    b = max(n if batch_size is None else int(batch_size), 1)
    row_bytes = max((X[:1].numel() * X.element_size() + y[:1].numel() * y.element_size()), 1)
    per_chunk = max(1, _CHUNK_BYTES // (row_bytes * b)) * b
    for start in range(0, n, per_chunk):
        sel = idx[start:start + per_chunk]
        xs = X.index_select(0, sel).to(device).split(b)
        ys = y.index_select(0, sel).to(device).split(b)
        yield from zip(xs, ys)


def batch_slices(n: int, batch_size: int | None) -> list[slice]:
    """Consecutive slices ``[0:b], [b:2b], ...`` covering ``n`` rows (``None``: one slice of all).

    The one batching rule of nnlab: the trainer, the transfer helpers and pruning's Hessian and
    gradient passes all cut their data with it.
    """
    b = n if batch_size is None else int(batch_size)
    if b < 1 and n > 0:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return [slice(i, min(i + b, n)) for i in range(0, n, max(b, 1))]


def batches(src: Source, *, epoch: int, batch_size: int | None, seed: int, shuffle: bool,
            spec: LossSpec, dtype: torch.dtype, device: torch.device, rank: int = 0,
            world: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield this rank's ``(x, y)`` batches for one epoch, on ``device``.

    ``batch_size`` is the per-rank batch (``None``: all of this rank's samples at once).
    """
    if src.kind == "tensors":
        yield from _tensor_batches(src.X, src.y, _order_tensor(src.n, epoch, seed, shuffle, rank, world),
                                   batch_size, device)
        return
    if src.kind == "loader" and world == 1:
        loader: Any = src.loader
        if hasattr(loader.sampler, "set_epoch"):  # the user's own DistributedSampler
            loader.sampler.set_epoch(epoch)
    else:
        idx = order(src.n, epoch, seed, shuffle, rank, world)
        collate = src.loader.collate_fn if src.loader is not None else default_collate
        loader = DataLoader(src.dataset, batch_size=len(idx) if batch_size is None else batch_size,
                            sampler=idx, collate_fn=collate)
    for batch in loader:
        x, y = _as_pair(batch, src.name)
        x, y = torch.as_tensor(x), torch.as_tensor(y)
        check_finite(x, f"{src.name} x batch")
        check_finite(y, f"{src.name} y batch")
        x, y = _cast(x, y, spec, dtype, src.name)
        yield x.to(device), y.to(device)


def check_against_model(src: Source, model: torch.nn.Module, spec: LossSpec) -> None:
    """Run the model on a couple of samples (eval mode, no grad) and check y against the output."""
    from .losses import check_targets

    sample = probe(src)
    if sample is None:
        return
    x, y = sample
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    x, y = _cast(x, y, spec, _dtype_of(model), src.name)
    device = _device_of(model)
    was_training = [m.training for m in model.modules()]
    model.eval()
    try:
        with torch.no_grad():
            out = model(x.to(device))
    except RuntimeError as e:
        raise ValueError(f"the model cannot take {src.name} samples of shape {tuple(x.shape[1:])} "
                         f"(per sample): {e}") from e
    finally:
        for m, t in zip(model.modules(), was_training):
            m.training = t
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"the model must return a tensor, got {type(out).__name__}")
    check_targets(spec, out, y.to(device), f"{src.name} y")
    if spec.kind == "custom":  # a callable loss: it must give one number to step on
        try:
            with torch.no_grad():
                value = spec.fn(out, y.to(device))
        except (RuntimeError, IndexError) as e:
            raise ValueError(f"the loss {spec.name} fails on the model's output for {src.name} samples: "
                             f"{e}") from e
        if not isinstance(value, torch.Tensor) or value.numel() != 1:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise TypeError(f"the loss {spec.name}(output, y) must return a scalar tensor (e.g. its "
                            f"mean over the batch), got {shape}")
    if src.kind == "tensors" and spec.kind == "cross_entropy":
        check_labels(src.y, out.shape[1], f"{src.name} y")


def _dtype_of(model: torch.nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _device_of(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")
