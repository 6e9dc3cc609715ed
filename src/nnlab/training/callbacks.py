"""Callbacks: hooks that ``fit`` calls at the start and end of each epoch and after each batch.

A callback is any object with some of ``on_fit_start(state)``, ``on_epoch_start(state)``,
``on_batch_end(state)``, ``on_epoch_end(state)`` and ``on_fit_end(state)``; a plain callable is
treated as ``on_epoch_end``. Each receives the same :class:`TrainState`; setting
``state.stop = True`` ends training after the current epoch. Ready-made callbacks (early
stopping, best checkpoints, TensorBoard, CSV) are in :mod:`nnlab.callbacks`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from .history import History

__all__ = ["TrainState", "resolve_callbacks", "wants_grad_norm", "call", "HOOKS"]

HOOKS = ("on_fit_start", "on_epoch_start", "on_batch_end", "on_epoch_end", "on_fit_end")


@dataclass
class TrainState:
    """What callbacks see. ``epoch`` is 1-based; ``model`` is the bare model (never the DDP
    wrapper); ``logs`` holds the epoch's metrics in ``on_epoch_end`` and ``{"epoch", "batch",
    "loss"}`` in ``on_batch_end``. Set ``stop = True`` to end training after this epoch.
    ``scheduler`` is the run's :class:`~nnlab.training.schedulers.Schedule` (or None);
    ``save_checkpoint(folder)`` writes a full, resumable checkpoint of the current epoch."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    history: History
    epoch: int = 0
    batch: int = 0
    logs: dict[str, Any] = field(default_factory=dict)
    stop: bool = False
    rank: int = 0
    world_size: int = 1
    scheduler: Any = None
    save_checkpoint: Callable[[Any], Any] | None = None


def resolve_callbacks(callbacks: Any) -> dict[str, list[Callable]]:
    if callbacks is None:
        callbacks = ()
    elif callable(callbacks) or any(hasattr(callbacks, h) for h in HOOKS):
        callbacks = (callbacks,)
    hooks: dict[str, list[Callable]] = {h: [] for h in HOOKS}
    for cb in callbacks:
        found = [h for h in HOOKS if callable(getattr(cb, h, None))]
        if found:
            for h in found:
                hooks[h].append(getattr(cb, h))
        elif callable(cb):
            hooks["on_epoch_end"].append(cb)
        else:
            raise TypeError(f"callback {cb!r} has none of {list(HOOKS)} and is not callable")
    return hooks


def wants_grad_norm(hooks: dict[str, list[Callable]]) -> bool:
    """Whether a callback object asks ``fit`` to record ‖g‖ (its attribute ``wants_grad_norm``)."""
    return any(getattr(getattr(fn, "__self__", None), "wants_grad_norm", False) is True
               for fns in hooks.values() for fn in fns)


def call(hooks: dict[str, list[Callable]], name: str, state: TrainState) -> None:
    for fn in hooks[name]:
        fn(state)
