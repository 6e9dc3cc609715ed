r"""Triton kernels for the KAN layer on GPUs: the basis in one kernel feeding cuBLAS, and a fused
∂L/∂x kernel that recomputes the basis derivatives (lecture §6.2, same closed form as the CPU).

On a uniform extended grid ``t_m = t0 + m h`` each input has ``u = (x - t0)/h`` (float64),
``s = ⌊u⌋``, ``f = u - s`` and

.. math::
   B_{s-k+r}(x) = \sum_p M_{p,r} f^p, \qquad B'_{s-k+r}(x) = \frac{1}{h}\sum_p dM_{p,r} f^p

(``M`` = :func:`nnlab.kan.spline.uniform_basis_matrix`). :func:`features` writes the whole
slot-major feature matrix ``F`` (batch, K+1, in) in one launch (slot K: the base branch, fused for
``silu``), ``y = F Wᵀ`` is one cuBLAS GEMM, and in backward :func:`backward_x` gathers
``∂L/∂x = Σ_r ∂L/∂F_{s-k+r} B'_{s-k+r}(x) + ∂L/∂F_K b'(x)`` in one launch from ``∂L/∂F = g W``.
Nothing reads a device value on the host (no synchronisation; CUDA-graph capturable).

Kernels are decorated lazily: with CPU tensors they run in Triton's interpreter (that is how CI,
which has no GPU, tests them: ``NNLAB_TRITON=interpret`` routes CPU layers here).
``NNLAB_TRITON=0`` turns the GPU kernels off (eager PyTorch then runs on the GPU).
"""
import functools
import os

import torch

import triton.language as tl  # optional: only nnlab.kan.routes imports this module, lazily

__all__ = ["available", "usable", "interpret_on_cpu", "features", "backward_x", "pack_weights",
           "unpack_grads"]

BASE_ZERO, BASE_SILU, BASE_TORCH = 0, 1, 2


def available() -> bool:
    """Is Triton usable? (This module imports only where it is.)"""
    return True


def interpret_on_cpu() -> bool:
    """``NNLAB_TRITON=interpret``: CPU layers use these kernels through Triton's interpreter."""
    return os.environ.get("NNLAB_TRITON", "") == "interpret" and available()


def usable(x: torch.Tensor, k: int) -> bool:
    """Can the Triton kernels handle ``x``? (CUDA, or CPU in interpreter mode; float32/float64)."""
    if x.dtype not in (torch.float32, torch.float64) or k > 8:
        return False
    if x.device.type == "cpu":
        return interpret_on_cpu()
    return x.device.type == "cuda" and os.environ.get("NNLAB_TRITON", "1") != "0" and available()


def _features_kernel(x_ptr, t0_ptr, ih_ptr, m_ptr, f_ptr, flag_ptr, B, I, hi, ulo, uhi,
                     K: tl.constexpr, KO: tl.constexpr, BASE: tl.constexpr, FLAG: tl.constexpr,
                     INTERPRET: tl.constexpr, BLOCK_B: tl.constexpr, BLOCK_I: tl.constexpr):
    rb = (tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B))[:, None]  # F > 2³¹
    ri = (tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I))[None, :]
    inb = (rb < B) & (ri < I)
    x = tl.load(x_ptr + rb * I + ri, mask=inb, other=0.0)
    t0 = tl.load(t0_ptr + ri, mask=ri < I, other=0.0)
    ih = tl.load(ih_ptr + ri, mask=ri < I, other=1.0)
    u = (x.to(tl.float64) - t0) * ih
    if FLAG:  # bit 0: a point outside the grid range [ulo, uhi] in u; bit 1: NaN / inf
        out = inb & ((u < ulo) | (u > uhi))
        bad = inb & ((x - x) != 0.0)  # NaN for NaN and ±inf
        bits = out.to(tl.int32) | (bad.to(tl.int32) * 2)
        if INTERPRET:  # (library reductions cannot run in the lazily set-up interpreter)
            tl.atomic_or(flag_ptr + rb * 0 + ri * 0, bits, mask=bits != 0)
        else:  # one atomic per program
            tl.atomic_or(flag_ptr, tl.max(tl.max(bits, axis=1), axis=0))
    u = tl.where(u >= -1.0, u, -1.0)  # also NaN -> -1: every basis value 0
    u = tl.minimum(u, hi)
    sf = tl.floor(u)
    s = sf.to(tl.int32)
    f = (u - sf).to(x.dtype)
    row = f_ptr + rb * ((K + 1) * I) + ri
    for j in tl.static_range(K):
        r = j - s + KO  # which local basis function lands on slot j
        ok = (r >= 0) & (r <= KO)
        rc = tl.minimum(tl.maximum(r, 0), KO)
        a = tl.load(m_ptr + KO * (KO + 1) + rc)
        for q in tl.static_range(KO):
            a = a * f + tl.load(m_ptr + (KO - 1 - q) * (KO + 1) + rc)
        tl.store(row + j * I, tl.where(ok, a, 0.0).to(x.dtype), mask=inb)
    if BASE == 0:
        tl.store(row + K * I, x * 0.0, mask=inb)
    if BASE == 1:
        sg = 1.0 / (1.0 + tl.exp(-x))  # (no tl.sigmoid: library @jit functions break the lazy
        tl.store(row + K * I, x * sg, mask=inb)  # interpreter set-up of _kernels)


