"""Checks at the boundary where user data enters: clear errors that name the problem."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["as_tensor", "check_finite", "check_matrix", "check_xy"]


def as_tensor(a: Any, name: str = "X", dtype: torch.dtype | None = None) -> torch.Tensor:
    """Convert arrays, lists and tensors to a tensor; reject strings/objects with a clear message."""
    if isinstance(a, torch.Tensor):
        t = a
    else:
        try:
            arr = np.asarray(a)
        except Exception as e:  # ragged lists etc.
            raise TypeError(f"{name} could not be read as a numeric array: {e}") from None
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise TypeError(f"{name} must be numeric, got an array of dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if dtype is not None:
        t = t.to(dtype)
    elif t.is_floating_point() and t.dtype == torch.float64 and not isinstance(a, torch.Tensor):
        t = t.to(torch.get_default_dtype())
    return t


def check_finite(t: torch.Tensor, name: str = "X") -> torch.Tensor:
    """Raise ``ValueError`` if ``t`` holds NaN or inf, saying how many and where the first one is."""
    if t.is_floating_point() or t.is_complex():
        if bool(torch.isfinite(t.sum())):  # NaN/inf propagate into the sum: one pass, no mask
            return t
        bad = ~torch.isfinite(t)  # a NaN/inf, or finite values whose sum overflowed
        if bool(bad.any()):
            n = int(bad.sum())
            first = tuple(int(i) for i in bad.nonzero()[0])
            raise ValueError(f"{name} contains {n} NaN/inf value(s) (first at index {first}); "
                             "clean or drop those rows first")
    return t


def check_matrix(t: torch.Tensor, name: str = "X", n_cols: int | None = None) -> torch.Tensor:
    """Require a non-empty 2-D (n_samples, n_features) tensor, optionally with ``n_cols`` columns."""
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows)")
    if n_cols is not None and t.shape[1] != n_cols:
        raise ValueError(f"{name} has {t.shape[1]} columns but {n_cols} are expected")
    return t


def check_xy(X: Any, y: Any, x_name: str = "X", y_name: str = "y") -> tuple[torch.Tensor, torch.Tensor]:
    """Convert and check a supervised pair: numeric, finite, non-empty, same number of rows."""
    Xt = check_finite(as_tensor(X, x_name), x_name)
    yt = check_finite(as_tensor(y, y_name), y_name)
    if Xt.ndim == 0 or Xt.shape[0] == 0:
        raise ValueError(f"{x_name} is empty (0 rows)")
    if yt.ndim == 0 or yt.shape[0] != Xt.shape[0]:
        n_y = 0 if yt.ndim == 0 else yt.shape[0]
        raise ValueError(f"{x_name} has {Xt.shape[0]} rows but {y_name} has {n_y}; they must match")
    return Xt, yt
