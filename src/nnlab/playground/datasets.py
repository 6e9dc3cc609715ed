"""Playground data: the toy classification sets of ``nl.data.toy`` plus 1-D and 2-D regression targets.

Every set is rescaled so its inputs lie in [-1, 1] (the default KAN grid range, lecture §6.2)
and split into train/test with a fixed seed. Regression targets are smooth functions on
[-1, 1]^d with Gaussian noise of standard deviation ``noise``; the 2-D ones include the
KAN paper's example f(x, y) = exp(sin(πx) + y²), which a KAN can recover symbolically.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import torch

__all__ = ["CLASSIFICATION", "REGRESSION", "Split", "make_split", "io_dims", "target_formula"]

#: names served by ``nl.data.toy`` (lecture §2.4's playground sets)
CLASSIFICATION = ("xor", "circles", "gaussians", "spiral", "moons")


@dataclass(frozen=True)
class _Target:
    dim: int
    fn: Callable[[torch.Tensor], torch.Tensor]
    formula: str


#: regression targets: name -> (input dimension, f, formula as text)
_TARGETS: dict[str, _Target] = {
    "sine_1d": _Target(1, lambda x: torch.sin(math.pi * x[:, 0]), "sin(πx)"),
    "parabola_1d": _Target(1, lambda x: x[:, 0] ** 2, "x²"),
    "step_1d": _Target(1, lambda x: torch.tanh(8 * x[:, 0]), "tanh(8x)"),
    "exp_sin_2d": _Target(2, lambda x: torch.exp(torch.sin(math.pi * x[:, 0]) + x[:, 1] ** 2),
                          "exp(sin(πx) + y²)"),
    "saddle_2d": _Target(2, lambda x: x[:, 0] * x[:, 1], "x·y"),
    "ripple_2d": _Target(2, lambda x: torch.sin(math.pi * x[:, 0]) * torch.cos(math.pi * x[:, 1]),
                         "sin(πx)·cos(πy)"),
}
REGRESSION = tuple(_TARGETS)


@dataclass(frozen=True)
class Split:
    """A train/test split. ``X_*`` (n, d) float32 in [-1, 1]; ``y_*`` (n,) int64 labels for
    classification or (n, 1) float32 targets for regression."""

    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor
    task: str
    n_classes: int  # 0 for regression


def target_formula(name: str) -> str | None:
    """The true formula of a regression target (text), or None for a classification set."""
    t = _TARGETS.get(name)
    return t.formula if t else None


def _check_name(name: str) -> None:
    if name not in CLASSIFICATION and name not in _TARGETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of "
                         f"{', '.join((*CLASSIFICATION, *REGRESSION))}")


def _generate(name: str, n: int, noise: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    if name in CLASSIFICATION:
        from nnlab import data

        X, y = data.toy(name, n, noise=noise, seed=seed)
        X = torch.as_tensor(X, dtype=torch.float32)
        y = torch.as_tensor(y).long().reshape(-1)
        scale = X.abs().max().clamp_min(1e-12)
        return X / scale, y
    t = _TARGETS[name]
    g = torch.Generator().manual_seed(seed)
    X = torch.rand(n, t.dim, generator=g) * 2 - 1
    y = t.fn(X) + noise * torch.randn(n, generator=g)
    return X, y.reshape(-1, 1)


def make_split(name: str, n: int, noise: float, train_ratio: float, seed: int) -> Split:
    """Generate ``n`` samples of data set ``name`` and split them ``train_ratio`` : rest."""
    _check_name(name)
    X, y = _generate(name, n, noise, seed)
    g = torch.Generator().manual_seed(seed + 1)
    perm = torch.randperm(X.shape[0], generator=g)
    n_train = max(1, min(X.shape[0] - 1, round(train_ratio * X.shape[0])))
    tr, te = perm[:n_train], perm[n_train:]
    task = "classification" if name in CLASSIFICATION else "regression"
    n_classes = io_dims(name)[1] if task == "classification" else 0
    return Split(X[tr], y[tr], X[te], y[te], task, n_classes)


@lru_cache(maxsize=None)
def io_dims(name: str) -> tuple[int, int]:
    """(inputs, outputs) of a model for data set ``name``: outputs = classes (cross-entropy
    logits) or 1 (regression)."""
    _check_name(name)
    if name in _TARGETS:
        return _TARGETS[name].dim, 1
    X, y = _generate(name, 64, 0.0, 0)
    return X.shape[1], max(2, int(y.max()) + 1)
