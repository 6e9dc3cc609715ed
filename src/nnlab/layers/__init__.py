"""Layers built from the lecture's formulas: Dense (§2.7), LowRank (§2.9), MLP (§2.4), Residual (§4.2),
Standardize (input standardisation saved with the model)."""
from __future__ import annotations

from .dense import Dense, DenseFunction, dense_backward, dense_forward
from .lowrank import LowRank, truncated_svd
from .mlp import MLP
from .residual import Residual
from .standardize import Standardize, Standardized

__all__ = ["Dense", "DenseFunction", "dense_forward", "dense_backward", "LowRank", "truncated_svd",
           "MLP", "Residual", "Standardize", "Standardized"]
