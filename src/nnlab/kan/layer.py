r"""``KANLayer``: one Kolmogorov–Arnold layer (lecture §6.2).

Every edge ``i -> o`` carries a learnable 1-D function and nodes sum:

.. math::
   \phi_{o,i}(x) = w^b_{o,i}\, b(x) + w^s_{o,i} \sum_j c_{o,i,j} B_j(x), \qquad
   y_o = \sum_i m_{o,i}\, \phi_{o,i}(x_i)

(``b`` = silu by default, ``B_j`` order-``k`` B-splines on ``G`` grid intervals, ``m`` the 0/1 edge
mask). The forward pass is the fused kernel of :mod:`nnlab.kan.kernel`; per-edge values are only
built by :meth:`KANLayer.edge_activations`.

**Outside the grid.** Splines are zero outside the extended knots and only partially covered
between the grid range and the extended knots; the base branch ``w^b b(x)`` still acts everywhere.
The first time a layer sees inputs outside its grid range it warns (:class:`GridRangeWarning`);
call :meth:`KANLayer.update_grid` (or ``KAN.update_grid``) with representative inputs to move the
grid onto the data.
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from . import grid as _grid
from . import spline
from .base import resolve_base
from . import cpu_layer, gpu_layer
from .kernel import kan_forward, knot_cached

__all__ = ["KANLayer", "GridRangeWarning"]


class GridRangeWarning(UserWarning):
    """Inputs fell outside a KAN layer's grid range (splines are zero / partial there)."""


def _check_int(name: str, v, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v!r}")
    return v


