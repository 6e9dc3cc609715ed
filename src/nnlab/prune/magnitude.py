"""Magnitude pruning (lecture §5.5): remove the weights with the smallest |a_i|.

The cheap stand-in for the Hessian criterion L_i = a_i²/[H⁻¹]_ii: with H ∝ I the saliency
is ∝ a_i². ``random`` is the control every criterion must beat.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn

from ._common import check_sparsity, prunable_layers
from .masks import prune_by_scores, weight_of

__all__ = ["magnitude", "random"]


def magnitude(model: nn.Module, sparsity: float, scope: str = "global",
              layers: Iterable[str] | None = None) -> nn.Module:
    """Mask the fraction ``sparsity`` of ``nn.Linear`` weights with the smallest ``|a_i|``, in place.

    Args:
        model: any module with ``nn.Linear`` layers (pruned already or not: scores use the
            effective, masked weights, so zeros stay zero).
        sparsity: fraction in [0, 1) of the weights to remove.
        scope: ``"global"`` (one threshold over all layers, like
            ``torch.nn.utils.prune.global_unstructured(..., L1Unstructured)``) or ``"layer"``
            (each layer loses the same fraction).
        layers: names of the ``nn.Linear`` modules to prune (default: all).

    Returns the same model, now with masks.
    """
    sparsity = check_sparsity(sparsity)
    scores = {n: weight_of(m).abs() for n, m in prunable_layers(model, layers)}
    return prune_by_scores(model, scores, sparsity, scope)


def random(model: nn.Module, sparsity: float, scope: str = "layer", seed: int = 0,
           layers: Iterable[str] | None = None) -> nn.Module:
    """Mask a random fraction ``sparsity`` of the weights (already-zero weights are removed first)."""
    sparsity = check_sparsity(sparsity)
    g = torch.Generator().manual_seed(seed)
    scores = {}
    for n, m in prunable_layers(model, layers):
        w = weight_of(m)
        scores[n] = (torch.rand(w.shape, generator=g) + 1.0).to(w.device) * (w != 0)
    return prune_by_scores(model, scores, sparsity, scope)
