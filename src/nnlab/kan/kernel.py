r"""The fused KAN layer kernel: one GEMM over the basis, basis recomputed in backward.

A KAN layer (lecture §6.2) computes, for output node o,

.. math::
   y_o = \sum_i m_{o,i}\big(w^b_{o,i}\, b(x_i) + w^s_{o,i} \sum_j c_{o,i,j} B_j(x_i)\big).

Per input ``i`` we lay out the feature row ``F_i = [B_0(x_i), ..., B_{K-1}(x_i), b(x_i)]``
(``K = G + k`` basis functions, then the base branch) and the matching weight
``W_{o,i} = [m w^s c_{o,i,0}, ..., m w^s c_{o,i,K-1}, m w^b]``. The whole layer is then one matrix
product ``y = F · Wᵀ`` with ``F`` of shape (batch, in·(K+1)) — the GEMM floor.

Only ``k + 1`` of the ``K`` basis values are non-zero per input, so ``F`` is built by scattering
the local values (:func:`nnlab.kan.spline.local_basis_uniform`, closed form on uniform grids, or
:func:`~nnlab.kan.spline.local_basis` on adapted grids) into a zeroed buffer.

Backward (the custom :class:`KANFunction`): ``F`` is *recomputed* from ``x`` rather than stored,
so the only tensors kept between forward and backward are ``x`` and the parameters:

* ``∂L/∂W = gᵀ F`` (one GEMM), then the chain rule onto ``c``, ``w^s``, ``w^b``;
* ``∂L/∂F = g W`` (one GEMM) and
  ``∂L/∂x_i = \sum_r ∂L/∂F_{i, first+r} B'_{first+r}(x_i) + ∂L/∂F_{i,K}\, b'(x_i)``
  (a gather of ``k + 1`` entries per input).

The feature tensor is stored slot-major, (batch, K+1, in), so that every elementwise step works
on contiguous rows of length ``in``.
"""
from __future__ import annotations

import torch

from . import spline
from .base import resolve_base

__all__ = ["KANFunction", "layer_weights", "features", "kan_forward"]


def layer_weights(coef: torch.Tensor, scale_base: torch.Tensor, scale_spline: torch.Tensor,
                  mask: torch.Tensor) -> torch.Tensor:
    """Packed weight (out, K+1, in): slot j < K holds ``m·w^s·c_{o,i,j}``, slot K holds ``m·w^b``."""
    sm = (mask * scale_spline).unsqueeze(-1)
    W = torch.cat([coef * sm, (mask * scale_base).unsqueeze(-1)], dim=-1)  # (out, in, K+1)
    return W.transpose(1, 2).contiguous()


