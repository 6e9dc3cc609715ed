r"""A :class:`~nnlab.kan.layer.KANLayer` call on the CPU with the native kernels, in as few steps
as possible (the CPU counterpart of :mod:`nnlab.kan.gpu_layer`).

A small layer (e.g. (256, 2→5)) costs less in arithmetic than in per-call bookkeeping: an
``aminmax`` pass with a host round trip for the grid-range check, route selection, packing the
weight, one ctypes call per kernel. Here, for a contiguous float32/float64 CPU input:

* the input check (NaN/inf → one clear error; inputs outside the grid range → the layer's
  :class:`~nnlab.kan.layer.GridRangeWarning`, once) is one native pass over ``x``
  (``kan_check_input``), with the same semantics as the eager check;
* on the sparse route (base silu or none, a weight of at most
  :data:`nnlab.kan.kernel.SPARSE_MAX_BYTES`, and cheaper than features + GEMM by the cost rule
  :func:`nnlab.kan.kernel.sparse_preferred`: :func:`nnlab.kan.kernel.sparse_route`) the check, packing the weight
  ``W_{o,i} = [m w^s c_{o,i,:}, m w^b]`` and :math:`y = F·Wᵀ` are **one** native call, and
  backward (∂L/∂x, then ∂L/∂c, ∂L/∂w^b, ∂L/∂w^s by the chain rule through ``W``) another.
  The packed weight is rebuilt from the parameters on every call (O(parameters), in C), never
  cached, so no in-place edit of a parameter, however made, can leave it stale;
* otherwise (base silu or none, ``F`` of at most two of the kernel's cache-sized blocks,
  :data:`nnlab.kan.kernel.CHUNK_ELEMENTS`), features + GEMM with the fewest steps: in training
  one autograd node (:class:`_DenseLayer`), in inference one native pass and one GEMM
  (:func:`_dense_forward`); no row blocks, no route look-ups, and ``F`` (and ``∂L/∂F``) in
  reused buffers (:mod:`nnlab.kan.buffers`: no page faults of fresh megabytes per call);
* larger layers and other bases take :func:`nnlab.kan.kernel.kan_forward` after the native check
  (row blocks keep ``F`` and ``∂L/∂F`` near cache size).

Anything else (CUDA, Triton's interpreter, integer or half inputs, an adapted grid, the deferred
check, ``NNLAB_NATIVE=0``) returns None from :func:`forward` and the layer's general code runs.
"""
from __future__ import annotations

import torch

from . import buffers, kernel, native, routes

__all__ = ["forward"]

_FLOATS = (torch.float32, torch.float64)


def _plan(layer, knots: torch.Tensor):
    """Per knots tensor (memoised on its version): the native route's constants and the grid
    range with slack as float64 ``(lo, hi)`` per input."""
    k = layer.k

    def make(kn):
        t0, inv_h = routes._grid_params(kn)
        M, dM = routes._mats(k, torch.float64, torch.device("cpu"))
        a, b, _ = layer._grid_bounds(kn)
        return routes.Fast("native", t0, inv_h, M, dM), a.double().contiguous(), b.double().contiguous()

    return routes.knot_cached(knots, ("cpu-layer", k), make)


def _flags(layer, x: torch.Tensor, flags: int) -> None:
    """Act on the native check's flags: NaN/inf -> ValueError; outside the grid -> warn once."""
    if flags & 1:
        raise ValueError("KANLayer input contains NaN/inf; clean or drop those rows first")
    if flags & 2:
        lo, hi = torch.stack(torch.aminmax(x.detach())).tolist()  # for the message only
        layer._warn_outside(lo, hi, stacklevel=5)


