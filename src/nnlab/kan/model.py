r"""``KAN``: stacked KAN layers, :math:`\mathrm{KAN}(x) = (\Phi_L \circ \dots \circ \Phi_1)(x)` (lecture §6.2).

The model only holds layers and composes them; regularisation
(:mod:`nnlab.kan.regularization`), pruning (:mod:`nnlab.kan.prune`), plotting
(:mod:`nnlab.kan.plot`) and files (:mod:`nnlab.kan.io`) are functions beside it, which the
methods below call.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from .layer import KANLayer

__all__ = ["KAN", "LayerTrace"]


@dataclass
class LayerTrace:
    """What one layer saw and did: ``input`` (batch, in), ``edges`` (batch, out, in), ``output``."""
    input: torch.Tensor
    edges: torch.Tensor
    output: torch.Tensor


class KAN(nn.Module):
    """A Kolmogorov–Arnold network.

    Args:
        width: node counts per layer, e.g. ``[2, 5, 1]`` (at least two entries).
        grid, k, grid_range, base, grid_eps, ...: passed to every :class:`KANLayer`
            (``grid`` may also be a list with one value per layer).
        seed: if given, the initial parameters come from ``torch.manual_seed(seed)`` in a
            forked RNG (the global RNG is left untouched).

    Example:
        >>> model = KAN([2, 5, 1], grid=5, k=3)
        >>> model(torch.rand(8, 2)).shape
        torch.Size([8, 1])
    """

    def __init__(self, width: Sequence[int] = (2, 5, 1), grid: int | Sequence[int] = 5, k: int = 3,
                 grid_range: tuple[float, float] = (-1.0, 1.0), base: str | None = "silu",
                 grid_eps: float = 0.02, seed: int | None = None, **layer_kwargs):
        super().__init__()
        if isinstance(width, tuple):
            width = list(width)
        if not isinstance(width, list) or len(width) < 2 or \
                any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in width):
            raise ValueError(f"width must be a list of >= 2 positive integers like [2, 5, 1], got {width!r}")
        grids = list(grid) if isinstance(grid, (list, tuple)) else [grid] * (len(width) - 1)
        if len(grids) != len(width) - 1:
            raise ValueError(f"grid lists one value per layer: {len(width) - 1} expected, got {len(grids)}")
        self.width = list(width)
        self.k = k
        self.base = base
        self.config = dict(width=list(width), grid=grids, k=k, grid_range=list(map(float, grid_range)),
                           base=base, grid_eps=grid_eps, **layer_kwargs)
        with torch.random.fork_rng(enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            self.layers = nn.ModuleList(
                KANLayer(a, b, grid=g, k=k, grid_range=grid_range, base=base, grid_eps=grid_eps,
                         **layer_kwargs)
                for a, b, g in zip(width[:-1], width[1:], grids))

    @property
    def grid(self) -> list[int]:
        """Grid intervals of each layer."""
        return [layer.grid for layer in self.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, width[0]) -> (batch, width[-1]). Pure: nothing is cached."""
        if isinstance(x, torch.Tensor) and (x.ndim != 2 or x.shape[1] != self.width[0]):
            raise ValueError(f"KAN input must be (batch, {self.width[0]}) (width[0]), "
                             f"got shape {tuple(x.shape)}")
        for layer in self.layers:
            x = layer(x)
        return x

    def trace(self, x: torch.Tensor) -> list[LayerTrace]:
        """Per-layer records of inputs, per-edge activations and outputs (for plots and analysis)."""
        out = []
        for layer in self.layers:
            edges = layer.edge_activations(x)
            y = edges.sum(-1)
            out.append(LayerTrace(x, edges, y))
            x = y
        return out

    def edge_scores(self, x: torch.Tensor) -> list[torch.Tensor]:
        r"""Edge importance per layer, (out, in): the KAN paper's L1 norm :math:`|\phi|_1 = \mathrm{mean}_s |\phi(x_s)|`."""
        with torch.no_grad():
            return [t.edges.abs().mean(0) for t in self.trace(x)]

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: float | None = None) -> "KAN":
        """Adapt every layer's grid to the inputs that reach it (function preserved on x). In place."""
        x = torch.as_tensor(x)
        for layer in self.layers:
            layer.update_grid(x, grid_eps)
            x = layer(x)
        return self

    @torch.no_grad()
    def extend_grid(self, new_grid: int) -> "KAN":
        """Refine every layer to ``new_grid`` intervals (function preserved); rebuild the optimizer."""
        for layer in self.layers:
            layer.extend_grid(new_grid)
        self.config["grid"] = self.grid
        return self

    def regularization(self, x: torch.Tensor, lamb_l1: float = 1.0, lamb_entropy: float = 2.0,
                       lamb_coef: float = 0.0, lamb_coefdiff: float = 0.0) -> torch.Tensor:
        """Sparsity penalty of the KAN paper (§2.5.1); see :func:`nnlab.kan.regularization.regularization`."""
        from .regularization import regularization
        return regularization(self, x, lamb_l1, lamb_entropy, lamb_coef, lamb_coefdiff)

    def prune(self, x: torch.Tensor, threshold: float = 1e-2) -> "KAN":
        """A smaller KAN without unimportant hidden nodes and edges; see :func:`nnlab.kan.prune.prune`."""
        from .prune import prune
        return prune(self, x, threshold)

    def save(self, path) -> None:
        """Write ``path/config.json`` and ``path/model.safetensors`` (atomically)."""
        from .io import save
        save(self, path)

    @classmethod
    def load(cls, path) -> "KAN":
        """Read a KAN written by :meth:`save`."""
        from .io import load
        return load(path)