def _horner(M: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Evaluate the columns of M (P, R) as polynomials in f (B, 1, I): returns (B, R, I)."""
    Mc = M.unsqueeze(-1)  # (P, R, 1)
    if M.shape[0] == 1:
        return Mc[0].expand(f.shape[0], -1, f.shape[2])
    v = torch.addcmul(Mc[-2], Mc[-1], f)
    for p in range(M.shape[0] - 3, -1, -1):
        v = torch.addcmul(Mc[p], v, f)
    return v


def _local_fast(x: torch.Tensor, knots: torch.Tensor, k: int, derivative: bool):
    """Uniform grid with every point inside the grid: closed form, no masking. None otherwise."""
    n = knots.shape[1]
    K = n - k - 1
    xd = x if x.dtype == torch.float64 else x.double()
    kd = knots.double()
    t0 = kd[:, 0]
    inv_h = (n - 1) / (kd[:, -1] - t0)
    u = (xd - t0) * inv_h
    sf = u.floor()
    lo, hi = torch.aminmax(sf)
    lo, hi = float(lo), float(hi)
    if not (lo >= k and hi <= K - 1):  # some point outside the grid (or NaN): masked route
        return None
    f = (u - sf).to(x.dtype).unsqueeze(1)  # (B, 1, I), in [0, 1)
    idx = (sf.long() - k).unsqueeze(1) + torch.arange(k + 1, device=x.device).view(1, -1, 1)
    M = spline.uniform_basis_matrix(k, x.dtype, x.device)
    V = _horner(M, f)
    if not derivative:
        return idx, V
    dM = M[1:] * torch.arange(1, k + 1, dtype=x.dtype, device=x.device)[:, None]
    dV = _horner(dM, f) * inv_h.to(x.dtype).view(1, 1, -1)
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
    """(idx, values, derivatives), each (batch, k+1, in), as used by :func:`features`."""
    loc = _local_fast(x, knots, k, True) if uniform else None
    return loc if loc is not None else _local_masked(x, knots, k, uniform, True)


def features(x: torch.Tensor, knots: torch.Tensor, k: int, uniform: bool, base: str | None,
             derivative: bool = False, out: torch.Tensor | None = None):
    """Feature matrix F (batch, (K+1)·in) laid out as (batch, K+1, in), matching :func:`layer_weights`.

    With ``derivative=True`` also returns ``idx`` (batch, k+1, in): the slot of each local value
    (out-of-range ones point at the base slot K), the basis derivatives there (zero for
    out-of-range ones) and ``b'(x)``.
    """
    B, I = x.shape
    K = knots.shape[1] - k - 1
    loc = _local_fast(x, knots, k, derivative) if uniform else None
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


#: rows of the batch processed at a time: keeps the feature block near cache size and the
#: transient memory O(chunk) instead of O(batch)
CHUNK_ELEMENTS = 1 << 17


def _chunks(B: int, width: int):
    rows = max(32, CHUNK_ELEMENTS // max(width, 1))
    return [(i, min(i + rows, B)) for i in range(0, B, rows)]


class KANFunction(torch.autograd.Function):
    """Fused KAN layer: forward ``F·Wᵀ``; backward from ``x`` and (optionally) the stored ``F``.

    The basis is built block by block over the batch (:data:`CHUNK_ELEMENTS` features per
    block). With ``store=False`` no feature tensor outlives a block: backward rebuilds them.
    No per-edge (batch, out, in) tensor is ever built.
    """

    @staticmethod
    def forward(ctx, x, coef, scale_base, scale_spline, mask, knots, k, uniform, base, store):
        W = layer_weights(coef, scale_base, scale_spline, mask)
        O = W.shape[0]
        Wt = W.view(O, -1).t()
        B = x.shape[0]
        if store:  # store F once (like the GEMM floor stores its input); skips a rebuild later
            Fm = x.new_empty(B, Wt.shape[0])
            for a, b in _chunks(B, Wt.shape[0]):
                features(x[a:b], knots, k, uniform, base, out=Fm[a:b])
            y = Fm @ Wt
        else:
            Fm = None
            y = x.new_empty(B, O)
            for a, b in _chunks(B, Wt.shape[0]):
                torch.mm(features(x[a:b], knots, k, uniform, base), Wt, out=y[a:b])
        ctx.save_for_backward(x, coef, scale_base, scale_spline, mask, knots, Fm)
        ctx.k, ctx.uniform, ctx.base = k, uniform, base
        return y

    @staticmethod
    def backward(ctx, g):
        x, coef, scale_base, scale_spline, mask, knots, Fsaved = ctx.saved_tensors
        k, uniform, base = ctx.k, ctx.uniform, ctx.base
        need_x, need_c, need_sb, need_ss = ctx.needs_input_grad[:4]
        need_w = need_c or need_sb or need_ss
        O, I, K = coef.shape
        B = x.shape[0]
        g = g.contiguous()
        W2 = layer_weights(coef, scale_base, scale_spline, mask).view(O, -1)
        gx = torch.empty_like(x) if need_x else None
        have_F = Fsaved is not None
        if have_F:
            gW2 = g.t() @ Fsaved if need_w else None
            del Fsaved
        else:
            gW2 = torch.zeros_like(W2) if need_w else None
        for a, b in _chunks(B, W2.shape[1]):
            xc, gc_ = x[a:b], g[a:b]
            if have_F:
                if not need_x:
                    break
                idx, _, dvals = _local(xc, knots, k, uniform)
                db = resolve_base(base)[1](xc)
            else:
                if need_x:
                    Fm, idx, dvals, db = features(xc, knots, k, uniform, base, derivative=True)
                else:
                    Fm = features(xc, knots, k, uniform, base)
                if need_w:
                    gW2.addmm_(gc_.t(), Fm)
                del Fm
            if need_x:
                gF = (gc_ @ W2).view(b - a, K + 1, I)
                gx[a:b] = (gF.gather(1, idx) * dvals).sum(1) + gF[:, K] * db
        gc = gsb = gss = None
        if need_w:
            gW = gW2.view(O, K + 1, I).transpose(1, 2)  # (O, I, K+1)
            gWs = gW[..., :K]
            if need_c:
                gc = gWs * (mask * scale_spline).unsqueeze(-1)
            if need_ss:
                gss = (gWs * coef).sum(-1) * mask
            if need_sb:
                gsb = gW[..., K] * mask
        return gx, gc, gsb, gss, None, None, None, None, None, None


def kan_forward(x, coef, scale_base, scale_spline, mask, knots, k: int, uniform: bool,
                base: str | None, recompute: bool = False) -> torch.Tensor:
    """Apply the fused layer: x (batch, in) -> (batch, out). Shapes as in :class:`KANFunction`.

    ``recompute=False`` (default) keeps the feature matrix F from the forward pass for the
    weight gradient (one tensor of batch·in·(K+1) values: what the GEMM floor holds as its input);
    ``recompute=True`` keeps nothing but ``x`` and rebuilds F block by block in backward
    (memory O(block), one more basis evaluation). Under ``torch.no_grad`` nothing is kept.
    """
    store = not recompute and torch.is_grad_enabled() and (
        coef.requires_grad or scale_base.requires_grad or scale_spline.requires_grad)
    return KANFunction.apply(x, coef, scale_base, scale_spline, mask, knots, k, uniform, base,
                             bool(store))