def forward(layer, x: torch.Tensor) -> torch.Tensor | None:
    """``layer``'s spline+base part for ``x`` (batch, in) on the native CPU route, or None where
    that route does not apply (the caller then runs the general code, which does its own checks).
    Nothing is changed before None is returned."""
    d = layer.__dict__
    if (not d["_uniform"] or not d["fast"] or d.get("_defer_checks") or x.ndim != 2
            or x.dtype not in _FLOATS or not x.is_contiguous() or x.device.type != "cpu"):
        return None
    B, I = x.shape
    if B == 0 or I != layer.in_dim:
        return None
    params, bufs = d["_parameters"], d["_buffers"]
    coef, sb, ss = params["coef"], params["scale_base"], params["scale_spline"]
    mask, knots = bufs["mask"], bufs["knots"]
    k = layer.k
    if (k > native.MAX_K or knots.device.type != "cpu"
            or not native._same_cpu((coef, sb, ss, mask), x.dtype)):
        return None
    fast, lo, hi = _plan(layer, knots)
    O, _, K = coef.shape
    base = layer.base
    train = torch.is_grad_enabled() and (x.requires_grad or coef.requires_grad
                                         or sb.requires_grad or ss.requires_grad)
    sparse = kernel.sparse_route(fast, coef, base, B, train)
    if not sparse:
        _flags(layer, x, native.check_input(x, lo, hi, not layer._warned_range))
        if base in (None, "silu") and B * (K + 1) * I <= 2 * kernel.CHUNK_ELEMENTS and not (
                train and layer.recompute):
            prev = kernel._narrow_threads(fast)
            try:
                if train:
                    return _DenseLayer.apply(x, coef, sb, ss, mask, fast, k, base == "silu")
                return _dense_forward(x, coef, sb, ss, mask, fast, k, base == "silu")
            finally:
                kernel._restore_threads(prev)
        return kernel.kan_forward(x, coef, sb, ss, mask, knots, k, True, base, layer.recompute)
    rng = not layer._warned_range
    prev = kernel._narrow_threads(fast)
    try:
        if train:
            box = [0]  # the flags (a Python int is no autograd output)
            y = _SparseLayer.apply(x, coef, sb, ss, mask, fast, k, base == "silu", lo, hi, rng, box)
            flags = box[0]
        else:
            y, flags = _layer_forward(x, coef, sb, ss, mask, fast, k, base == "silu", lo, hi, rng)
    finally:
        kernel._restore_threads(prev)
    _flags(layer, x, flags)
    return y


def _layer_forward(x, coef, sb, ss, mask, fast, k: int, silu: bool, lo, hi, rng: bool,
                   threads: int | None = None):
    """``(y, flags)``: the check, the packed weight and ``y = F·Wᵀ`` in one native call."""
    B, I = x.shape
    O, _, K = coef.shape
    y = torch.empty((B, O), dtype=x.dtype)
    lib = native._lib
    fn = lib.kan_layer_forward_f32 if x.dtype == torch.float32 else lib.kan_layer_forward_f64
    flags = fn(x.data_ptr(), B, I, O, fast.t0.data_ptr(), fast.inv_h.data_ptr(), k, K,
               fast.M.data_ptr(), coef.data_ptr(), sb.data_ptr(), ss.data_ptr(), mask.data_ptr(),
               int(silu), lo.data_ptr(), hi.data_ptr(), int(rng), y.data_ptr(),
               native.threads_for(threads))
    if flags < 0:
        raise MemoryError("nnlab.kan native kernel: out of memory for its scratch buffer")
    return y, flags


def layer_backward(g, x, coef, sb, ss, mask, fast, k: int, silu: bool, need_x: bool,
                   need_w: bool, threads: int | None = None):
    """``(∂L/∂x, ∂L/∂c, ∂L/∂w^b, ∂L/∂w^s)`` (None where not needed) in one native call."""
    B, I = x.shape
    O, _, K = coef.shape
    gx = torch.empty_like(x) if need_x else None
    gc = torch.empty_like(coef) if need_w else None
    gsb = torch.empty_like(sb) if need_w else None
    gss = torch.empty_like(ss) if need_w else None
    lib = native._lib
    fn = lib.kan_layer_backward_f32 if x.dtype == torch.float32 else lib.kan_layer_backward_f64
    ptr = lambda t: t.data_ptr() if t is not None else None  # noqa: E731
    if fn(g.data_ptr(), x.data_ptr(), B, I, O, fast.t0.data_ptr(), fast.inv_h.data_ptr(), k, K,
          fast.M.data_ptr(), fast.dM.data_ptr(), coef.data_ptr(), sb.data_ptr(), ss.data_ptr(),
          mask.data_ptr(), int(silu), ptr(gx), ptr(gc), ptr(gsb), ptr(gss),
          native.threads_for(threads)) < 0:
        raise MemoryError("nnlab.kan native kernel: out of memory for its scratch buffer")
    return gx, gc, gsb, gss


class _SparseLayer(torch.autograd.Function):
    """The sparse native route as one autograd node: saves ``x`` and the parameters only (the
    packed weight is rebuilt in backward; autograd's version check guards the saved tensors)."""

    @staticmethod
    def forward(ctx, x, coef, sb, ss, mask, fast, k, silu, lo, hi, rng, box):
        y, box[0] = _layer_forward(x, coef, sb, ss, mask, fast, k, silu, lo, hi, rng)
        ctx.save_for_backward(x, coef, sb, ss, mask)
        ctx.fast, ctx.k, ctx.silu = fast, k, silu
        return y

    @staticmethod
    def backward(ctx, g):
        x, coef, sb, ss, mask = ctx.saved_tensors
        need_x, need_c, need_sb, need_ss = ctx.needs_input_grad[:4]
        prev = kernel._narrow_threads(ctx.fast)
        try:
            gx, gc, gsb, gss = layer_backward(g.contiguous(), x, coef.detach(), sb.detach(),
                                              ss.detach(), mask, ctx.fast, ctx.k, ctx.silu,
                                              need_x, need_c or need_sb or need_ss)
        finally:
            kernel._restore_threads(prev)
        return (gx, gc if need_c else None, gsb if need_sb else None, gss if need_ss else None,
                None, None, None, None, None, None, None, None)


