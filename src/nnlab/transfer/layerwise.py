"""Greedy layer-wise training (lecture §5.4).

1. Train f₁ (with a temporary head on top).
2. Freeze f₁, add f₂ (its input is f₁'s output), train f₂ with a new temporary head.
3. And so on; the last stage's head is the network's output layer. Optionally fine-tune the
   whole stack end to end afterwards.

The network is an ``nl.MLP(sizes, ...)``: its hidden blocks are the f_k, its last Linear the head.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .freeze import ParamCount, count_parameters, freeze, hold_batchnorm, unfreeze

__all__ = ["layerwise_fit", "LayerwiseResult", "Stage"]


@dataclass
class Stage:
    """One stage: which blocks exist (``depth`` hidden blocks), what trained, and the History."""

    depth: int
    params: ParamCount
    history: Any


@dataclass
class LayerwiseResult:
    """The trained ``nl.MLP``, one :class:`Stage` per block and the end-to-end History (or None)."""

    model: nn.Module
    stages: list[Stage] = field(default_factory=list)
    finetune_history: Any = None


def layerwise_fit(sizes: list[int], train: Any, val: Any = None, *, stage_epochs: int = 5,
                  finetune_epochs: int = 0, lr: float = 1e-3, finetune_lr: float | None = None,
                  loss: Any = "cross_entropy", optimizer: str = "adam", batch_size: int = 64,
                  seed: int | None = 0, progress: bool = False,
                  mlp_kwargs: dict[str, Any] | None = None, **fit_kwargs: Any) -> LayerwiseResult:
    """Build ``nl.MLP(sizes, **mlp_kwargs)`` and train it one hidden block at a time (§5.4).

    Stage k (k = 1 .. len(sizes)-2) trains block f_k plus a temporary head
    ``nn.Linear(sizes[k], sizes[-1])`` on top of the frozen f₁..f_{k-1}; the temporary head is then
    dropped. The last stage's head is the MLP's own output layer, so after the last stage the
    whole MLP has been trained. With ``finetune_epochs > 0`` everything is then unfrozen and trained
    end to end at ``finetune_lr`` (default ``lr / 10``).

    Args:
        sizes: layer widths ``[n_in, h₁, ..., n_out]``; at least two entries.
        train, val: data as ``nl.fit`` takes it.
        stage_epochs: epochs per stage (int, or a list with one entry per stage).
        seed: seeds the MLP's initialisation and the shuffling (stage k uses ``seed + k``).
        mlp_kwargs: extra ``nl.MLP`` arguments (activation, init, batchnorm, residual, dropout).
        loss, optimizer, lr, batch_size, progress, **fit_kwargs: passed to ``nl.fit``.

    Returns:
        :class:`LayerwiseResult` (``.model`` is the MLP, all its parameters trainable at the end).
    """
    import nnlab as nl
    from nnlab.training import fit

    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"sizes must list at least [n_in, n_out], got {sizes!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) or s <= 0 for s in sizes):
        raise ValueError(f"sizes must be positive ints, got {list(sizes)}")
    n_stages = max(len(sizes) - 2, 1)
    epochs = [stage_epochs] * n_stages if isinstance(stage_epochs, int) else list(stage_epochs)
    if len(epochs) != n_stages or any(isinstance(e, bool) or not isinstance(e, int) or e <= 0
                                      for e in epochs):
        raise ValueError(f"stage_epochs must be a positive int or {n_stages} positive ints (one per "
                         f"hidden block), got {stage_epochs!r}")
    if isinstance(finetune_epochs, bool) or not isinstance(finetune_epochs, int) or finetune_epochs < 0:
        raise ValueError(f"finetune_epochs must be a non-negative int, got {finetune_epochs!r}")
    if seed is not None:
        torch.manual_seed(seed)
    mlp = nl.MLP(list(sizes), **(mlp_kwargs or {}))
    blocks = list(mlp)
    result = LayerwiseResult(mlp)
    common = dict(loss=loss, optimizer=optimizer, lr=lr, batch_size=batch_size,
                  progress=progress, **fit_kwargs)
    for k in range(1, n_stages + 1):
        last = k == n_stages
        if len(sizes) == 2:
            head, body = blocks[-1], []
        else:
            body = blocks[:k]
            head = blocks[-1] if last else nn.Linear(sizes[k], sizes[-1])
        stage_model = nn.Sequential(*body, head)
        freeze(stage_model)
        unfreeze([head] + body[-1:])
        counts = count_parameters(stage_model)
        stage_seed = None if seed is None else seed + k
        with hold_batchnorm(nn.Sequential(*body[:-1])):  # frozen blocks keep their statistics
            hist = fit(stage_model, train, val, epochs=epochs[k - 1], seed=stage_seed, **common)
        result.stages.append(Stage(k, counts, hist))
    unfreeze(mlp)
    if finetune_epochs:
        ft = dict(common, lr=finetune_lr if finetune_lr is not None else lr / 10)
        ft_seed = None if seed is None else seed + n_stages + 1
        result.finetune_history = fit(mlp, train, val, epochs=finetune_epochs, seed=ft_seed, **ft)
    return result
