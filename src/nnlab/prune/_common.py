"""Shared plumbing of the pruning methods: argument checks, losses, data, the prunable layers."""
from __future__ import annotations

import copy
from typing import Any, Callable, Iterable

import torch
from torch import nn

from .._validate import as_tensor, check_finite
from ..training.data_loading import batch_slices

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

def check_sparsity(sparsity: Any, name: str = "sparsity") -> float:
    """A fraction of weights to remove: a real number in [0, 1)."""
    if isinstance(sparsity, bool) or not isinstance(sparsity, (int, float)):
        raise TypeError(f"{name} must be a number in [0, 1), got {type(sparsity).__name__}")
    s = float(sparsity)
    if not 0.0 <= s < 1.0:
        raise ValueError(f"{name} must be in [0, 1) (the fraction of weights to remove), got {sparsity}")
    return s


def check_max_samples(max_samples: Any) -> int | None:
    """How many calibration rows to use: None (all) or an integer >= 1."""
    if max_samples is None:
        return None
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ValueError(f"max_samples must be an integer >= 1 (calibration rows) or None (all), "
                         f"got {max_samples!r}")
    return max_samples


def check_targets_for(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: str | LossFn,
                      name: str = "data") -> None:
    """The trainer's check of ``y`` against the model's output for ``loss`` (integer labels in
    range for cross-entropy, matching shapes for MSE), so that a bad ``y`` is one clear error
    rather than a failure deep inside a Hessian estimator."""
    from ..training.data_loading import Source, check_against_model
    from ..training.losses import get_loss

    check_against_model(Source("tensors", name, int(X.shape[0]), X=X, y=y), model, get_loss(loss))


def resolve_loss(loss: str | LossFn) -> LossFn:
    """``"cross_entropy"``, ``"mse"`` or a callable ``(output, y) -> scalar`` (mean over the batch)."""
    from ..training.losses import get_loss

    return get_loss(loss).fn


def prunable_layers(model: nn.Module, layers: Iterable[str] | None = None) -> list[tuple[str, nn.Module]]:
    """The ``nn.Linear`` modules of ``model`` in forward-definition order, as ``(name, module)``.

    ``layers`` restricts the list to the given module names; unknown names are an error.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    found = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if layers is not None:
        wanted = list(layers)
        names = {n for n, _ in found}
        missing = [n for n in wanted if n not in names]
        if missing:
            raise ValueError(f"layers {missing} are not nn.Linear modules of the model; "
                             f"prunable layers are {sorted(names)}")
        found = [(n, m) for n, m in found if n in set(wanted)]
    if not found:
        raise ValueError(f"{type(model).__name__} has no prunable layers (no nn.Linear modules); "
                         "pruning here works on nn.Linear weights")
    return found


def first_linear(model: nn.Module) -> nn.Linear | None:
    for m in model.modules():
        if isinstance(m, nn.Linear):
            return m
    return None


def as_xy(data: Any, model: nn.Module | None = None, name: str = "data") -> tuple[torch.Tensor, torch.Tensor]:
    """Read ``(X, y)`` tensors/arrays, a Dataset or a DataLoader into two tensors and check them.

    X must be 2-D with as many columns as the model's first ``nn.Linear`` expects.
    """
    if isinstance(data, torch.utils.data.DataLoader):
        xs, ys = zip(*[(b[0], b[1]) for b in data])
        X, y = torch.cat(list(xs)), torch.cat(list(ys))
    elif isinstance(data, torch.utils.data.Dataset):
        xs, ys = zip(*[data[i] for i in range(len(data))])  # type: ignore[arg-type]
        X, y = torch.stack([as_tensor(x) for x in xs]), torch.stack([as_tensor(t) for t in ys])
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        X, y = as_tensor(data[0], f"{name} X"), as_tensor(data[1], f"{name} y")
    else:
        raise TypeError(f"{name} must be an (X, y) pair, a Dataset or a DataLoader, got {type(data).__name__}")
    check_finite(X, f"{name} X")
    if X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{name} X must be a non-empty 2-D (n_samples, n_features) array, got shape {tuple(X.shape)}")
    if y.ndim == 0 or y.shape[0] != X.shape[0]:
        raise ValueError(f"{name} X has {X.shape[0]} rows but y has {0 if y.ndim == 0 else y.shape[0]}; they must match")
    if not X.is_floating_point():
        X = X.float()
    if model is not None:
        lin = first_linear(model)
        if lin is not None and X.shape[1] != lin.in_features:
            raise ValueError(f"{name} X has {X.shape[1]} columns but the model's first nn.Linear expects "
                             f"{lin.in_features} inputs")
        p = next(iter(model.parameters()), None)
        if p is not None:
            X = X.to(device=p.device, dtype=p.dtype)
            y = y.to(p.device)
    return X, y


def batches(n: int, batch_size: int) -> list[slice]:
    """Slices of ``n`` rows in batches (nnlab's one batching rule, shared with the trainer)."""
    return batch_slices(n, batch_size)


def dense_copy(model: nn.Module) -> nn.Module:
    """A deep copy whose masked weights are plain parameters again (zeros where pruned)."""
    from .masks import finalize

    return finalize(copy.deepcopy(model))


def forward_with_hooks(model: nn.Module, X: torch.Tensor, handles: Iterable[Any]) -> None:
    """One forward pass of ``model`` on ``X`` in eval mode without autograd, for the hooks whose
    ``handles`` are given (removed afterwards); the model's train/eval mode is restored."""
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(X)
    finally:
        for h in handles:
            h.remove()
        model.train(was)
