"""The LoRA wrapper around a frozen ``nn.Linear`` (lecture §5.3, Hu et al. 2021).

    h' = W₀x + b + (alpha/r)·B·A·x,     ΔW = (alpha/r)·B·A,     W_new = W₀ + ΔW

``W₀`` (out, in) and ``b`` stay frozen inside ``base_layer``; only ``A`` (r, in) and ``B`` (out, r)
train. ``A`` starts like an ``nn.Linear`` weight (Kaiming uniform) and ``B`` at zero, so the
wrapped layer starts exactly equal to the base layer.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .config import check_hparams

__all__ = ["LoRALinear", "lora_delta", "lora_linear"]


def lora_delta(A: torch.Tensor, B: torch.Tensor, scaling: float) -> torch.Tensor:
    """ΔW = scaling·B·A, shape (out, in), from A (r, in) and B (out, r)."""
    return (B @ A) * scaling


def lora_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                A: torch.Tensor, B: torch.Tensor, scaling: float,
                x_lora: torch.Tensor | None = None) -> torch.Tensor:
    """h' = x·W₀ᵀ + b + scaling·(x·Aᵀ)·Bᵀ for x (..., in) -> (..., out).

    Never forms the (out, in) product B·A; the scaled low-rank term is added into the base
    output by one fused ``addmm_`` (no extra (…, out) temporaries). ``x_lora`` replaces ``x`` on
    the LoRA branch (e.g. after dropout).
    """
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    xl = x2 if x_lora is None else x_lora.reshape(-1, x.shape[-1])
    out = F.linear(x2, weight, bias)  # (N, out); linear's backward needs x and W, not out
    low = F.linear(xl, A)  # (N, r)
    if out.dtype != low.dtype or B.dtype != low.dtype:  # autocast / mixed precision: no fused path
        return (out + F.linear(low, B) * scaling).view(*lead, out.shape[-1])
    out.addmm_(low, B.t(), alpha=scaling)
    return out.view(*lead, out.shape[-1])


class LoRALinear(nn.Module):
    r"""A frozen ``nn.Linear`` plus a trainable low-rank update (lecture §5.3).

    .. math:: h' = W_0 x + b + \frac{\alpha}{r} B A x

    Args:
        base: the pretrained ``nn.Linear`` (kept as ``self.base_layer``; its parameters are set to
            ``requires_grad=False``).
        rank: r, with ``0 < r < min(in_features, out_features)``.
        alpha: scale numerator; ``scaling = alpha / rank``.
        dropout: dropout on the LoRA branch input (training only).

    Shapes: input (..., in_features) -> output (..., out_features); ``lora_A`` (r, in),
    ``lora_B`` (out, r).

    Example::

        layer = LoRALinear(nn.Linear(16, 8), rank=2, alpha=4)
        layer(torch.randn(5, 16)).shape  # (5, 8), equal to the base layer's output at init
    """

    def __init__(self, base: nn.Linear, rank: int = 4, alpha: float = 8.0,
                 dropout: float = 0.0, *, name: str = "") -> None:
        super().__init__()
        where = f" for {name!r}" if name else ""
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear{where}, got {type(base).__name__}")
        check_hparams(rank, alpha, dropout)
        n_in, n_out = base.in_features, base.out_features
        if rank >= min(n_in, n_out):
            raise ValueError(
                f"rank={rank} is too large for the layer{where} of shape (out={n_out}, in={n_in}): "
                f"LoRA needs 0 < rank < min(in, out) = {min(n_in, n_out)}; use a smaller rank or "
                "exclude this layer")
        self.base_layer = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.rank = rank
        self.alpha = float(alpha)
        self.scaling = self.alpha / rank
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, n_in, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.zeros(n_out, rank, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # exactly nn.Linear's weight init
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False

    @property
    def in_features(self) -> int:
        return self.base_layer.in_features

    @property
    def out_features(self) -> int:
        return self.base_layer.out_features

    @property
    def weight(self) -> torch.Tensor:
        """W₀ (or W₀ + ΔW when merged), so code that reads ``.weight`` keeps working."""
        return self.base_layer.weight

    @property
    def bias(self) -> torch.Tensor | None:
        return self.base_layer.bias

    def delta_weight(self) -> torch.Tensor:
        """ΔW = (alpha/r)·B·A, shape (out, in)."""
        return lora_delta(self.lora_A, self.lora_B, self.scaling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base_layer(x)
        x_lora = None if isinstance(self.dropout, nn.Identity) else self.dropout(x)
        if type(self.base_layer) is nn.Linear and not self.base_layer._forward_hooks:
            return lora_linear(x, self.base_layer.weight, self.base_layer.bias, self.lora_A,
                               self.lora_B, self.scaling, x_lora)
        # a Linear subclass or a hooked layer: call it as it is, then add the low-rank term
        xl = x if x_lora is None else x_lora
        return self.base_layer(x) + F.linear(F.linear(xl, self.lora_A), self.lora_B) * self.scaling

    def extra_repr(self) -> str:
        return (f"in={self.in_features}, out={self.out_features}, rank={self.rank}, "
                f"alpha={self.alpha:g}, merged={self.merged}")
