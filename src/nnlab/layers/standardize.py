"""Input standardisation as a layer, so that preprocessing travels with the model it was fitted for.

``nnlab train`` standardises CSV features, z_j = (x_j − μ_j) / σ_j with the training set's mean
μ_j and standard deviation σ_j (lecture §2.10: inputs on one scale keep the gradients balanced).
A network trained on z silently gives wrong answers on raw x, so the saved model carries the
transform: :class:`Standardize` holds μ and σ as buffers and :class:`Standardized` puts it in front
of the network. Both are ordinary torch ops (``sub``, ``div``): they script, trace and export.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["Standardize", "Standardized", "standardize"]

MIN_STD = 1e-12  # a constant feature gets σ = 1e-12 (its z is 0), never a division by zero


def standardize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """z = (x − μ) / σ, feature-wise: x (B, d), μ and σ (d,)."""
    return (x - mean) / std


class Standardize(nn.Module):
    """z = (x − μ) / σ per feature, with μ and σ as buffers (saved in ``state_dict``, not trained).

    Args:
        mean, std: 1-D sequences or tensors of the same length d (σ > 0, all finite).

    Input (B, d) -> output (B, d), in the buffers' dtype (float32 unless converted).
    """

    def __init__(self, mean: Any, std: Any) -> None:
        super().__init__()
        mean = torch.as_tensor(mean, dtype=torch.float32).detach().clone().reshape(-1)
        std = torch.as_tensor(std, dtype=torch.float32).detach().clone().reshape(-1)
        if mean.shape != std.shape or mean.numel() == 0:
            raise ValueError(f"mean and std must be non-empty and of one length, got {tuple(mean.shape)} "
                             f"and {tuple(std.shape)}")
        if not (bool(torch.isfinite(mean).all()) and bool(torch.isfinite(std).all()) and bool((std > 0).all())):
            raise ValueError("mean must be finite and std finite and > 0")
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    @classmethod
    def fit(cls, X: torch.Tensor) -> "Standardize":
        """μ = mean of each column of ``X`` (n, d), σ = its sample standard deviation (≥ 1e-12)."""
        X = torch.as_tensor(X, dtype=torch.float32)
        if X.ndim != 2 or X.shape[0] == 0:
            raise ValueError(f"X must be 2-D (n_samples, n_features) with rows, got {tuple(X.shape)}")
        std = X.std(0) if X.shape[0] > 1 else torch.ones(X.shape[1])
        return cls(X.mean(0), torch.nan_to_num(std, nan=1.0).clamp_min(MIN_STD))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = self.mean.shape[0]
        if x.ndim == 0 or x.shape[-1] != d:  # else (n, 1) broadcast silently to (n, d)
            raise ValueError(f"Standardize expects X of shape (batch, {d}) (the raw features it was fit "
                             f"on), got {tuple(x.shape)}")
        if x.dtype != self.mean.dtype:  # raw data often comes as float64 or int (numpy, CSV)
            x = x.to(self.mean.dtype)
        return standardize(x, self.mean, self.std)

    def as_dict(self) -> dict[str, list[float]]:
        """``{"mean": [...], "std": [...]}`` (exact: float32 values are exact in JSON's doubles)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def extra_repr(self) -> str:
        return f"features={self.mean.shape[0]}"


class Standardized(nn.Module):
    """``net(standardize(x))``: a network together with the input standardisation it was trained
    behind. ``.standardize`` is the :class:`Standardize`, ``.net`` the network; input (B, d) of raw
    features."""

    def __init__(self, standardize: Standardize, net: nn.Module) -> None:
        super().__init__()
        self.standardize = standardize
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.standardize(x))