#: values per row block of F (forward) and of ∂L/∂F (backward) on the features + GEMM route
#: (512 KiB of float32): a block is written by one pass and read by the next (GEMM, ∂L/∂x)
#: while it is still in L2; ∂L/∂F of the whole batch is never written out to memory
GF_BLOCK_ELEMENTS = 1 << 17


def _dense_layer(x, coef, sb, ss, mask, fast, k: int, silu: bool, keep: bool):
    """``(y, F, W)``: the features F (B, (K+1)·I), silu (or zeros) in slot K, and ``y = F·Wᵀ``,
    by row blocks (each block of F written by one native pass and multiplied while it is still
    in L2), with the packed weight W (O, (K+1)·I). ``keep``: F whole in a reused buffer (for
    backward); else one block-sized reused buffer and F is None."""
    B, I = x.shape
    O, _, K = coef.shape
    W = native.pack_weights(coef.detach(), sb.detach(), ss.detach(), mask).view(O, -1)
    width = (K + 1) * I
    rows = max(16, GF_BLOCK_ELEMENTS // width)
    F = buffers.take((B if keep else min(rows, B), width), x.dtype)  # reused: no page faults
    Wt = W.t()
    y = torch.empty((B, O), dtype=x.dtype)
    for a in range(0, B, rows):
        b = min(a + rows, B)
        Fb = F[a:b] if keep else F[:b - a]
        native.features_uniform(x[a:b], fast.t0, fast.inv_h, k, K, fast.M, not silu,
                                Fb.view(b - a, K + 1, I), silu=silu)
        torch.mm(Fb, Wt, out=y[a:b])
    return y, (F if keep else None), W


def _dense_forward(x, coef, sb, ss, mask, fast, k: int, silu: bool) -> torch.Tensor:
    """Inference on the features + GEMM route: F by blocks in one reused buffer, nothing kept."""
    return _dense_layer(x, coef, sb, ss, mask, fast, k, silu, False)[0]


class _DenseLayer(torch.autograd.Function):
    r"""The features + GEMM route for training as one autograd node with the fewest steps:
    forward packs ``W`` (one native pass), writes ``F`` (one native pass, silu into slot K) and
    computes ``y = F·Wᵀ`` (one GEMM); backward ``∂L/∂W = gᵀF`` and ``∂L/∂F = g·W`` (two GEMMs),
    ``∂L/∂x`` from ∂L/∂F (one native pass) and the chain rule onto c, w^b, w^s (one native
    pass). ``F`` and ``W`` are kept for backward (F: what the GEMM floor holds as its input);
    they are made here and never handed out, so nothing can edit them in between. ``F`` and
    ``∂L/∂F`` live in reused buffers (:mod:`nnlab.kan.buffers`: no page faults of fresh
    megabytes on every step); F's goes back once autograd has dropped it after backward."""

    @staticmethod
    def forward(ctx, x, coef, sb, ss, mask, fast, k, silu):
        y, F, W = _dense_layer(x, coef, sb, ss, mask, fast, k, silu, True)  # F: the view kept
        ctx.save_for_backward(x, coef, ss, mask, F)  # autograd drops F after backward
        ctx.W, ctx.fast, ctx.k, ctx.silu = W, fast, k, silu
        return y

    @staticmethod
    def backward(ctx, g):
        x, coef, ss, mask, F = ctx.saved_tensors
        need_x, need_c, need_sb, need_ss = ctx.needs_input_grad[:4]
        fast, k = ctx.fast, ctx.k
        B, I = x.shape
        K = coef.shape[2]
        gx = gc = gsb = gss = None
        prev = kernel._narrow_threads(fast)
        try:
            g = g.contiguous()
            if need_c or need_sb or need_ss:
                gc, gsb, gss = native.param_grads(torch.mm(g.t(), F), coef.detach(),
                                                  ss.detach(), mask, False)
            del F
            if need_x:  # ∂L/∂F by row blocks into one L2-sized buffer, each block used at once
                gx = torch.empty_like(x)
                rows = max(16, GF_BLOCK_ELEMENTS // ((K + 1) * I))
                buf = buffers.take((min(rows, B), (K + 1) * I), x.dtype)
                for a in range(0, B, rows):
                    b = min(a + rows, B)
                    gF = torch.mm(g[a:b], ctx.W, out=buf[:b - a])
                    native.backward_x(gF, x[a:b], fast.t0, fast.inv_h, k, K, fast.dM, None,
                                      gx[a:b], silu=ctx.silu)
        finally:
            kernel._restore_threads(prev)
        return (gx, gc if need_c else None, gsb if need_sb else None, gss if need_ss else None,
                None, None, None, None)
