"""Where the knots go: grids adapted to data (KAN paper §2.4) and refined grids (grid extension).

Pure functions on tensors; :class:`~nnlab.kan.KANLayer` calls them and refits its coefficients
with :func:`nnlab.kan.spline.fit_coefficients` so the layer's function is preserved.
"""
from __future__ import annotations

import torch

from .spline import extend_knots

__all__ = ["adaptive_knots", "refined_knots"]


def adaptive_knots(x: torch.Tensor, grid: int, k: int, grid_eps: float = 0.02) -> torch.Tensor:
    """Extended knots (in, G+2k+1) placed on the samples ``x`` (batch, in).

    Grid points = ``grid_eps``·(uniform on [min, max]) + (1 − ``grid_eps``)·(the G+1 evenly spaced
    order statistics of each input), then ``k`` knots added each side. A constant input gets the
    uniform grid [v − 1, v + 1]; repeated values are spread so that knots strictly increase.
    """
    xs = torch.sort(x.detach().double(), dim=0).values  # (batch, in)
    n = xs.shape[0]
    ranks = torch.linspace(0, n - 1, grid + 1, dtype=torch.float64).round().long()
    adaptive = xs[ranks].t()  # (in, G+1)
    lo, hi = adaptive[:, :1], adaptive[:, -1:]
    flat = (hi - lo) <= 1e-12 * (1 + lo.abs())
    lo = torch.where(flat, lo - 1, lo)
    hi = torch.where(flat, hi + 1, hi)
    steps = torch.linspace(0, 1, grid + 1, dtype=torch.float64)
    uniform = lo + (hi - lo) * steps
    adaptive = torch.where(flat, uniform, adaptive)
    points = grid_eps * uniform + (1 - grid_eps) * adaptive
    # ties (discrete data, grid_eps = 0): keep at least 1e-3 of a uniform step between points
    min_gap = 1e-3 * (hi - lo) / grid
    gaps = torch.clamp(points[:, 1:] - points[:, :-1], min=0) 
    gaps = torch.maximum(gaps, min_gap)
    points = torch.cat([points[:, :1], points[:, :1] + torch.cumsum(gaps, 1)], 1)
    scale = (hi - lo) / (points[:, -1:] - points[:, :1])
    points = lo + (points - points[:, :1]) * scale
    return extend_knots(points, k).to(x.dtype)


def refined_knots(knots: torch.Tensor, k: int, new_grid: int,
                  samples_per_interval: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample the grid points of ``knots`` (in, G+2k+1) to ``new_grid`` intervals.

    New grid point ``q`` sits at fractional old index ``q·G/new_grid`` (linear interpolation of
    the old grid points), so an integer refinement keeps every old knot. Returns the new extended
    knots (in, new_grid+2k+1) and sample points (n, in) spread over the grid range, on which the
    old spline is to be refit.
    """
    pts = knots[:, k:knots.shape[1] - k].double()  # (in, G+1)
    G = pts.shape[1] - 1
    pos = torch.arange(new_grid + 1, dtype=torch.float64) * (G / new_grid)
    left = pos.floor().long().clamp(max=G - 1)
    frac = pos - left
    new_pts = pts[:, left] * (1 - frac) + pts[:, left + 1] * frac
    new = extend_knots(new_pts, k)
    # samples: evenly inside every interval of both the old and the new grid
    n_int = max(new_grid, G) * samples_per_interval
    t = (torch.arange(n_int, dtype=torch.float64) + 0.5) / n_int * G
    li = t.floor().long().clamp(max=G - 1)
    xs = pts[:, li] * (1 - (t - li)) + pts[:, li + 1] * (t - li)  # (in, n)
    return new.to(knots.dtype), xs.t().contiguous().to(knots.dtype)
