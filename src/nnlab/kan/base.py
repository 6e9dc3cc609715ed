"""The base (residual) branch b(x) of a KAN edge: any ``nl.activation`` name, or None.

Lecture §6.2: :math:`\\phi(x) = \\alpha\\,\\mathrm{silu}(x) + \\beta\\,\\mathrm{spline}(x)`. SiLU is built in;
other names are looked up in ``nnlab.activations`` (function and analytic derivative), so the
fused backward never needs autograd for the base branch.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["resolve_base"]

Fn = Callable[[torch.Tensor], torch.Tensor]


def _silu_derivative(x: torch.Tensor) -> torch.Tensor:
    # d/dx x·σ(x) = σ(x)·(1 + x·(1 − σ(x)))
    s = torch.sigmoid(x)
    return s * (1 + x * (1 - s))


def _zero(x: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(x)


def resolve_base(name: str | None) -> tuple[Fn, Fn]:
    """Return ``(b, b')`` for a base-function name; ``None`` means no base branch (b = 0)."""
    if name is None:
        return _zero, _zero
    if not isinstance(name, str):
        raise TypeError(f"base must be an activation name (str) or None, got {type(name).__name__}")
    if name == "silu":
        return F.silu, _silu_derivative
    try:
        from nnlab import activations  # provided by the foundation (issue 2)
    except ImportError:
        raise ValueError(f"base={name!r} needs nnlab.activations, which this install lacks; "
                         "use base='silu' or base=None") from None
    spec = activations.get(name)  # ValueError listing valid names for unknown ones

    def fn(x: torch.Tensor) -> torch.Tensor:
        return spec.fn(x)

    def dfn(x: torch.Tensor) -> torch.Tensor:
        return spec.derivative(x)

    return fn, dfn
