"""Optimisers by name, or the user's own instance (its parameter groups are kept as they are).

One :func:`make_optimizer` serves ``nl.fit``, fine-tuning (:mod:`nnlab.transfer`, parameter groups
with their own learning rates) and pruning's fine-tuning steps.

* ``"adam"``: ``torch.optim.Adam(params, lr)``; ``"adamw"``: ``torch.optim.AdamW(params, lr)``;
* ``"sgd"``: plain gradient descent θ ← θ − lr·∇L (pass ``torch.optim.SGD(..., momentum=0.9)``
  for momentum);
* ``"lbfgs"``: ``torch.optim.LBFGS(params, lr, line_search_fn="strong_wolfe")``. ``fit`` calls
  ``step(closure)`` once per batch, so ``batch_size=None`` (one batch: the whole training set)
  gives classic full-batch L-BFGS; smaller batches give a stochastic variant. With the strong-Wolfe
  line search, ``lr`` is only the first trial step (``lr=1`` is the usual choice).
* a ``torch.optim.Optimizer`` instance built on the model's parameters (``lr`` is ignored), or an
  Optimizer subclass such as ``torch.optim.AdamW`` (built as ``cls(params, lr=lr)``).
"""
from __future__ import annotations

import math
from typing import Any, Iterable

import torch

__all__ = ["make_optimizer", "names", "is_lbfgs"]

_NAMES = ("adam", "sgd", "lbfgs", "adamw")
_CLASSES = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD,
            "lbfgs": torch.optim.LBFGS}


def names() -> list[str]:
    return list(_NAMES)


def make_optimizer(optimizer: object, model: Any, lr: float | None = None,
                   **kwargs: Any) -> torch.optim.Optimizer:
    """Resolve an ``optimizer`` argument (a name, a class or an instance) for ``model``.

    Args:
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"``, ``"lbfgs"``, an Optimizer subclass, or an
            instance already built on ``model``'s parameters (returned as it is).
        model: an ``nn.Module`` (its trainable parameters), or parameter groups
            ``[{"params": [...], "lr": ...}, ...]`` whose own learning rates are kept.
        lr: the learning rate (for groups: the default of groups without one).
        kwargs: passed to the optimizer's constructor (e.g. ``momentum=0.9``).
    """
    if isinstance(optimizer, torch.optim.Optimizer):
        if isinstance(model, torch.nn.Module):
            _check_owned(optimizer, model)
        return optimizer
    if isinstance(model, torch.nn.Module):
        params: Any = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
        lr = _check_lr(lr)
    else:
        params = [g for g in model if not isinstance(g, dict) or g.get("params")]
        if not params:
            raise ValueError("no parameters to optimise (empty parameter groups)")
        if lr is not None:
            lr = _check_lr(lr)
        elif not all(isinstance(g, dict) and "lr" in g for g in params):
            raise ValueError("lr is required unless every parameter group sets its own 'lr'")
    opts = dict(kwargs)
    if lr is not None:
        opts["lr"] = lr
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer(params, **opts)
    if isinstance(optimizer, str):
        cls = _CLASSES.get(optimizer.lower())
        if cls is None:
            raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {names()} "
                             "or a torch.optim.Optimizer instance")
        if cls is torch.optim.LBFGS:
            opts.setdefault("line_search_fn", "strong_wolfe")
        return cls(params, **opts)
    raise TypeError(f"optimizer must be one of {names()}, a torch.optim.Optimizer instance or "
                    f"subclass; got {type(optimizer).__name__}")


def is_lbfgs(optimizer: torch.optim.Optimizer) -> bool:
    """Optimisers whose ``step`` needs a closure that re-evaluates the loss."""
    return isinstance(optimizer, torch.optim.LBFGS)


def _check_lr(lr: float) -> float:
    if isinstance(lr, bool) or not isinstance(lr, (int, float)):
        raise TypeError(f"lr must be a positive number, got {lr!r}")
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a finite number > 0, got {lr}")
    return float(lr)


def _check_owned(optimizer: torch.optim.Optimizer, model: torch.nn.Module) -> None:
    owned = {id(p) for p in model.parameters()}
    foreign = sum(1 for g in optimizer.param_groups for p in g["params"] if id(p) not in owned)
    if foreign:
        raise ValueError(f"the optimizer holds {foreign} parameter(s) that are not the model's; "
                         "build it on model.parameters() of the model you pass to fit")


def param_list(optimizer: torch.optim.Optimizer) -> Iterable[torch.nn.Parameter]:
    """Every parameter the optimiser updates, in group order."""
    return [p for g in optimizer.param_groups for p in g["params"]]
