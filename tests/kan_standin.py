"""A tiny stand-in for ``nnlab.kan`` (issue 3's contract) used ONLY by the symbolic tests while the
KAN branch is not merged: piecewise-linear (hat) splines + silu base, ``mask``, the ``symbolic``
hook, ``edge_activations``, ``update_grid``. Installed into ``sys.modules`` only if the real
``nnlab.kan`` cannot provide ``KAN``.
"""
from __future__ import annotations

import sys
import types

import torch
import torch.nn.functional as F
from torch import nn


class KANLayer(nn.Module):
    def __init__(self, in_dim, out_dim, grid=5, k=3, grid_range=(-1, 1), base="silu"):
        super().__init__()
        self.in_dim, self.out_dim, self.grid = in_dim, out_dim, grid
        self.register_buffer("lo", torch.full((in_dim,), float(grid_range[0])))
        self.register_buffer("hi", torch.full((in_dim,), float(grid_range[1])))
        self.coef = nn.Parameter(0.1 * torch.randn(out_dim, in_dim, grid + 1))
        self.scale_base = nn.Parameter(torch.ones(out_dim, in_dim) / in_dim ** 0.5)
        self.scale_spline = nn.Parameter(torch.ones(out_dim, in_dim))
        self.register_buffer("mask", torch.ones(out_dim, in_dim))
        self.symbolic = None

    def _basis(self, x):  # (batch, in, grid+1) hat functions
        t = (x - self.lo) / (self.hi - self.lo) * self.grid
        j = torch.arange(self.grid + 1, dtype=x.dtype)
        return torch.clamp(1 - (t[..., None] - j).abs(), min=0)

    def _spline_edges(self, x):
        phi = self.scale_base * F.silu(x)[:, None, :] + self.scale_spline * torch.einsum(
            "bij,oij->boi", self._basis(x), self.coef)
        return phi * self.mask

    def edge_activations(self, x):
        e = self._spline_edges(x)
        return e if self.symbolic is None else e + self.symbolic.edge_activations(x)

    def forward(self, x):
        return self.edge_activations(x).sum(2)

    @torch.no_grad()
    def update_grid(self, x):
        target = self._spline_edges(x) - self.scale_base * F.silu(x)[:, None, :] * self.mask
        self.lo.copy_(x.min(0).values - 1e-3)
        self.hi.copy_(x.max(0).values + 1e-3)
        B = self._basis(x)  # (batch, in, G+1)
        for i in range(self.in_dim):
            sol = torch.linalg.lstsq(B[:, i, :], target[:, :, i] / self.scale_spline[:, i].clamp_min(1e-8)).solution
            self.coef[:, i, :] = sol.T


class KAN(nn.Module):
    def __init__(self, width=(2, 5, 1), grid=5, k=3, grid_range=(-1, 1), base="silu", seed=None):
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        self.width = list(width)
        self.layers = nn.ModuleList(KANLayer(a, b, grid, k, grid_range, base) for a, b in zip(width[:-1], width[1:]))

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    @torch.no_grad()
    def update_grid(self, x):
        for layer in self.layers:
            layer.update_grid(x)
            x = layer(x)


def install() -> None:
    """Provide ``nnlab.kan`` with this stand-in if the real one lacks ``KAN``."""
    try:
        from nnlab.kan import KAN as _  # noqa: F401
        return
    except ImportError:
        pass
    mod = types.ModuleType("nnlab.kan")
    mod.KAN, mod.KANLayer = KAN, KANLayer
    sys.modules["nnlab.kan"] = mod