class KANLayer(nn.Module):
    r"""A KAN layer mapping (batch, in_dim) -> (batch, out_dim).

    Args:
        in_dim, out_dim: numbers of input and output nodes.
        grid: number of grid intervals ``G`` (>= 1). k: spline order (>= 1; 3 = cubic).
        grid_range: ``(lo, hi)`` of the initial uniform grid (same for every input).
        base: name of the base function ``b`` (any ``nl.activation`` name; ``None`` = no base).
        grid_eps: in :meth:`update_grid`, weight of the uniform grid vs. sample percentiles
            (1 = uniform, 0 = percentiles; the KAN paper uses 0.02).
        noise_scale: initial spline coefficients are uniform in ``±noise_scale / (2G)``.
        scale_base_mu, scale_base_sigma: ``w^b`` starts at ``mu + sigma·U(-1, 1)/sqrt(in_dim)``.
        scale_spline: ``w^s`` starts at ``scale_spline / sqrt(in_dim)``.
        fast: use the fused custom-backward kernel (default). ``False`` runs a plain autograd
            path (slower, more memory) that supports double backward.
        recompute: in the fused kernel, rebuild the basis in backward instead of keeping it
            (least memory: nothing but ``x`` is stored; costs one more basis evaluation).

    Attributes:
        coef (out, in, G+k) parameter; scale_base, scale_spline (out, in) parameters;
        mask (out, in) buffer of 0/1; knots (in, G+2k+1) buffer; symbolic: optional module
        (see the symbolic hook in :meth:`forward`).
    """

    def __init__(self, in_dim: int, out_dim: int, grid: int = 5, k: int = 3,
                 grid_range: tuple[float, float] = (-1.0, 1.0), base: str | None = "silu",
                 grid_eps: float = 0.02, noise_scale: float = 0.5, scale_base_mu: float = 0.0,
                 scale_base_sigma: float = 1.0, scale_spline: float = 1.0, fast: bool = True,
                 recompute: bool = False):
        super().__init__()
        self.in_dim = _check_int("in_dim", in_dim, 1)
        self.out_dim = _check_int("out_dim", out_dim, 1)
        _check_int("grid", grid, 1)
        self.k = _check_int("k", k, 1)
        lo, hi = (float(v) for v in grid_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ValueError(f"grid_range must be finite with lo < hi, got {tuple(grid_range)}")
        if not 0.0 <= grid_eps <= 1.0:
            raise ValueError(f"grid_eps must be in [0, 1], got {grid_eps}")
        resolve_base(base)  # validates the name
        self.base = base
        self.grid_eps = float(grid_eps)
        self.fast = bool(fast)
        self.recompute = bool(recompute)
        knots = spline.uniform_knots(lo, hi, grid, k).expand(in_dim, -1).contiguous()
        self.register_buffer("knots", knots)
        self.register_buffer("mask", torch.ones(out_dim, in_dim))
        nb = grid + k
        self.coef = nn.Parameter((torch.rand(out_dim, in_dim, nb) - 0.5) * noise_scale / grid)
        self.scale_base = nn.Parameter(
            scale_base_mu + scale_base_sigma * (torch.rand(out_dim, in_dim) * 2 - 1) / math.sqrt(in_dim))
        self.scale_spline = nn.Parameter(torch.full((out_dim, in_dim), scale_spline / math.sqrt(in_dim)))
        self.symbolic: nn.Module | None = None
        self._uniform = True
        self._warned_range = False
        #: None: check the grid range without host syncs on CUDA only; True/False: force it
        self._defer_checks: bool | None = None
        self._pending_range = None
        self.register_load_state_dict_post_hook(_after_load)

    # ----------------------------------------------------------------- properties
    @property
    def grid(self) -> int:
        """Number of grid intervals G."""
        return self.knots.shape[1] - 2 * self.k - 1

    @property
    def grid_range(self) -> torch.Tensor:
        """(in, 2): the [lo, hi] of each input's grid (knots k and G+k)."""
        return torch.stack([self.knots[:, self.k], self.knots[:, -self.k - 1]], 1)

    def extra_repr(self) -> str:
        return (f"in_dim={self.in_dim}, out_dim={self.out_dim}, grid={self.grid}, k={self.k}, "
                f"base={self.base!r}")

    # ----------------------------------------------------------------- forward
    def _grid_bounds(self, knots: torch.Tensor):
        """Per-input grid range with slack (a, b) and the range common to all inputs."""
        k = self.k
        ends = knots[:, [k, -k - 1]]
        slack = 1e-6 * (ends[:, 1] - ends[:, 0])  # rounding of knots placed on the data itself
        a, b = ends[:, 0] - slack, ends[:, 1] + slack
        if a.device.type != "cpu":  # the common range needs the host: the deferred check skips it
            return a, b, None
        return a, b, torch.stack([a.max(), b.min()]).tolist()

    def _check_input(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"KANLayer expects a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"KANLayer input must be (batch, {self.in_dim}), got shape {tuple(x.shape)}")
        if x.dtype != self.coef.dtype:  # ints, and floats of another precision than the layer's
            x = x.to(self.coef.dtype)  # (the kernels read x and the weights as one dtype)
        if x.shape[0] == 0:
            raise ValueError("KANLayer input is empty (0 rows)")
        xd = x.detach()
        defer = getattr(self, "_defer_checks", None)  # (modules pickled before it existed)
        if defer if defer is not None else x.device.type == "cuda":
            self._range_check_deferred(xd)
            return x
        lo, hi = torch.stack(torch.aminmax(xd)).tolist()  # one pass over x, one sync
        if not (math.isfinite(lo) and math.isfinite(hi)):
            raise ValueError("KANLayer input contains NaN/inf; clean or drop those rows first")
        flags = [True, False]
        if not self._warned_range:
            a, b, inner = knot_cached(self.knots, ("range", self.k), self._grid_bounds)
            if lo < inner[0] or hi > inner[1]:  # maybe outside: check input by input
                clo, chi = torch.aminmax(xd, dim=0)
                flags[1] = bool(((clo < a) | (chi > b)).any())
        if flags[1]:
            self._warn_outside(lo, hi)
        return x

    def _warn_outside(self, lo: float, hi: float, stacklevel: int = 4) -> None:
        """Warn (once per layer) that inputs in [lo, hi] fall outside the grid range."""
        self._warned_range = True
        warnings.warn(
            f"KANLayer({self.in_dim}->{self.out_dim}): inputs fall outside the grid range "
            f"(seen [{lo:.3g}, {hi:.3g}]); splines are zero beyond "
            "the extended knots and only the base branch acts there. Call "
            "update_grid(x) with representative inputs (warned once per layer).",
            GridRangeWarning, stacklevel=stacklevel)

    def _range_check_deferred(self, xd: torch.Tensor) -> None:
        """The grid-range check without a host synchronisation (CUDA): the flag is computed on
        the device and copied to pinned host memory asynchronously; a later call reads it once
        its event has completed and warns then. Skipped while a CUDA graph is being captured.
        NaN/inf inputs are not checked here (that needs the host): they propagate to the output.
        """
        if self._warned_range:
            return
        cuda = xd.device.type == "cuda"
        if cuda and torch.cuda.is_current_stream_capturing():
            return
        pending = getattr(self, "_pending_range", None)
        if pending is not None:
            flag, event = pending
            if event is not None and not event.query():
                return  # still in flight: one check at a time
            self._pending_range = None
            if bool(flag):
                self._warned_range = True
                warnings.warn(
                    f"KANLayer({self.in_dim}->{self.out_dim}): inputs fall outside the grid range "
                    "(seen on an earlier batch); splines are zero beyond the extended knots and only "
                    "the base branch acts there. Call update_grid(x) with representative inputs "
                    "(warned once per layer).", GridRangeWarning, stacklevel=4)
            return
        a, b = knot_cached(self.knots, ("range-dev", self.k), lambda kn: self._grid_bounds(kn)[:2])
        clo, chi = torch.aminmax(xd, dim=0)
        bad = ((clo < a) | (chi > b)).any()
        if cuda:
            host = torch.empty((), dtype=torch.bool, pin_memory=True)
            host.copy_(bad, non_blocking=True)
            event = torch.cuda.Event()
            event.record()
            self._pending_range = (host, event)
        else:  # CPU (tests of this path): ready at the next call
            self._pending_range = (bad, None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, in) -> (batch, out): masked spline+base part, plus ``symbolic(x)`` if set."""
        if isinstance(x, torch.Tensor) and not x.is_cuda and not gpu_layer.interpreting():
            y = cpu_layer.forward(self, x)  # the native route: one check pass, one kernel call
        elif self.fast and gpu_layer.wanted(x):
            y = gpu_layer.layer_forward(self, x)  # the Triton route: its own checks, no host sync
        else:
            y = None
        if y is not None:
            return y if self.symbolic is None else y + self.symbolic(x)
        x = self._check_input(x)
        if self.fast:
            y = kan_forward(x, self.coef, self.scale_base, self.scale_spline, self.mask,
                            self.knots, self.k, self._uniform, self.base, self.recompute)
        else:
            y = self.edge_activations(x, include_symbolic=False).sum(-1)
        if self.symbolic is not None:
            y = y + self.symbolic(x)
        return y

    def spline_part(self, x: torch.Tensor) -> torch.Tensor:
        r"""Unscaled per-edge splines :math:`\sum_j c_{o,i,j} B_j(x_i)`: (batch, out, in)."""
        return torch.einsum("bij,oij->boi", spline.basis(x, self.knots, self.k), self.coef)

    def edge_activations(self, x: torch.Tensor, include_symbolic: bool = True) -> torch.Tensor:
        r"""Per-edge values :math:`m_{o,i}\phi_{o,i}(x_i)`, (batch, out, in); built on request only.

        Summing over the last axis gives :meth:`forward`. If ``symbolic`` is set, its
        ``edge_activations(x)`` is added.
        """
        x = self._check_input(x)
        bfn, _ = resolve_base(self.base)
        phi = self.scale_base * bfn(x)[:, None, :] + self.scale_spline * self.spline_part(x)
        phi = phi * self.mask
        if include_symbolic and self.symbolic is not None:
            phi = phi + self.symbolic.edge_activations(x)
        return phi

    # ----------------------------------------------------------------- grid
    @torch.no_grad()
    def update_grid(self, x: torch.Tensor, grid_eps: float | None = None) -> "KANLayer":
        """Move the knots onto the data ``x`` (batch, in) and refit ``coef`` by least squares.

        New grid points: ``grid_eps``·uniform + (1 − ``grid_eps``)·percentiles of each input
        (KAN paper §2.4); the spline part of every edge is preserved on ``x``. In place (same
        parameter objects, so optimizers keep working); returns ``self``.
        """
        x = self._check_input(torch.as_tensor(x)).detach().to(self.coef.dtype)
        eps = self.grid_eps if grid_eps is None else float(grid_eps)
        old = self.spline_part(x)  # (batch, out, in)
        knots = _grid.adaptive_knots(x, self.grid, self.k, eps).to(self.knots.dtype)
        self.coef.copy_(spline.fit_coefficients(x, old, knots, self.k))
        self.knots.copy_(knots)
        self._uniform = spline.is_uniform(knots)
        self._warned_range = False
        self._pending_range = None
        return self

    @torch.no_grad()
    def extend_grid(self, new_grid: int) -> "KANLayer":
        """Coarse-to-fine: switch to ``new_grid`` intervals on the same range, preserving the function.

        The knots are resampled along the old ones (an adapted grid stays adapted; an integer
        refinement keeps every old knot, so the old spline is represented exactly) and ``coef`` is
        refit by least squares. ``coef`` becomes a new Parameter: rebuild the optimizer afterwards.
        """
        _check_int("new_grid", new_grid, 1)
        knots, xs = _grid.refined_knots(self.knots, self.k, new_grid)
        old = self.spline_part(xs)
        self.knots = knots.to(self.knots.dtype)
        self.coef = nn.Parameter(spline.fit_coefficients(xs, old, self.knots, self.k))
        self._uniform = spline.is_uniform(self.knots)
        return self


def _after_load(module: KANLayer, incompatible) -> None:
    module._uniform = spline.is_uniform(module.knots)
