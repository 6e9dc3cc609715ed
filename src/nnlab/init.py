"""Weight initialisation (lecture §2.10: random init breaks the symmetry; Xavier and He keep the
gradient's scale from layer to layer).

* Xavier/Glorot (2010): Var(w) = 2 / (fan_in + fan_out)  -- for tanh/sigmoid-like activations;
* He/Kaiming (2015):    Var(w) = 2 / fan_in             -- for ReLU.

``dist="uniform"`` draws from U(-a, a) with a = sqrt(3·Var); ``dist="normal"`` from N(0, Var).
Fans follow PyTorch's layout for ``nn.Linear.weight`` of shape (out, in): fan_in = shape[1],
fan_out = shape[0] (times the receptive field for conv kernels (out, in, *k)). For a lecture-style
matrix A of shape (n_in, n_out) (``X·A``), initialise the transposed view: ``he_(A.T)``.

All functions work in place under ``torch.no_grad()`` and return the tensor.
"""
from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["fans", "xavier_", "he_", "initialize_", "SCHEMES"]

SCHEMES = ("he", "xavier", "default")
_DISTS = ("uniform", "normal")


def fans(w: torch.Tensor) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight of shape (out, in, *kernel)."""
    if not isinstance(w, torch.Tensor):
        raise TypeError(f"expected a weight tensor, got {type(w).__name__}")
    if w.ndim < 2:
        raise ValueError(f"fan_in/fan_out need a weight with >= 2 dims (out, in, ...), got shape "
                         f"{tuple(w.shape)}; biases are usually set to zero instead")
    receptive = math.prod(w.shape[2:]) if w.ndim > 2 else 1
    fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
    if fan_in == 0 or fan_out == 0:
        raise ValueError(f"cannot initialise an empty weight of shape {tuple(w.shape)}")
    return fan_in, fan_out


def _fill(w: torch.Tensor, var: float, dist: str, generator: torch.Generator | None) -> torch.Tensor:
    if dist not in _DISTS:
        raise ValueError(f"dist must be one of {_DISTS}, got {dist!r}")
    with torch.no_grad():
        if dist == "uniform":
            a = math.sqrt(3.0 * var)
            return w.uniform_(-a, a, generator=generator)
        return w.normal_(0.0, math.sqrt(var), generator=generator)


def _check_gain(gain: float) -> float:
    if not isinstance(gain, (int, float)) or isinstance(gain, bool) or not gain > 0 \
            or not math.isfinite(gain):
        raise ValueError(f"gain must be a positive finite number, got {gain!r}")
    return float(gain)


def xavier_(w: torch.Tensor, dist: str = "uniform", gain: float = 1.0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Xavier/Glorot: Var(w) = gain² · 2/(fan_in + fan_out) (§2.10). In place; returns ``w``."""
    fan_in, fan_out = fans(w)
    return _fill(w, _check_gain(gain) ** 2 * 2.0 / (fan_in + fan_out), dist, generator)


def he_(w: torch.Tensor, dist: str = "normal", gain: float = 1.0,
        generator: torch.Generator | None = None) -> torch.Tensor:
    """He/Kaiming for ReLU: Var(w) = gain² · 2/fan_in (§2.10). In place; returns ``w``.

    The default ``dist="normal"`` is the Gaussian of He et al. (2015).
    """
    fan_in, _ = fans(w)
    return _fill(w, _check_gain(gain) ** 2 * 2.0 / fan_in, dist, generator)


def initialize_(module: nn.Module, scheme: str = "he", dist: str | None = None,
                generator: torch.Generator | None = None) -> nn.Module:
    """Initialise every ``nn.Linear`` in ``module``: weights by ``scheme``, biases to zero.

    ``scheme``: "he", "xavier", or "default" (leave PyTorch's own initialisation untouched).
    ``dist`` defaults to each scheme's own default. Returns ``module``.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    if scheme == "default":
        return module
    fill = he_ if scheme == "he" else xavier_
    kw = {} if dist is None else {"dist": dist}
    for m in module.modules():
        if isinstance(m, nn.Linear):
            fill(m.weight, generator=generator, **kw)
            if m.bias is not None:
                with torch.no_grad():
                    m.bias.zero_()
    return module
