"""Which code path builds a KAN layer's feature matrix F and ∂L/∂x: native C, Triton, or eager.

* ``native``: uniform grid, CPU, contiguous float32/float64 ``x`` and the C kernels built
  (:mod:`nnlab.kan.native`: SIMD, rows over OpenMP threads). ``NNLAB_NATIVE=0`` turns it off.
* ``triton``: uniform grid on a CUDA device with Triton installed (:mod:`nnlab.kan.gpu`: the basis
  in one kernel feeding cuBLAS, a fused ∂L/∂x kernel, no host synchronisation); with
  ``NNLAB_TRITON=interpret`` CPU tensors take this route through Triton's interpreter (tests).
* otherwise ``None``: the eager PyTorch code of :mod:`nnlab.kan.kernel` (any grid, any device).

Both fast routes use the closed form of :func:`nnlab.kan.spline.uniform_basis_matrix` with the
position ``u = (x - t0)/h`` in float64, so they agree with float64 Cox–de Boor to ~1e-7 in float32.
"""
from __future__ import annotations

import functools
import os
from typing import NamedTuple

import torch

from . import native, spline
from .base import resolve_base

__all__ = ["Fast", "knot_cached", "setup", "fill_features", "grad_x", "describe"]


class Fast(NamedTuple):
    """A fast route and its constants: ``t0``, ``inv_h`` (in,) float64; ``M`` (k+1, k+1) and
    ``dM`` (k, k+1) closed-form coefficients (float64 for ``native``, x's dtype for ``triton``)."""
    kind: str
    t0: torch.Tensor
    inv_h: torch.Tensor
    M: torch.Tensor
    dM: torch.Tensor


def _gpu():
    """:mod:`nnlab.kan.gpu`, imported on first need (it imports Triton), or None."""
    try:
        from . import gpu
    except ImportError:  # pragma: no cover - a broken Triton install: eager code instead
        return None
    return gpu if gpu.available() else None


def _wants_triton(x: torch.Tensor, k: int) -> bool:
    if x.device.type == "cpu":
        if os.environ.get("NNLAB_TRITON", "") != "interpret":
            return False
    g = _gpu()
    return g is not None and g.usable(x, k)


_KNOT_CACHE: dict = {}


def knot_cached(knots: torch.Tensor, tag, fn):
    """``fn(knots)``, memoised per knots tensor, ``tag`` and version (in-place edits recompute).

    Saves the few small eager ops per call that dominate tiny layers. Entries hold a reference
    to their knots tensor (so its id cannot be reused while cached); at most 128 are kept.
    """
    try:
        version = knots._version
    except RuntimeError:  # inference tensors have no version counter: no caching
        return fn(knots)
    key = (id(knots), tag)
    hit = _KNOT_CACHE.get(key)
    if hit is not None and hit[0] is knots and hit[1] == version:
        return hit[2]
    val = fn(knots)
    if len(_KNOT_CACHE) >= 128:
        _KNOT_CACHE.clear()
    _KNOT_CACHE[key] = (knots, version, val)
    return val


@functools.lru_cache(maxsize=None)
def _mats(k: int, dtype: torch.dtype, device: torch.device):
    """Closed-form matrices M (k+1, k+1) and dM (k, k+1), contiguous, cached per device."""
    M = spline.uniform_basis_matrix(k, torch.float64)
    dM = M[1:] * torch.arange(1, k + 1, dtype=torch.float64)[:, None]
    return M.to(dtype=dtype, device=device).contiguous(), dM.to(dtype=dtype, device=device).contiguous()


def _grid_params(knots: torch.Tensor):
    """float64 ``t0`` (first knot) and ``inv_h`` (1 / spacing) per input of a uniform grid."""
    n = knots.shape[1]
    ends = knots[:, [0, -1]].double()
    t0 = ends[:, 0].contiguous()
    return t0, ((n - 1) / (ends[:, 1] - t0)).contiguous()


def setup(x: torch.Tensor, knots: torch.Tensor, k: int, uniform: bool) -> Fast | None:
    """The fast route for ``x`` (contiguous) and these knots, or None for the eager code."""
    if not uniform or knots.device != x.device:
        return None
    if (x.device.type != "cpu" or os.environ.get("NNLAB_TRITON", "") == "interpret") \
            and _wants_triton(x, k):
        t0, inv_h = knot_cached(knots, "grid", _grid_params)
        return Fast("triton", t0, inv_h, *_mats(k, x.dtype, x.device))
    if native.usable(x, k):
        t0, inv_h = knot_cached(knots, "grid", _grid_params)
        return Fast("native", t0, inv_h, *_mats(k, torch.float64, torch.device("cpu")))
    return None


def fill_features(fast: Fast, x: torch.Tensor, k: int, K: int, base, out: torch.Tensor) -> None:
    """Write F (B, K+1, I) into ``out`` (contiguous): basis slots and the base slot K."""
    if fast.kind == "native":
        silu = base == "silu"  # silu: in the same native pass
        native.features_uniform(x, fast.t0, fast.inv_h, k, K, fast.M, base is None, out,
                                silu=silu)
        if base is not None and not silu:
            out[:, K] = resolve_base(base)[0](x)
        return
    g = _gpu()
    g.features(x, fast.t0, fast.inv_h, fast.M, k, K, base, out)
    if g.base_code(base) == g.BASE_TORCH:
        out[:, K] = resolve_base(base)[0](x)


def _base_term(gK: torch.Tensor, x: torch.Tensor, base):
    """``gK · b'(x)`` contiguous, or None without a base branch."""
    if base is None:
        return None
    if base == "silu":  # one fused vectorised op
        return torch.ops.aten.silu_backward(gK, x).contiguous()
    return (gK * resolve_base(base)[1](x)).contiguous()


def grad_x(fast: Fast, gF: torch.Tensor, x: torch.Tensor, k: int, K: int, base,
           out: torch.Tensor) -> None:
    """``out`` (B, I) = ∂L/∂x from ``gF`` (B, (K+1)·I) contiguous."""
    gK = gF.view(x.shape[0], K + 1, -1)[:, K]
    if fast.kind == "native":
        silu = base == "silu"  # silu': in the same native pass
        native.backward_x(gF, x, fast.t0, fast.inv_h, k, K, fast.dM,
                          None if silu else _base_term(gK, x, base), out, silu=silu)
        return
    g = _gpu()
    term = _base_term(gK, x, base) if g.base_code(base) == g.BASE_TORCH else None
    g.backward_x(gF, x, fast.t0, fast.inv_h, fast.dM, k, K, base, term, out)


def describe(x: torch.Tensor, knots: torch.Tensor, k: int, uniform: bool) -> str:
    """A one-line name of the route a layer takes for ``x``, e.g. for benchmark tables."""
    fast = setup(x.contiguous(), knots, k, uniform)
    if fast is None:
        why = "adapted grid" if not uniform else (native.reason() or "unsupported input")
        return f"eager PyTorch ({why})"
    if fast.kind == "triton":
        return "Triton " + ("interpreter (CPU)" if x.device.type == "cpu" else f"on {x.device}")
    i = native.info()
    nt = torch.get_num_threads()
    threads = (f"up to {nt} threads (fewer while other tasks want the CPUs)" if nt > 1
               else "1 thread")
    return (f"native C ({i['isa']}, {'OpenMP' if i['openmp'] else 'no OpenMP'}, {threads}, "
            f"{i['flags']})")
