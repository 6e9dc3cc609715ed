"""Optimal Brain Damage (LeCun, Denker & Solla, 1989; lecture §5.5).

With a diagonal Hessian, the loss increase from setting weight a_i to 0 is the OBD saliency

    s_i = a_i² · H_ii / 2,

the diagonal special case of the lecture's L_i = a_i² / [H⁻¹]_ii (for diagonal H,
1/[H⁻¹]_ii = H_ii). The weights with the smallest s_i are removed.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from ._common import LossFn, as_xy, check_max_samples, check_sparsity, check_targets_for, prunable_layers
from .hessian import ESTIMATORS, diagonal
from .masks import prune_by_scores, weight_of

__all__ = ["obd", "obd_saliency"]


def obd_saliency(weight: torch.Tensor, h_diag: torch.Tensor) -> torch.Tensor:
    """s_i = a_i² · H_ii / 2 (same shape as ``weight``)."""
    if weight.shape != h_diag.shape:
        raise ValueError(f"Hessian diagonal shape {tuple(h_diag.shape)} != weight shape {tuple(weight.shape)}")
    return weight.pow(2) * h_diag / 2


def obd(model: nn.Module, data: Any, loss: str | LossFn = "cross_entropy", sparsity: float = 0.5,
        hessian: str = "gauss_newton", scope: str = "global", layers: Iterable[str] | None = None,
        max_samples: int | None = 1024, **hessian_kwargs: Any) -> nn.Module:
    """Prune the weights with the smallest OBD saliency a_i²·H_ii/2, in place; returns the model.

    Args:
        data: ``(X, y)`` (or a Dataset / DataLoader) to estimate the Hessian on; X is
            (n_samples, in_features). At most ``max_samples`` rows are used.
        loss: ``"cross_entropy"``, ``"mse"`` or ``callable(output, y) -> scalar`` (mean).
        hessian: ``"exact"`` | ``"gauss_newton"`` | ``"fisher"`` | ``"hutchinson"`` (see
            :mod:`nnlab.prune.hessian`; extra keyword arguments go to the estimator).
        scope: ``"global"`` or ``"layer"``, as in :func:`magnitude`.
    """
    sparsity = check_sparsity(sparsity)
    if hessian not in ESTIMATORS:
        raise ValueError(f"unknown hessian {hessian!r}; use one of {sorted(ESTIMATORS)}")
    max_samples = check_max_samples(max_samples)
    mods = prunable_layers(model, layers)
    X, y = as_xy(data, model)
    check_targets_for(model, X, y, loss)
    if max_samples is not None:
        X, y = X[:max_samples], y[:max_samples]
    h = diagonal(model, X, y, loss, hessian, [n for n, _ in mods], **hessian_kwargs)
    scores = {n: obd_saliency(weight_of(m), h[n]) for n, m in mods}
    # already removed weights stay removed: they score below every live weight
    floor = min(float(s.min()) for s in scores.values()) - 1.0
    scores = {n: torch.where(weight_of(m) == 0, torch.full_like(s, floor), s)
              for (n, m), s in zip(mods, scores.values())}
    return prune_by_scores(model, scores, sparsity, scope)
