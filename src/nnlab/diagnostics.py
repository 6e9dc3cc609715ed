"""Gradient diagnostics (lecture §2.10, §4): see vanishing and exploding gradients layer by layer.

In a deep sigmoid network ∂L/∂A_1 is a product of many factors f'(S_i)·A_iᵀ with σ' <= 1/4, so the
first layer's gradient is orders of magnitude below the last one's. ReLU with He init, batch
normalisation and residual connections (∂H/∂x = ∂F/∂x + I) close the gap.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from .layers.dense import Dense

__all__ = ["gradient_norms"]


def _weight(m: nn.Module) -> torch.Tensor:
    return m.A if isinstance(m, Dense) else m.weight


def gradient_norms(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   loss: str | Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = "mse",
                   include_bias: bool = False) -> dict[str, float]:
    """Per-layer gradient norms ‖∂L/∂A‖_F for every ``nn.Linear`` and ``nl.Dense`` in ``model``.

    Args:
        model: any module; layers are reported in the order the forward pass calls them
            (input → output; a residual projection comes where it is called).
        x: input batch; y: targets.
        loss: "mse", "cross_entropy", or a callable ``(output, y) -> scalar``.
        include_bias: also include the bias gradient, ‖(∂L/∂A, ∂L/∂b)‖.

    Returns an ordered dict {module name: norm}. The model's ``.grad`` fields are not touched
    (gradients come from ``torch.autograd.grad``); train/eval mode is left as it is.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    from .training.data_loading import as_source, check_against_model
    from .training.losses import get_loss

    spec = get_loss(loss)
    loss_fn = spec.fn
    names = {m: n for n, m in model.named_modules() if isinstance(m, (nn.Linear, Dense))}
    if not names:
        raise ValueError("model has no nn.Linear or nl.Dense layer to report on")
    # the trainer's checks: finite, matching rows, y fits the output (else torch fails deep, or
    # a NaN input comes back as NaN norms)
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.get_default_dtype())
    src = as_source((x, y), "data", spec, dtype)
    check_against_model(src, model, spec)
    x, y = src.X, src.y
    order: list[nn.Module] = []

    def hook(m: nn.Module, *_: Any) -> None:
        if m not in order:
            order.append(m)

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        out = model(x)
    finally:
        for h in handles:
            h.remove()
    value = loss_fn(out, y)
    if not isinstance(value, torch.Tensor) or value.numel() != 1:
        raise ValueError("loss must return a scalar tensor")
    tensors: list[torch.Tensor] = []
    for m in order:
        tensors.append(_weight(m))
        b = m.b if isinstance(m, Dense) else m.bias
        if include_bias and b is not None:
            tensors.append(b)
    grads = torch.autograd.grad(value, tensors, allow_unused=True)
    it = iter(zip(tensors, grads))
    result: dict[str, float] = {}
    for m in order:
        sq = 0.0
        n_parts = 2 if include_bias and (m.b if isinstance(m, Dense) else m.bias) is not None else 1
        for _ in range(n_parts):
            _, g = next(it)
            if g is not None:
                sq += float(g.detach().pow(2).sum())
        result[names[m] or type(m).__name__] = sq ** 0.5
    return result
