r"""The KAN layer on the Triton route (CUDA): seven launches per training step, no host sync.

A GPU step is bound by launches, not arithmetic (bench/results/gpu.md), so this path does the
whole layer (lecture §6.2, :math:`y = F\,W^\top`) in the fewest kernels:

* forward: pack ``W`` (O, K+1, I) in one kernel, the feature matrix ``F`` in one kernel (which
  also ORs the grid-range / NaN flags into a device word: the range check costs no extra pass),
  then ``y = F Wᵀ`` (cuBLAS);
* backward: ``∂L/∂W = gᵀF`` and ``∂L/∂F = g W`` (cuBLAS), ``∂L/∂x`` in one kernel from
  ``∂L/∂F`` and the recomputed basis derivatives, and the parameter gradients
  ``∂L/∂c, ∂L/∂w^s, ∂L/∂w^b`` from ``∂L/∂W`` in one kernel.

The flag word is read back asynchronously (pinned copy + event) every :data:`CHECK_EVERY` calls and
turned into a :class:`~nnlab.kan.layer.GridRangeWarning` once it has arrived; nothing is read
while a CUDA graph is being captured. With CPU tensors (Triton's interpreter, tests) the flag is
read at once.
"""
from __future__ import annotations

import logging
import os
import warnings
import weakref

import torch

from . import routes

__all__ = ["wanted", "layer_forward", "CHECK_EVERY"]

#: calls between two asynchronous reads of a layer's range flag on a GPU
CHECK_EVERY = 16
#: why the fused path was turned off on this machine (a Triton build failure), or None
_BROKEN: str | None = None


class _RangeWatch:
    """A layer's device flag word and the pending asynchronous read of it."""

    def __init__(self, device: torch.device):
        self.flag = torch.zeros(1, dtype=torch.int32, device=device)
        self.calls = 0
        self.pending = None  # (pinned host copy, event)


_WATCH: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # not pickled with the layer


def _warn(layer, bits: int) -> None:
    from .layer import GridRangeWarning

    layer._warned_range = True
    what = ("NaN/inf inputs reached it (their outputs are NaN)" if bits & 2 else
            "inputs fall outside the grid range")
    warnings.warn(
        f"KANLayer({layer.in_dim}->{layer.out_dim}): {what} (seen on a recent batch); splines "
        "are zero beyond the extended knots and only the base branch acts there. Call "
        "update_grid(x) with representative inputs (warned once per layer).",
        GridRangeWarning, stacklevel=4)


def _watch(layer, x: torch.Tensor):
    """The flag word for this call (or None once the layer has warned), reading back old ones."""
    if layer._warned_range:
        return None
    w = _WATCH.get(layer)
    if w is None or w.flag.device != x.device:
        w = _WATCH[layer] = _RangeWatch(x.device)
    if x.device.type != "cuda":
        return w.flag
    if torch.cuda.is_current_stream_capturing():
        return w.flag
    if w.pending is not None:
        host, event = w.pending
        if event.query():
            w.pending = None
            bits = int(host.item())
            if bits:
                _warn(layer, bits)
                return None
    w.calls += 1
    if w.calls % CHECK_EVERY == 1 and w.pending is None:
        host = torch.empty(1, dtype=torch.int32, pin_memory=True)
        w.pending = (host, None)
        return w  # the read is queued after this call's kernel (see _after)
    return w.flag


def _after(layer, w) -> None:
    """Queue the asynchronous read of the flag word (after the kernel that writes it)."""
    host, _ = w.pending
    host.copy_(w.flag, non_blocking=True)
    event = torch.cuda.Event()
    event.record()
    w.pending = (host, event)