def _backward_x_kernel(g_ptr, x_ptr, t0_ptr, ih_ptr, dm_ptr, term_ptr, gx_ptr, B, I, hi,
                       K: tl.constexpr, KO: tl.constexpr, BASE: tl.constexpr,
                       BLOCK_B: tl.constexpr, BLOCK_I: tl.constexpr):
    rb = (tl.program_id(0).to(tl.int64) * BLOCK_B + tl.arange(0, BLOCK_B))[:, None]  # F > 2³¹
    ri = (tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I))[None, :]
    inb = (rb < B) & (ri < I)
    x = tl.load(x_ptr + rb * I + ri, mask=inb, other=0.0)
    t0 = tl.load(t0_ptr + ri, mask=ri < I, other=0.0)
    ih = tl.load(ih_ptr + ri, mask=ri < I, other=1.0)
    u = (x.to(tl.float64) - t0) * ih
    u = tl.where(u >= -1.0, u, -1.0)
    u = tl.minimum(u, hi)
    sf = tl.floor(u)
    s = sf.to(tl.int32)
    f = (u - sf).to(x.dtype)
    row = g_ptr + rb * ((K + 1) * I) + ri
    acc = f * 0.0
    for r in tl.static_range(KO + 1):
        j = s - KO + r
        ok = inb & (j >= 0) & (j < K)
        g = tl.load(row + j * I, mask=ok, other=0.0)
        d = tl.load(dm_ptr + (KO - 1) * (KO + 1) + r)
        for q in tl.static_range(KO - 1):
            d = d * f + tl.load(dm_ptr + (KO - 2 - q) * (KO + 1) + r)
        acc += g * d
    acc = acc * ih.to(x.dtype)
    if BASE == 1:  # silu'(x) = σ(x)(1 + x(1 - σ(x)))
        gk = tl.load(row + K * I, mask=inb, other=0.0)
        sg = 1.0 / (1.0 + tl.exp(-x))
        acc += gk * sg * (1.0 + x * (1.0 - sg))
    if BASE == 2:
        acc += tl.load(term_ptr + rb * I + ri, mask=inb, other=0.0)
    tl.store(gx_ptr + rb * I + ri, acc, mask=inb)


def _pack_kernel(c_ptr, sb_ptr, ss_ptr, m_ptr, w_ptr, I, K,
                 BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr):
    """W[o, j, i] = m·w^s·c[o, i, j] (j < K), W[o, K, i] = m·w^b: the packed weight, one pass."""
    o = tl.program_id(0).to(tl.int64)
    ri = (tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I))[:, None]
    rj = (tl.program_id(2) * BLOCK_J + tl.arange(0, BLOCK_J))[None, :]
    oi = o * I + ri
    m = tl.load(m_ptr + oi, mask=ri < I, other=0.0)
    ss = tl.load(ss_ptr + oi, mask=ri < I, other=0.0)
    sb = tl.load(sb_ptr + oi, mask=ri < I, other=0.0)
    c = tl.load(c_ptr + oi * K + rj, mask=(ri < I) & (rj < K), other=0.0)
    w = tl.where(rj < K, c * (m * ss), m * sb)
    tl.store(w_ptr + (o * (K + 1) + rj) * I + ri, w, mask=(ri < I) & (rj <= K))


def _unpack_kernel(gw_ptr, c_ptr, ss_ptr, m_ptr, gc_ptr, gsb_ptr, gss_ptr, I, K,
                   NEED_C: tl.constexpr, NEED_SB: tl.constexpr, NEED_SS: tl.constexpr,
                   BLOCK_I: tl.constexpr):
    """From ∂L/∂W (O, K+1, I): ∂L/∂c = ∂L/∂W_j·m·w^s, ∂L/∂w^s = m·Σ_j ∂L/∂W_j·c_j,
    ∂L/∂w^b = m·∂L/∂W_K (the chain rule through :func:`_pack_kernel`)."""
    o = tl.program_id(0).to(tl.int64)
    ri = tl.program_id(1) * BLOCK_I + tl.arange(0, BLOCK_I)
    ok = ri < I
    oi = o * I + ri
    m = tl.load(m_ptr + oi, mask=ok, other=0.0)
    ms = m * tl.load(ss_ptr + oi, mask=ok, other=0.0)
    acc = m * 0.0
    for j in range(0, K):
        g = tl.load(gw_ptr + (o * (K + 1) + j) * I + ri, mask=ok, other=0.0)
        if NEED_C:
            tl.store(gc_ptr + oi * K + j, g * ms, mask=ok)
        if NEED_SS:
            acc += g * tl.load(c_ptr + oi * K + j, mask=ok, other=0.0)
    if NEED_SS:
        tl.store(gss_ptr + oi, acc * m, mask=ok)
    if NEED_SB:
        gk = tl.load(gw_ptr + (o * (K + 1) + K) * I + ri, mask=ok, other=0.0)
        tl.store(gsb_ptr + oi, gk * m, mask=ok)


