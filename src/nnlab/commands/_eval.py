"""Held-out risk and accuracy of a model on ``(X, y)``, for before/after reports."""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

__all__ = ["evaluate", "n_params"]


@torch.no_grad()
def evaluate(model: nn.Module, X: torch.Tensor, y: torch.Tensor, task: str) -> dict[str, Any]:
    """``{"risk": mean loss, "accuracy": fraction correct or None}`` (cross-entropy / MSE, §1.1)."""
    was = model.training
    model.eval()
    out = model(X)
    model.train(was)
    if task == "classification":
        return {"risk": float(nn.functional.cross_entropy(out, y)),
                "accuracy": float((out.argmax(1) == y).float().mean())}
    return {"risk": float(nn.functional.mse_loss(out, y.reshape(out.shape))), "accuracy": None}


def n_params(model: nn.Module, trainable: bool = False) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable)