class _TritonKAN(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, coef, scale_base, scale_spline, mask, fast, k, base, flag, store):
        y, F, W = _forward(x, coef, scale_base, scale_spline, mask, fast, k, base, flag)
        ctx.save_for_backward(x, coef, scale_spline, mask, F if store else None, W)
        ctx.fast, ctx.k, ctx.base = fast, k, base
        return y

    @staticmethod
    def backward(ctx, g):
        from . import gpu

        x, coef, scale_spline, mask, F, W = ctx.saved_tensors
        fast, k, base = ctx.fast, ctx.k, ctx.base
        need_x, need_c, need_sb, need_ss = ctx.needs_input_grad[:4]
        O, I, K = coef.shape
        B = x.shape[0]
        g = g.contiguous()
        gx = gc = gsb = gss = None
        if need_c or need_sb or need_ss:
            if F is None:  # recompute=True: the basis is rebuilt, not stored
                F = x.new_empty(B, K + 1, I)
                routes.fill_features(fast, x, k, K, base, F)
            gW = g.t() @ F.view(B, -1)
            gc = torch.empty_like(coef) if need_c else None
            gsb = torch.empty_like(scale_spline) if need_sb else None
            gss = torch.empty_like(scale_spline) if need_ss else None
            gpu.unpack_grads(gW, coef, scale_spline, mask, gc, gsb, gss)
        if need_x:
            gx = torch.empty_like(x)
            routes.grad_x(fast, g @ W.view(O, -1), x, k, K, base, gx)
        return gx, gc, gsb, gss, None, None, None, None, None, None


def _forward(x, coef, scale_base, scale_spline, mask, fast, k, base, flag):
    from . import gpu

    O, I, K = coef.shape
    B = x.shape[0]
    W = coef.new_empty(O, K + 1, I)
    gpu.pack_weights(coef, scale_base, scale_spline, mask, W)
    F = x.new_empty(B, K + 1, I)
    gpu.features(x, fast.t0, fast.inv_h, fast.M, k, K, base, F, flag)
    if gpu.base_code(base) == gpu.BASE_TORCH:
        from .base import resolve_base
        F[:, K] = resolve_base(base)[0](x)
    return F.view(B, -1) @ W.view(O, -1).t(), F, W


def interpreting() -> bool:
    """``NNLAB_TRITON=interpret``: CPU tensors take the Triton route through its interpreter."""
    return os.environ.get("NNLAB_TRITON", "") == "interpret"


def wanted(x) -> bool:
    """Worth trying :func:`layer_forward`? (a CUDA tensor, or CPU ones under the interpreter)"""
    return _BROKEN is None and isinstance(x, torch.Tensor) and (
        x.is_cuda or os.environ.get("NNLAB_TRITON", "") == "interpret")


def layer_forward(layer, x) -> torch.Tensor | None:
    """``layer``'s spline+base part on the Triton route, or None where that route does not apply
    (then the general code runs, with its own checks)."""
    if not (isinstance(x, torch.Tensor) and x.ndim == 2 and x.shape[1] == layer.in_dim
            and x.shape[0] > 0 and layer._uniform and x.dtype == layer.coef.dtype
            == layer.mask.dtype and x.device == layer.coef.device):
        return None
    if x.is_cuda and torch.is_autocast_enabled("cuda"):  # mixed precision: the general code
        return None
    x = x.contiguous()
    fast = routes.setup(x, layer.knots, layer.k, True)
    if fast is None or fast.kind != "triton":
        return None
    if x.device.type == "cpu":  # the interpreter (tests): the host checks are free here
        x = layer._check_input(x)
        w = None
    else:
        w = _watch(layer, x)
    flag = w.flag if isinstance(w, _RangeWatch) else w
    mask = layer.mask.contiguous()
    params = (layer.coef.contiguous(), layer.scale_base.contiguous(), layer.scale_spline.contiguous())
    try:
        if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
            store = not layer.recompute and any(p.requires_grad for p in params)
            y = _TritonKAN.apply(x, *params, mask, fast, layer.k, layer.base, flag, store)
        else:
            y = _forward(x, *params, mask, fast, layer.k, layer.base, flag)[0]
    except Exception as e:  # a Triton build failure in forward on this machine: the general code instead
        if not type(e).__module__.startswith("triton"):
            raise
        global _BROKEN
        _BROKEN = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        logging.getLogger("nnlab.kan").warning(
            "the fused Triton KAN layer failed to build (%s); using the general code path", _BROKEN)
        return None
    if isinstance(w, _RangeWatch):
        _after(layer, w)
    return y
