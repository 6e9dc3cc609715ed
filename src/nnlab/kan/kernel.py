r"""The fused KAN layer kernel: one GEMM over the basis and a hand-written backward.

A KAN layer (lecture §6.2) computes, for output node o,

.. math::
   y_o = \sum_i m_{o,i}\big(w^b_{o,i}\, b(x_i) + w^s_{o,i} \sum_j c_{o,i,j} B_j(x_i)\big).

Per input ``i`` we lay out the features ``F_{:,i} = [B_0(x_i), ..., B_{K-1}(x_i), b(x_i)]``
(``K = G + k`` basis functions, then the base branch) and the matching weight
``W_{o,i} = [m w^s c_{o,i,0}, ..., m w^s c_{o,i,K-1}, m w^b]``. The whole layer is then one matrix
product ``y = F · Wᵀ`` with ``F`` of shape (batch, in·(K+1)) — the GEMM floor.

Only ``k + 1`` of the ``K`` basis values are non-zero per input, so ``F`` is built by scattering
the local values (:func:`nnlab.kan.spline.local_basis_uniform`, closed form on uniform grids, or
:func:`~nnlab.kan.spline.local_basis` on adapted grids) into a zeroed buffer. On uniform grids a
fast route (:mod:`nnlab.kan.routes`) writes all of ``F`` in one pass and gathers ``∂L/∂x`` in
backward with the same closed form (:func:`~nnlab.kan.spline.uniform_basis_matrix`, float64
positions): native C on the CPU (SIMD, threads over rows), Triton on CUDA (basis kernel feeding
cuBLAS, fused ∂L/∂x kernel). Without them (no C compiler, ``NNLAB_NATIVE=0``, no Triton, adapted
grids) the eager PyTorch code below does the same work.

**Sparse native route.** Since only ``k + 1`` basis values (and the base value) per input are
non-zero, ``y_b = \sum_i \big(\sum_r B_{s-k+r}(x_{bi}) W_{:, s-k+r, i} + b(x_{bi}) W_{:, K, i}\big)``
costs ``(k+2)·out`` multiply-adds per input value against the GEMM's ``(K+1)·out``, and F is never
built. When the native kernels serve a layer with base silu (or none) whose weight fits in
:data:`SPARSE_MAX_BYTES` and the cost rule :func:`sparse_preferred` favours it (fine grids, small
layers; coarse grids in training take the GEMMs), forward and backward (``∂L/∂x`` from ``k+2`` dot products per input
value, ``∂L/∂W`` accumulated row by row) are one C pass each and only ``x`` is kept for backward. When nothing needs a gradient
(``torch.no_grad()`` or no parameter requiring one) :func:`kan_forward` runs forward only: no
autograd node, nothing saved. A :class:`~nnlab.kan.layer.KANLayer` call takes this route through
:mod:`nnlab.kan.cpu_layer` (check, packing and kernel in one native call).

Backward (the custom :class:`KANFunction`, no autograd graph over the basis):

* ``∂L/∂W = gᵀ F`` (one GEMM), then the chain rule onto ``c``, ``w^s``, ``w^b``;
* ``∂L/∂F = g W`` (one GEMM) and
  ``∂L/∂x_i = \sum_r ∂L/∂F_{i, first+r} B'_{first+r}(x_i) + ∂L/∂F_{i,K}\, b'(x_i)``
  (a gather of ``k + 1`` entries per input).

Between forward and backward only ``x``, the parameters and (unless ``recompute=True``) ``F``
itself are kept: one (batch, in·(K+1)) tensor, the same size as the GEMM floor's input. With
``recompute=True`` ``F`` is rebuilt block by block in backward and nothing of size batch·in·K
outlives a block. The feature tensor is slot-major, (batch, K+1, in), so every elementwise step
works on contiguous rows of length ``in``.
"""
from __future__ import annotations

import functools
import threading

import torch

from . import native, routes, spline
from .base import resolve_base
from .routes import knot_cached

__all__ = ["KANFunction", "layer_weights", "features", "kan_forward"]