@functools.lru_cache(maxsize=2)
def _kernels(interpret: bool):
    """(features, backward_x) jitted for the GPU, or for Triton's interpreter (CPU tensors)."""
    import triton
    old = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1" if interpret else "0"
    try:
        return tuple(triton.jit(f) for f in (_features_kernel, _backward_x_kernel, _pack_kernel,
                                             _unpack_kernel))
    finally:
        if old is None:
            del os.environ["TRITON_INTERPRET"]
        else:
            os.environ["TRITON_INTERPRET"] = old


def _launch(B: int, I: int):
    bi = min(64, max(16, 1 << (max(I, 1) - 1).bit_length()))
    bb = max(1, 1024 // bi)
    return (-(-B // bb), -(-I // bi)), bb, bi


def base_code(base) -> int:
    return {None: BASE_ZERO, "silu": BASE_SILU}.get(base, BASE_TORCH)


def features(x, t0, inv_h, M, k: int, K: int, base, out, flag=None) -> None:
    """Fill ``out`` (B, K+1, I) contiguous; slot K = silu(x) / 0, or left for torch (other bases).

    ``t0``, ``inv_h``: (I,) float64 on x's device; ``M``: (k+1, k+1) in x's dtype and device.
    ``flag``: an int32 tensor of one element on x's device, or None: the kernel ORs into it
    bit 0 when a point lies outside the grid range ``[t_k, t_K]`` (slack 1e-6 of the range) and
    bit 1 when one is NaN/inf -- the grid-range check with no extra pass and no host sync.
    """
    B, I = x.shape
    fk = _kernels(x.device.type == "cpu")[0]
    grid, bb, bi = _launch(B, I)
    G = K - k
    slack = 1e-6 * G
    fk[grid](x, t0, inv_h, M, out, x if flag is None else flag, B, I, float(K + k + 1),
             k - slack, K + slack, K=K, KO=k, BASE=base_code(base), FLAG=flag is not None,
             INTERPRET=x.device.type == "cpu", BLOCK_B=bb, BLOCK_I=bi)


def _tiles(I: int, K: int):
    bi = min(64, max(16, 1 << (max(I, 1) - 1).bit_length()))
    bj = min(64, max(16, 1 << K.bit_length()))
    return bi, bj


def pack_weights(coef, scale_base, scale_spline, mask, out) -> None:
    """``out`` (O, K+1, I) = the packed weight of :func:`nnlab.kan.kernel.layer_weights`."""
    O, I, K = coef.shape
    bi, bj = _tiles(I, K + 1)
    pk = _kernels(coef.device.type == "cpu")[2]
    pk[(O, -(-I // bi), -(-(K + 1) // bj))](coef, scale_base, scale_spline, mask, out, I, K,
                                            BLOCK_I=bi, BLOCK_J=bj)


def unpack_grads(gW, coef, scale_spline, mask, gc, gsb, gss) -> None:
    """Parameter gradients from ``gW`` (O, K+1, I) = ∂L/∂W; ``gc`` / ``gsb`` / ``gss`` are
    (O, I, K) / (O, I) / (O, I) outputs, or None when not needed."""
    O, I, K = coef.shape
    bi = _tiles(I, K)[0]
    uk = _kernels(coef.device.type == "cpu")[3]
    uk[(O, -(-I // bi))](gW, coef, scale_spline, mask, gW if gc is None else gc,
                        gW if gsb is None else gsb, gW if gss is None else gss, I, K,
                        NEED_C=gc is not None, NEED_SB=gsb is not None, NEED_SS=gss is not None,
                        BLOCK_I=bi)


def backward_x(gF, x, t0, inv_h, dM, k: int, K: int, base, term, out) -> None:
    """``out`` (B, I) = ∂L/∂x from ``gF`` (B, K+1, I); ``term`` = gF[:, K]·b'(x) for bases other
    than silu / None (computed by torch), else ignored."""
    B, I = x.shape
    bk = _kernels(x.device.type == "cpu")[1]
    grid, bb, bi = _launch(B, I)
    code = base_code(base)
    bk[grid](gF, x, t0, inv_h, dM, term if code == BASE_TORCH else x, out, B, I, float(K + k + 1),
             K=K, KO=k, BASE=code, BLOCK_B=bb, BLOCK_I=bi)
