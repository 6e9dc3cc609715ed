"""``fit``'s ``clip`` argument: validation and dispatch to the two rules of :mod:`nnlab.clip`
(lecture §2.10: global g ← c·g/‖g‖ when ‖g‖ > c; local g_i ← c·sign(g_i) when |g_i| > c)."""
from __future__ import annotations

import math
from typing import Iterable

import torch

from nnlab import clip as _clip

__all__ = ["check_clip", "apply_clip"]


def _check_threshold(c: object) -> float:
    try:
        c = float(c)  # type: ignore[arg-type]
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
    params = list(params)
    if clip is None:
        return _clip.global_norm([p.grad for p in params if p.grad is not None])
    kind, c = clip
    return _clip.global_norm_(params, c) if kind == "norm" else _clip.value_(params, c)
