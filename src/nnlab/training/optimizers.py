"""Optimisers by name, or the user's own instance (its parameter groups are kept as they are).

* ``"adam"``: ``torch.optim.Adam(params, lr)``;
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
from typing import Iterable

import torch

__all__ = ["make_optimizer", "names", "is_lbfgs"]

_NAMES = ("adam", "sgd", "lbfgs")


def names() -> list[str]:
    return list(_NAMES)


def make_optimizer(optimizer: object, model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    """Resolve ``fit``'s ``optimizer`` argument for ``model``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(optimizer, torch.optim.Optimizer):
        _check_owned(optimizer, model)
        return optimizer
    if not params:
        raise ValueError("the model has no trainable parameters (all have requires_grad=False)")
    if isinstance(optimizer, type) and issubclass(optimizer, torch.optim.Optimizer):
        return optimizer(params, lr=_check_lr(lr))
    if isinstance(optimizer, str):
        lr = _check_lr(lr)
        if optimizer == "adam":
            return torch.optim.Adam(params, lr=lr)
        if optimizer == "sgd":
            return torch.optim.SGD(params, lr=lr)
        if optimizer == "lbfgs":
            return torch.optim.LBFGS(params, lr=lr, line_search_fn="strong_wolfe")
        raise ValueError(f"unknown optimizer {optimizer!r}; expected one of {names()} "
                         "or a torch.optim.Optimizer instance")
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