def layer_weights(coef: torch.Tensor, scale_base: torch.Tensor, scale_spline: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """Packed weight (out, K+1, in): slot j < K holds ``m·w^s·c_{o,i,j}``, slot K holds ``m·w^b``.

    One native pass on the CPU when the kernels are built (a few eager ops otherwise)."""
    if not torch.is_grad_enabled() or not (coef.requires_grad or scale_base.requires_grad
                                            or scale_spline.requires_grad or mask.requires_grad):
        W = native.pack_weights(coef, scale_base, scale_spline, mask)
        if W is not None:
            return W
    sm = (mask * scale_spline).unsqueeze(-1)
    W = torch.cat([coef * sm, (mask * scale_base).unsqueeze(-1)], dim=-1)  # (out, in, K+1)
    return W.transpose(1, 2).contiguous()


@functools.lru_cache(maxsize=64)
def _constants(k: int, dtype: torch.dtype, device: torch.device):
    """Cached closed-form coefficients: M (k+1, k+1, 1), dM (k, k+1, 1), offsets (1, k+1, 1)."""
    M = spline.uniform_basis_matrix(k, dtype, device)
    dM = M[1:] * torch.arange(1, k + 1, dtype=dtype, device=device)[:, None]
    ar = torch.arange(k + 1, device=device).view(1, -1, 1)
    return M.unsqueeze(-1), dM.unsqueeze(-1), ar


def _horner_c(Mc: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Columns of Mc (P, R, 1) as polynomials in f (B, 1, I) -> contiguous (B, R, I).

    ``f`` comes first in the broadcasting product so the result takes its (B, ·, I) layout, and
    the remaining steps run in place (an operand order with Mc first is ~10x slower on CPU).
    """
    P = Mc.shape[0]
    if P == 1:  # a constant polynomial
        return (f * Mc[0]).mul_(0).add_(Mc[0])
    v = f * Mc[-1]
    for p in range(P - 2, -1, -1):
        if p < P - 2:
            v.mul_(f)
        v.add_(Mc[p])
    return v


def _local_fast(x: torch.Tensor, knots: torch.Tensor, k: int, derivative: bool,
                values: bool = True):
    """Uniform grid with every point inside the grid: closed form, no masking. None otherwise.

    Returns ``(idx, V)``, or ``(idx, V, dV)`` with ``derivative``; ``values=False`` skips ``V``
    (returned as None) when only the derivatives are needed.
    """
    n = knots.shape[1]
    K = n - k - 1
    ends = knots[:, [0, -1]].double()
    t0 = ends[:, 0]
    inv_h = (n - 1) / (ends[:, 1] - t0)
    u = (x.double() - t0) * inv_h  # float64: keeps ~1e-7 accuracy of float32 inputs at large G
    sf = u.floor()
    lo, hi = torch.aminmax(sf)
    if not (lo.item() >= k and hi.item() <= K - 1):  # outside the grid (or NaN): masked route
        return None
    # (B, 1, I) in [1e-12, 1): the floor keeps f³ away from denormal numbers, which are
    # ~100x slower on x86 unless flush-to-zero is on; the change in any value is < 1e-11
    f = (u - sf).clamp_(min=1e-12).to(x.dtype).unsqueeze(1)
    Mc, dMc, ar = _constants(k, x.dtype, x.device)
    idx = (sf - k).long().unsqueeze(1) + ar
    V = _horner_c(Mc, f) if values else None
    if not derivative:
        return idx, V
    dV = _horner_c(dMc, f) * inv_h.to(x.dtype)
    return idx, V, dV


def _local_masked(x: torch.Tensor, knots: torch.Tensor, k: int, uniform: bool, derivative: bool):
    """Any grid, any x: local values with out-of-range entries parked on slot K (value 0)."""
    n = knots.shape[1]
    K = n - k - 1
    if uniform:
        t0 = knots[:, 0]
        h = (knots[:, -1] - t0) / (n - 1)
        out = spline.local_basis_uniform(x, t0, h, n, k, derivative=derivative)
    else:
        out = spline.local_basis(x, knots, k, derivative=derivative)
    first = out[0]
    idx = first.unsqueeze(-1) + torch.arange(k + 1, device=x.device)
    idx = torch.where((idx >= 0) & (idx < K), idx, K)
    res = [idx] + list(out[1:])
    return tuple(t.transpose(1, 2).contiguous() for t in res)  # (B, k+1, I)


def _local(x: torch.Tensor, knots: torch.Tensor, k: int, uniform: bool):
    """(idx, values or None, derivatives), each (batch, k+1, in), as used by :func:`features`."""
    cpu = x.device.type == "cpu"
    loc = _local_fast(x, knots, k, True, values=False) if uniform and cpu else None
    return loc if loc is not None else _local_masked(x, knots, k, uniform, True)


def features(x: torch.Tensor, knots: torch.Tensor, k: int, uniform: bool, base: str | None,
             derivative: bool = False, out: torch.Tensor | None = None,
             fast: routes.Fast | None | bool = True):
    """Feature matrix F (batch, (K+1)·in) laid out as (batch, K+1, in), matching :func:`layer_weights`.

    ``fast``: a :class:`~nnlab.kan.routes.Fast` route, ``True`` (pick one with
    :func:`~nnlab.kan.routes.setup`) or ``None`` / ``False`` (eager PyTorch).
    With ``derivative=True`` (eager only) also returns ``idx`` (batch, k+1, in): the slot of each
    local value (out-of-range ones point at the base slot K), the basis derivatives there (zero for
    out-of-range ones) and ``b'(x)``.
    """
    B, I = x.shape
    K = knots.shape[1] - k - 1
    if not derivative:
        if fast is True:
            fast = routes.setup(x, knots, k, uniform)
        if fast:  # one native / Triton pass writes the whole of F
            Fm = x.new_empty(B, K + 1, I) if out is None else out.view(B, K + 1, I)
            routes.fill_features(fast, x, k, K, base, Fm)
            return Fm.view(B, (K + 1) * I)
    # the closed form without masking needs a host-side range check: CPU only (no GPU sync)
    loc = _local_fast(x, knots, k, derivative) if uniform and x.device.type == "cpu" else None
    if loc is None:
        loc = _local_masked(x, knots, k, uniform, derivative)
    idx, V = loc[0], loc[1]
    Fm = x.new_zeros(B, K + 1, I) if out is None else out.view(B, K + 1, I).zero_()
    Fm.scatter_(1, idx, V)  # valid slots are distinct; out-of-range ones land on slot K ...
    bfn, dbfn = resolve_base(base)
    Fm[:, K] = bfn(x)  # ... which the base branch then overwrites
    Fm = Fm.view(B, (K + 1) * I)
    if not derivative:
        return Fm
    return Fm, idx, loc[2], dbfn(x)


#: features per row block (2 MiB of float32: an L2-sized block that the GEMM reads while it is
#: still in cache); keeps the transient memory O(chunk) instead of O(batch)
CHUNK_ELEMENTS = 1 << 19


def _chunks(B: int, width: int, device: torch.device | None = None, whole: bool = False):
    """Row blocks of the batch. On the CPU they keep F near cache size; on an accelerator (or
    with ``whole``) one block: every extra block costs kernel launches. With several threads
    the blocks grow with the thread count: each block is a few parallel regions, and each
    region waits for its slowest thread (costly on a loaded machine)."""
    if whole or (device is not None and device.type != "cpu"):
        return [(0, B)]
    rows = max(32, CHUNK_ELEMENTS * min(torch.get_num_threads(), 8) // max(width, 1))
    return [(i, min(i + rows, B)) for i in range(0, B, rows)]


def _forward(x, W, knots, k: int, uniform: bool, base, store: bool, fast):
    """``(y, F or None)``: y = F·Wᵀ, F built whole (stored, or a fast route on a GPU) or in blocks."""
    O = W.shape[0]
    Wt = W.view(O, -1).t()
    B = x.shape[0]
    if store:  # store F once (like the GEMM floor stores its input); skips a rebuild later
        Fm = x.new_empty(B, Wt.shape[0])
        for a, b in _chunks(B, Wt.shape[0], x.device, whole=fast is not None):
            features(x[a:b], knots, k, uniform, base, out=Fm[a:b], fast=fast)
        return Fm @ Wt, Fm
    if fast is not None and x.device.type != "cpu":  # one basis kernel feeding one GEMM
        return features(x, knots, k, uniform, base, fast=fast) @ Wt, None
    # CPU: F in row blocks of cache size, each written into one reused buffer and consumed by
    # the GEMM while it is still in cache (no whole-F allocation: at 4096x256x9 floats that is
    # 38 MB of fresh pages, i.e. page faults, on every call)
    y = x.new_empty(B, O)
    chunks = _chunks(B, Wt.shape[0], x.device)
    buf = x.new_empty(chunks[0][1] - chunks[0][0], Wt.shape[0]) if fast is not None else None
    for a, b in chunks:
        out = buf[:b - a] if buf is not None else None
        torch.mm(features(x[a:b], knots, k, uniform, base, out=out, fast=fast), Wt, out=y[a:b])
    return y, None


def _narrow_threads(fast) -> int | None:
    """On a busy CPU, run this layer call on the free CPUs only: with the native route and more
    intra-op threads than :func:`nnlab.kan.native.threads_for` grants (other runnable tasks hold
    the cores), lower torch's thread count for the call (its GEMMs too, not only the C kernels)
    and return the count to restore; None when nothing changed. Every parallel region waits at
    its join for its slowest thread, and on an oversubscribed machine that thread may not be
    scheduled for a time slice: there, one thread is faster than two. Main thread only."""
    if fast is None or fast.kind != "native":
        return None
    if threading.current_thread() is not threading.main_thread():
        # the count is process-wide: a worker thread (a server's, a data pipeline's) changing it
        # could race another thread's restore and leave it lowered, so only the main thread does
        return None
    want = torch.get_num_threads()
    if want <= 1:
        return None
    n = native.threads_for(want)
    if n >= want:
        return None
    torch.set_num_threads(n)
    return want


def _restore_threads(prev: int | None) -> None:
    if prev is not None:
        torch.set_num_threads(prev)


class KANFunction(torch.autograd.Function):
    """Fused KAN layer: forward ``F·Wᵀ``; backward from ``x`` and (optionally) the stored ``F``.

    The basis is built by a fast route (:mod:`nnlab.kan.routes`) in one pass, or block by block
    over the batch (:data:`CHUNK_ELEMENTS` features per block) by eager code. With
    ``store=False`` no feature tensor outlives a block: backward rebuilds them.
    No per-edge (batch, out, in) tensor is ever built.
    """

    @staticmethod
    def forward(ctx, x, coef, scale_base, scale_spline, mask, knots, k, uniform, base, store,
                W=None):
        x = x.contiguous()
        fast = routes.setup(x, knots, k, uniform)
        ctx.k, ctx.uniform, ctx.base, ctx.fast = k, uniform, base, fast
        prev = _narrow_threads(fast)
        try:
            return KANFunction._forward(ctx, x, coef, scale_base, scale_spline, mask, knots, k,
                                        uniform, base, store, W, fast)
        finally:
            _restore_threads(prev)

    @staticmethod
    def _forward(ctx, x, coef, scale_base, scale_spline, mask, knots, k, uniform, base, store,
                 W, fast):
        Wt = _sparse_weight(fast, coef, scale_base, scale_spline, mask, base, W, x.shape[0], True)
        if Wt is not None:  # no F at all: only x is kept (and Wt, of parameter size)
            ctx.save_for_backward(x, coef, scale_base, scale_spline, mask, knots, None)
            ctx.W, ctx.Wt = None, Wt
            return _sparse_forward(x, fast, k, coef.shape[2], Wt, base)
        if W is None:
            W = layer_weights(coef, scale_base, scale_spline, mask)
        y, Fm = _forward(x, W, knots, k, uniform, base, store, fast)
        ctx.save_for_backward(x, coef, scale_base, scale_spline, mask, knots, Fm)
        ctx.W, ctx.Wt = W, None  # the packed weight (parameter size): backward reuses it
        return y

    @staticmethod
    def backward(ctx, g):
        prev = _narrow_threads(ctx.fast)
        try:
            return KANFunction._backward(ctx, g)
        finally:
            _restore_threads(prev)

    @staticmethod
    def _backward(ctx, g):
        x, coef, scale_base, scale_spline, mask, knots, Fsaved = ctx.saved_tensors
        k, uniform, base, fast = ctx.k, ctx.uniform, ctx.base, ctx.fast
        need_x, need_c, need_sb, need_ss = ctx.needs_input_grad[:4]
        need_w = need_c or need_sb or need_ss
        O, I, K = coef.shape
        B = x.shape[0]
        g = g.contiguous()
        if ctx.Wt is not None:  # the sparse native route: ∂L/∂x and ∂L/∂Wt in one pass
            gx, gWt = native.sparse_backward(g, x, fast.t0, fast.inv_h, k, K, fast.M, fast.dM,
                                             ctx.Wt, base == "silu", need_x, need_w)
            grads = _param_grads(gWt, True, coef, scale_spline, mask, need_c, need_sb, need_ss)
            return (gx, *grads, None, None, None, None, None, None, None)
        W2 = ctx.W.view(O, -1)
        gx = torch.empty_like(x) if need_x else None
        have_F = Fsaved is not None
        if have_F:
            gW2 = g.t() @ Fsaved if need_w else None
            del Fsaved
        else:
            gW2 = torch.zeros_like(W2) if need_w else None
        for a, b in _chunks(B, W2.shape[1], x.device):
            xc, gc_ = x[a:b], g[a:b]
            if fast is not None:  # F (if not stored) and ∂L/∂x without any eager pass
                if not have_F:
                    Fm = features(xc, knots, k, uniform, base, fast=fast)
                    if need_w:
                        gW2.addmm_(gc_.t(), Fm)
                    del Fm
                if need_x:
                    routes.grad_x(fast, gc_ @ W2, xc, k, K, base, gx[a:b])
                elif have_F:
                    break
                continue
            if have_F:
                if not need_x:
                    break
                idx, _, dvals = _local(xc, knots, k, uniform)
                db = resolve_base(base)[1](xc)
            else:
                if need_x:
                    Fm, idx, dvals, db = features(xc, knots, k, uniform, base, derivative=True)
                else:
                    Fm = features(xc, knots, k, uniform, base, fast=None)
                if need_w:
                    gW2.addmm_(gc_.t(), Fm)
                del Fm
            if need_x:
                gF = (gc_ @ W2).view(b - a, K + 1, I)
                gx[a:b] = (gF.gather(1, idx) * dvals).sum(1) + gF[:, K] * db
        grads = _param_grads(gW2 if need_w else None, False, coef, scale_spline, mask, need_c,
                             need_sb, need_ss)
        return (gx, *grads, None, None, None, None, None, None, None)


def _param_grads(gW, input_major: bool, coef, scale_spline, mask, need_c: bool, need_sb: bool,
                 need_ss: bool):
    """``(∂L/∂c, ∂L/∂w^b, ∂L/∂w^s)`` (each None unless needed) from ∂L/∂W by the chain rule
    through :func:`layer_weights`; ``gW`` is (I, K+1, O) if ``input_major`` (the sparse route)
    else (O, K+1, I) (or any view of it). One native pass on the CPU, eager ops otherwise; the
    results are contiguous like their parameters (LBFGS flattens gradients with ``.view``)."""
    if gW is None:
        return None, None, None
    O, I, K = coef.shape
    gW = gW.reshape(I, K + 1, O) if input_major else gW.reshape(O, K + 1, I)
    grads = native.param_grads(gW, coef.detach(), scale_spline.detach(), mask, input_major)
    if grads is not None:
        return tuple(gr if need else None for gr, need in zip(grads, (need_c, need_sb, need_ss)))
    gW = (gW.permute(2, 0, 1) if input_major else gW.transpose(1, 2)).contiguous()  # (O, I, K+1)
    gWs = gW[..., :K]
    gc = (gWs * (mask * scale_spline).unsqueeze(-1)).contiguous() if need_c else None
    gsb = (gW[..., K] * mask).contiguous() if need_sb else None
    gss = ((gWs * coef).sum(-1) * mask).contiguous() if need_ss else None
    return gc, gsb, gss


#: the sparse native route (no feature matrix: (k+2)·out multiply-adds per input value instead
#: of the GEMM's (K+1)·out, nothing of size batch·in·K written or kept) is considered while its
#: weight ((K+1)·in·out values) takes at most this many bytes, so that it stays in cache (without
#: the GEMM's register blocking the route streams its weight rows from cache); larger layers build
#: F and call the GEMM. 0 turns the route off. Within the limit :func:`sparse_preferred` decides.
SPARSE_MAX_BYTES = 1 << 20

#: the cost model of :func:`sparse_preferred`, one core, picoseconds per multiply-add (measured on
#: an AVX-512 Xeon, float32, (1024, 64→64) at G = 5 and 20; the ratios, not the absolute values,
#: decide): the sparse route per (k+2)·out multiply-add of a gathered weight row, the features +
#: GEMM route per (K+1)·out multiply-add of its GEMMs, with its basis pass, ∂L/∂x pass and
#: stores of F included. Training = forward + backward (3 products each), inference = forward.
#: Training is timed with other layers' steps between forward and backward, as in a model (and
#: in ``bench/kan_layer.py``): there F, written in forward, is cold by backward, while the sparse
#: route reads only x and its weight (at (1024, 64→64, 5): sparse 0.79× the features + GEMM
#: route's time with a peer layer's step in between, 1.13× with nothing in between).
SPARSE_PS = {"train": 95.0, "infer": 40.0}
GEMM_PS = {"train": 64.0, "infer": 24.0}
#: what the features + GEMM route costs per layer call beyond its per-element work (more
#: kernel calls and allocations, F's first touch), in microseconds
GEMM_FIXED_US = 80.0


def sparse_preferred(rows: int, I: int, O: int, K: int, k: int, train: bool) -> bool:
    """Does the sparse route beat features + GEMM for a (rows, I→O) layer with K basis functions
    of order k? Estimated times (the constants above): sparse ``rows·I·O·(k+2)·SPARSE_PS``,
    GEMM ``rows·I·O·(K+1)·GEMM_PS + GEMM_FIXED_US``. The sparse route does (k+2)/(K+1) of the
    GEMM's multiply-adds but each at several times the cost (a gathered weight row, no register
    blocking; in backward ∂L/∂W accumulated row by row), so it wins for fine grids (K+1 ≫ k+2)
    and for small layers (the GEMM route's fixed cost); for coarse grids the GEMMs win once the
    layer is large enough, and sooner in training (three products) than in inference."""
    mode = "train" if train else "infer"
    saving_us = rows * I * O * ((k + 2) * SPARSE_PS[mode] - (K + 1) * GEMM_PS[mode]) * 1e-6
    return saving_us <= GEMM_FIXED_US


def sparse_route(fast, coef, base, rows: int, train: bool) -> bool:
    """Whether a (rows, in→out) layer takes the sparse route: it applies (native, base silu or
    none, a weight of at most :data:`SPARSE_MAX_BYTES`) and pays (:func:`sparse_preferred`)."""
    if fast is None or fast.kind != "native" or base not in (None, "silu"):
        return False
    O, I, K = coef.shape
    return ((K + 1) * I * O * coef.element_size() <= SPARSE_MAX_BYTES
            and sparse_preferred(rows, I, O, K, fast.M.shape[0] - 1, train))


def _sparse_weight(fast, coef, scale_base, scale_spline, mask, base, W=None, rows: int = 0,
                   train: bool = False):
    """The sparse route's transposed weight Wt ((K+1)·in, out), or None where the route does not
    apply (not native, a base other than silu / none, a weight too large to stay in cache) or
    does not pay (:func:`sparse_preferred` for ``rows`` rows, ``train``: with backward)."""
    if not sparse_route(fast, coef, base, rows, train):
        return None
    if W is not None:  # (O, K+1, I) -> (I, K+1, O)
        return W.permute(2, 1, 0).contiguous()
    return native.pack_weights_t(coef, scale_base, scale_spline, mask)  # reads data only


def _sparse_forward(x, fast, k: int, K: int, Wt, base):
    return native.sparse_forward(x, fast.t0, fast.inv_h, k, K, fast.M, Wt, base == "silu")


def kan_forward(x, coef, scale_base, scale_spline, mask, knots, k: int, uniform: bool,
                base: str | None, recompute: bool = False,
                W: torch.Tensor | None = None) -> torch.Tensor:
    """Apply the fused layer: x (batch, in) -> (batch, out). Shapes as in :class:`KANFunction`.

    ``recompute=False`` (default) keeps the feature matrix F from the forward pass for the
    weight gradient (one tensor of batch·in·(K+1) values: what the GEMM floor holds as its input);
    ``recompute=True`` keeps nothing but ``x`` and rebuilds F block by block in backward
    (memory O(block), one more basis evaluation). Under ``torch.no_grad`` nothing is kept.
    ``W``: the packed weight :func:`layer_weights` of these parameters when the caller has it
    (e.g. memoised while the parameters are unchanged); computed here otherwise.
    """
    x = x.contiguous()
    if not (torch.is_grad_enabled() and (x.requires_grad or coef.requires_grad
                                         or scale_base.requires_grad or scale_spline.requires_grad)):
        # forward only (inference): no autograd node, nothing saved for backward
        fast = routes.setup(x, knots, k, uniform)
        prev = _narrow_threads(fast)
        try:
            Wt = _sparse_weight(fast, coef, scale_base, scale_spline, mask, base, W, x.shape[0])
            if Wt is not None:
                return _sparse_forward(x, fast, k, coef.shape[2], Wt, base)
            if W is None:
                W = layer_weights(coef, scale_base, scale_spline, mask)
            return _forward(x, W, knots, k, uniform, base, False, fast)[0]
        finally:
            _restore_threads(prev)
    store = not recompute and (coef.requires_grad or scale_base.requires_grad
                               or scale_spline.requires_grad)
    return KANFunction.apply(x, coef, scale_base, scale_spline, mask, knots, k, uniform, base,
                             bool(store), W)
