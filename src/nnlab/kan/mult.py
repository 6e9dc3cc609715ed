r"""``MultKAN``: a KAN whose hidden layers also have multiplication nodes (KAN 2.0, Liu et al. 2024).

A KAN node sums its edges, :math:`x_{l+1,o} = \sum_i \phi_{l,o,i}(x_{l,i})` (lecture §6.2), so a
product of two signed factors such as :math:`3\sin(x_1)\,x_2^2` needs many nodes and is never
exact (the log trick fails where a factor crosses zero). A multiplication node takes two sums and
multiplies them:

.. math::  x_{l+1} = [\,s_1, \dots, s_{a},\; s_{a+1} s_{a+2},\; \dots,\; s_{a+2m-1} s_{a+2m}\,]

with :math:`s = \Phi_l(x_l)` the KAN layer's sums, :math:`a` addition and :math:`m`
multiplication nodes; the layer underneath has :math:`a + 2m` outputs. ``MultKAN([2, 1, 1],
mult=[1])`` computes :math:`\phi_{1}\big(\phi_{0,0}(x_1)+\phi_{0,1}(x_2)\big)\cdot\ldots` and
represents :math:`3\sin(x_1)x_2^2` exactly (edges sin, x², then 3x). Every §6.3 step goes through
the same tools: ``trace`` (hence matching and the regulariser) gives each layer its real inputs,
and :func:`nnlab.symbolic.formula` multiplies the nodes via :meth:`MultKAN.combine_sympy`.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from .layer import KANLayer
from .model import KAN, LayerTrace

__all__ = ["MultKAN", "multiply_nodes"]


def multiply_nodes(s: torch.Tensor, n_mult: int) -> torch.Tensor:
    """(batch, a + 2m) sums → (batch, a + m) nodes: the last ``2m`` sums multiplied in pairs."""
    if n_mult == 0:
        return s
    a = s.shape[1] - 2 * n_mult
    pairs = s[:, a:].reshape(s.shape[0], n_mult, 2)
    return torch.cat([s[:, :a], pairs[..., 0] * pairs[..., 1]], dim=1)


class MultKAN(KAN):
    """A KAN with ``mult[l]`` multiplication nodes among the ``width[l + 1]`` nodes of hidden layer ``l + 1``.

    Args:
        width: nodes per layer after multiplication, e.g. ``[2, 1, 1]``.
        mult: multiplication nodes per hidden layer (one int per hidden layer, or one int for all);
            they are the last ``mult[l]`` nodes of that layer. The output layer only sums.
        grid, k, grid_range, base, grid_eps, seed, ...: as for :class:`KAN`.

    Example:
        >>> model = MultKAN([2, 1, 1], mult=1)
        >>> model(torch.rand(8, 2)).shape
        torch.Size([8, 1])
    """

    def __init__(self, width: Sequence[int] = (2, 1, 1), mult: int | Sequence[int] = 1, grid: int = 5, k: int = 3,
                 grid_range: tuple[float, float] = (-1.0, 1.0), base: str | None = "silu", grid_eps: float = 0.02,
                 seed: int | None = None, **layer_kwargs: Any) -> None:
        width = list(width)
        super().__init__(width, grid, k, grid_range, base, grid_eps, seed, **layer_kwargs)  # validates width
        hidden = len(width) - 2
        mults = [int(mult)] * hidden if isinstance(mult, int) else [int(m) for m in mult]
        if len(mults) != hidden:
            raise ValueError(f"mult lists one count per hidden layer: {hidden} expected, got {len(mults)}")
        for l, m in enumerate(mults):
            if not 0 <= m <= width[l + 1]:
                raise ValueError(f"mult[{l}] = {m} must be between 0 and width[{l + 1}] = {width[l + 1]}")
        self.mult = mults + [0]
        self.config["mult"] = list(mults)
        grids = self.config["grid"]
        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.layers = nn.ModuleList(
                KANLayer(a, b + m, grid=g, k=k, grid_range=grid_range, base=base, grid_eps=grid_eps, **layer_kwargs)
                for a, b, m, g in zip(width[:-1], width[1:], self.mult, grids))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, width[0]) -> (batch, width[-1]). Pure: nothing is cached."""
        if isinstance(x, torch.Tensor) and (x.ndim != 2 or x.shape[1] != self.width[0]):
            raise ValueError(f"MultKAN input must be (batch, {self.width[0]}) (width[0]), got shape {tuple(x.shape)}")
        for layer, m in zip(self.layers, self.mult):
            x = multiply_nodes(layer(x), m)
        return x

    def trace(self, x: torch.Tensor) -> list[LayerTrace]:
        """Per layer: its input, its edges (batch, a + 2m, in) and its nodes after multiplication."""
        out = []
        for layer, m in zip(self.layers, self.mult):
            edges = layer.edge_activations(x)
            y = multiply_nodes(edges.sum(-1), m)
            out.append(LayerTrace(x, edges, y))
            x = y
        return out

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: float | None = None) -> "MultKAN":
        """Adapt every layer's grid to the inputs that reach it (function preserved on x). In place."""
        x = torch.as_tensor(x)
        for layer, m in zip(self.layers, self.mult):
            layer.update_grid(x, grid_eps)
            x = multiply_nodes(layer(x), m)
        return self

    def combine_sympy(self, layer: int, sums: list[Any]) -> list[Any]:
        """The sympy version of :func:`multiply_nodes` for layer ``layer`` (used by ``formula``)."""
        m = self.mult[layer]
        if m == 0:
            return sums
        a = len(sums) - 2 * m
        return sums[:a] + [sums[a + 2 * q] * sums[a + 2 * q + 1] for q in range(m)]

    def prune(self, x: torch.Tensor, threshold: float = 1e-2) -> "MultKAN":
        raise NotImplementedError("pruning a MultKAN is not supported yet: prune() would drop the pairing "
                                  "of multiplication nodes; prune the additive KAN instead")
