"""Gradient clipping (lecture §2.10), against exploding gradients.

* global (by norm):  if ‖g‖ > c then g ← c · g / ‖g‖, with ‖g‖ one L2 norm over ALL gradients;
* local (by value):  if |g_i| > c then g_i ← c · sign(g_i), elementwise.

The pure functions :func:`clip_by_global_norm` and :func:`clip_by_value` take and return lists of
tensors; :func:`global_norm_` and :func:`value_` apply them in place to the ``.grad`` of parameters
(as ``torch.nn.utils.clip_grad_norm_``/``clip_grad_value_`` do) and return the global L2 norm of
the gradients *before* clipping. Parameters without a gradient are skipped. If that norm is not
finite the gradients are left untouched (scaling by c/inf would zero or NaN them); check the
returned norm to detect it.
"""
from __future__ import annotations

import math
from typing import Iterable

import torch

__all__ = ["global_norm", "clip_by_global_norm", "clip_by_value", "global_norm_", "value_"]


def _check_c(c: float) -> float:
    if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or c <= 0:
        raise ValueError(f"clipping threshold c must be a positive finite number, got {c!r}")
    return float(c)


def global_norm(grads: list[torch.Tensor]) -> torch.Tensor:
    """‖g‖ = sqrt(Σ_tensors Σ_i g_i²), one L2 norm over all tensors (0-d tensor)."""
    if not grads:
        return torch.tensor(0.0)
    if len({(g.dtype, g.device) for g in grads}) == 1:  # one fused kernel over all tensors
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g).to(grads[0]) for g in grads]))


def clip_by_global_norm(grads: list[torch.Tensor], c: float) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Pure: (g · c/‖g‖ if ‖g‖ > c else g, ‖g‖) (§2.10, global clipping)."""
    c = _check_c(c)
    norm = global_norm(grads)
    if not bool(torch.isfinite(norm)) or float(norm) <= c:
        return list(grads), norm
    scale = c / norm
    return [g * scale.to(g.dtype) for g in grads], norm


def clip_by_value(grads: list[torch.Tensor], c: float) -> list[torch.Tensor]:
    """Pure: g_i ← c · sign(g_i) where |g_i| > c, else g_i (§2.10, local clipping)."""
    c = _check_c(c)
    return [torch.where(g.abs() > c, c * torch.sign(g), g) for g in grads]


def _grads(params: Iterable[torch.Tensor] | torch.Tensor) -> list[torch.Tensor]:
    if isinstance(params, torch.Tensor):
        params = [params]
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"params must be a tensor or an iterable of tensors (e.g. "
                        f"model.parameters()), got {type(params).__name__}") from None
    for p in params:
        if not isinstance(p, torch.Tensor):
            raise TypeError(f"params must hold tensors, found {type(p).__name__}")
    return [p.grad for p in params if p.grad is not None]


def global_norm_(params: Iterable[torch.Tensor] | torch.Tensor, c: float) -> torch.Tensor:
    """In place on ``p.grad``: global-norm clipping to ‖g‖ <= c. Returns ‖g‖ before clipping."""
    grads = _grads(params)
    new, norm = clip_by_global_norm(grads, c)
    with torch.no_grad():
        for g, n in zip(grads, new):
            if n is not g:
                g.copy_(n)
    return norm


def value_(params: Iterable[torch.Tensor] | torch.Tensor, c: float) -> torch.Tensor:
    """In place on ``p.grad``: clip every component to [-c, c]. Returns ‖g‖ before clipping."""
    grads = _grads(params)
    norm = global_norm(grads)
    new = clip_by_value(grads, c)
    with torch.no_grad():
        for g, n in zip(grads, new):
            g.copy_(n)
    return norm
