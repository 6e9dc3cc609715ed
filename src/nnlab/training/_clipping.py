"""Gradient clipping, lecture §2.10 (the cure for exploding gradients).

Two pure rules on the gradients of a list of parameters; both act in place and return the
global norm ‖g‖ measured *before* clipping (useful for logging):

* global (``"norm"``):  if ‖g‖ > c then g ← c · g / ‖g‖, where ‖g‖ is one L2 norm over
  every gradient of every parameter together;
* local (``"value"``):  for every element, if |g_i| > c then g_i ← c · sign(g_i).

The ``blocks`` branch ships the same rules as ``nl.clip.global_norm_`` / ``nl.clip.value_``;
these keep the same semantics so the two can be unified (including: a non-finite ‖g‖ leaves the
gradients untouched under global clipping; the returned norm shows it).
"""
from __future__ import annotations

import math
from typing import Iterable

import torch

__all__ = ["global_norm", "clip_global_norm_", "clip_value_", "check_clip"]


def _grads(params: Iterable[torch.nn.Parameter]) -> list[torch.Tensor]:
    return [p.grad for p in params if p.grad is not None]


def global_norm(params: Iterable[torch.nn.Parameter]) -> torch.Tensor:
    """‖g‖: the L2 norm of all gradients concatenated (0-d tensor; 0 when there are none)."""
    grads = [g.detach() for g in _grads(params)]
    if not grads:
        return torch.zeros(())
    if hasattr(torch.nn.utils, "get_total_norm"):  # torch >= 2.6: one fused pass
        return torch.nn.utils.get_total_norm(grads, norm_type=2.0)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g, 2) for g in grads]), 2)


def clip_global_norm_(params: Iterable[torch.nn.Parameter], c: float) -> torch.Tensor:
    """Global clipping (§2.10): if ‖g‖ > c, g ← c·g/‖g‖. Returns ‖g‖ before clipping."""
    c = _check_threshold(c)
    params = list(params)
    norm = global_norm(params)
    if math.isfinite(float(norm)) and float(norm) > c:  # a non-finite norm leaves g untouched
        scale = c / float(norm)
        for g in _grads(params):
            g.detach().mul_(scale)
    return norm


def clip_value_(params: Iterable[torch.nn.Parameter], c: float) -> torch.Tensor:
    """Local clipping (§2.10): where |g_i| > c, g_i ← c·sign(g_i). Returns ‖g‖ before clipping."""
    c = _check_threshold(c)
    params = list(params)
    norm = global_norm(params)
    for g in _grads(params):
        g.detach().clamp_(-c, c)  # identical to c·sign(g_i) where |g_i| > c, g_i elsewhere
    return norm


def _check_threshold(c: float) -> float:
    try:
        c = float(c)
    except (TypeError, ValueError):
        raise TypeError(f"clipping threshold c must be a positive number, got {c!r}") from None
    if not (c > 0 and math.isfinite(c)):
        raise ValueError(f"clipping threshold c must be a positive finite number, got {c}")
    return c


def check_clip(clip: object) -> tuple[str, float] | None:
    """Validate ``fit``'s ``clip`` argument: None, ("norm", c) or ("value", c)."""
    if clip is None:
        return None
    if not isinstance(clip, (tuple, list)) or len(clip) != 2 or not isinstance(clip[0], str):
        raise TypeError(f"clip must be None, ('norm', c) or ('value', c); got {clip!r}")
    kind, c = clip
    if kind not in ("norm", "value"):
        raise ValueError(f"clip kind must be 'norm' (global, §2.10) or 'value' (per element); got {kind!r}")
    return kind, _check_threshold(c)


def apply_clip(params: Iterable[torch.nn.Parameter], clip: tuple[str, float] | None) -> torch.Tensor:
    """Apply a validated clip spec; return the pre-clip global norm (computed even without clipping)."""
    if clip is None:
        return global_norm(params)
    kind, c = clip
    return clip_global_norm_(params, c) if kind == "norm" else clip_value_(params, c)
