"""Symbolic edges of a KAN layer: the module set as ``layer.symbolic`` (lecture §6.3, steps 3–4).

Edge ``(o, i)`` that has been fixed to library function ``f`` computes
``φ_{o,i}(x_i) = c_{o,i}·f(a_{o,i}·x_i + b_{o,i}) + d_{o,i}`` with trainable ``a, b, c, d``;
the layer output adds ``Σ_i φ_{o,i}(x_i)`` over the symbolic edges. The KAN layer turns the
spline of those edges off (its ``mask`` entry is 0), so the edge is exactly the formula.
"""
from __future__ import annotations

from typing import Iterable

import sympy
import torch
from torch import nn

from .affine import AffineFit
from .library import LIBRARY, Library

__all__ = ["SymbolicEdges"]


class SymbolicEdges(nn.Module):
    """Per-edge library functions with trainable affine parameters for one KAN layer.

    Args:
        in_dim, out_dim: layer sizes. All edges start inactive (``φ = 0``).
        lib: the :class:`~nnlab.symbolic.library.Library` the names refer to.

    Shapes: ``forward`` (batch, in_dim) → (batch, out_dim);
    ``edge_activations`` (batch, in_dim) → (batch, out_dim, in_dim).
    """

    def __init__(self, in_dim: int, out_dim: int, lib: Library | None = None) -> None:
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise ValueError(f"in_dim and out_dim must be >= 1, got {in_dim}, {out_dim}")
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.lib = LIBRARY if lib is None else lib
        self.names: list[list[str | None]] = [[None] * self.in_dim for _ in range(self.out_dim)]
        self.a = nn.Parameter(torch.ones(out_dim, in_dim))
        self.b = nn.Parameter(torch.zeros(out_dim, in_dim))
        self.c = nn.Parameter(torch.zeros(out_dim, in_dim))
        self.d = nn.Parameter(torch.zeros(out_dim, in_dim))
        self.register_buffer("active", torch.zeros(out_dim, in_dim))

    def set_edge(self, o: int, i: int, name: str, fit: AffineFit | tuple[float, float, float, float]) -> None:
        """Fix edge (o, i) to ``c·name(a·x + b) + d``."""
        if name not in self.lib:
            raise ValueError(f"unknown library function {name!r}; valid names: {', '.join(self.lib)}")
        a, b, c, d = (fit.a, fit.b, fit.c, fit.d) if isinstance(fit, AffineFit) else fit
        with torch.no_grad():
            for p, v in zip((self.a, self.b, self.c, self.d), (a, b, c, d)):
                p[o, i] = float(v)
            self.active[o, i] = 1.0
        self.names[o][i] = name

    def clear_edge(self, o: int, i: int) -> None:
        """Make edge (o, i) inactive (its φ is 0 again)."""
        with torch.no_grad():
            self.active[o, i] = 0.0
        self.names[o][i] = None

    def used(self) -> Iterable[str]:
        return sorted({n for row in self.names for n in row if n is not None})

    def edge_activations(self, x: torch.Tensor) -> torch.Tensor:
        """φ_{o,i}(x_i) for every edge, (batch, out, in); 0 on inactive edges."""
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"expected input of shape (batch, {self.in_dim}), got {tuple(x.shape)}")
        pre = self.a * x[:, None, :] + self.b  # (batch, out, in)
        phi = torch.zeros_like(pre)
        for name in self.used():
            sel = torch.tensor([[n == name for n in row] for row in self.names], device=x.device)
            fx, _ = self.lib[name].safe(pre)
            phi = torch.where(sel, fx, phi)
        return (self.c * phi + self.d) * self.active

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Σ_i φ_{o,i}(x_i): (batch, in) → (batch, out)."""
        return self.edge_activations(x).sum(dim=2)

    def edge_sympy(self, o: int, i: int, x: sympy.Expr) -> sympy.Expr:
        """``c·f(a·x + b) + d`` of edge (o, i) as sympy (0 if inactive)."""
        name = self.names[o][i]
        if name is None or float(self.active[o, i]) == 0.0:
            return sympy.Integer(0)
        a, b, c, d = (sympy.Float(float(p.detach()[o, i])) for p in (self.a, self.b, self.c, self.d))
        return c * self.lib[name].sympy_fn(a * x + b) + d

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, symbolic_edges={int(self.active.sum())}"
