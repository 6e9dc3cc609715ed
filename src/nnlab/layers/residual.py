"""Residual connection (lecture §4.2, ResNet 2016): H(x) = F(x) + x.

If F changes the width, x is mapped by a learned projection: H(x) = F(x) + P(x), usually
``P = nn.Linear(n_in, n_out, bias=False)``. Gradients flow straight through the identity path:
∂H/∂x = ∂F/∂x + I, so a deep stack of residual blocks does not make them vanish.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["Residual"]


class Residual(nn.Module):
    """H(x) = block(x) + x, or block(x) + projection(x) when ``projection`` is given.

    Attributes ``.block`` and ``.projection`` (None for the identity shortcut).
    """

    def __init__(self, block: nn.Module, projection: nn.Module | None = None) -> None:
        super().__init__()
        if not isinstance(block, nn.Module):
            raise TypeError(f"block must be an nn.Module, got {type(block).__name__}")
        if projection is not None and not isinstance(projection, nn.Module):
            raise TypeError(f"projection must be an nn.Module or None, got {type(projection).__name__}")
        self.block = block
        self.projection = projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fx = self.block(x)
        shortcut = x if self.projection is None else self.projection(x)
        if fx.shape != shortcut.shape:
            fix = (f"; pass projection=nn.Linear({x.shape[-1]}, {fx.shape[-1]}, bias=False)"
                   if self.projection is None else "")
            raise ValueError(f"Residual: block output has shape {tuple(fx.shape)} but the shortcut "
                             f"has {tuple(shortcut.shape)}{fix}")
        return fx + shortcut
