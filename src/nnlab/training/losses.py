"""Loss functions by name, and the checks that tie targets ``y`` to the model's output.

The training objective is the empirical risk (lecture §1.1), the mean loss over a batch:

* ``"mse"``: mean over all elements of (f(x) − y)²; ``y`` has the output's shape
  (a 1-D ``y`` is accepted for a one-column output and viewed as ``(n, 1)``);
* ``"cross_entropy"``: mean over the batch of −log softmax(f(x))_y; ``y`` holds integer class
  labels in ``[0, n_classes)``, shape ``(n,)``, with output ``(n, n_classes)`` logits;
* a callable ``loss(output, y) -> scalar tensor`` (it should average over the batch, so that
  distributed and single-process runs agree; no shape checks are made).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

__all__ = ["LossSpec", "get_loss", "names", "check_targets"]


@dataclass(frozen=True)
class LossSpec:
    """A resolved loss: its ``name``, ``fn(output, y)``, ``kind`` ("mse", "cross_entropy" or
    "custom") and whether accuracy is meaningful (``classification``)."""

    name: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    classification: bool
    kind: str = "custom"


def _mse(output: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if y.ndim == 1 and output.ndim == 2 and output.shape[1] == 1:
        y = y.unsqueeze(1)
    return F.mse_loss(output, y)


_LOSSES = {
    "mse": LossSpec("mse", _mse, classification=False, kind="mse"),
    "cross_entropy": LossSpec("cross_entropy", F.cross_entropy, classification=True, kind="cross_entropy"),
}


def names() -> list[str]:
    """The loss names ``fit`` accepts."""
    return list(_LOSSES)


def get_loss(loss: str | Callable) -> LossSpec:
    """Resolve ``loss`` (a name or a callable) into a :class:`LossSpec`."""
    if isinstance(loss, str):
        if loss not in _LOSSES:
            raise ValueError(f"unknown loss {loss!r}; expected one of {names()} or a callable "
                             "loss(output, y) -> scalar tensor")
        return _LOSSES[loss]
    if callable(loss):
        return LossSpec(getattr(loss, "__name__", type(loss).__name__), loss, classification=False)
    raise TypeError(f"loss must be one of {names()} or a callable, got {type(loss).__name__}")


def check_targets(spec: LossSpec, output: torch.Tensor, y: torch.Tensor, name: str = "y") -> None:
    """Check that targets ``y`` fit the model ``output`` for this loss; raise a clear error if not.

    ``output``: model output on a few samples ``(k, ...)``; ``y``: the matching targets (k, ...).
    """
    if spec.kind == "mse":
        if y.is_complex() or not (y.is_floating_point() or y.dtype in _INT_DTYPES):
            raise TypeError(f"{name} must be numeric for loss='mse', got dtype {y.dtype}")
        shape_ok = tuple(y.shape) == tuple(output.shape) or (
            y.ndim == 1 and output.ndim == 2 and output.shape[1] == 1)
        if not shape_ok:
            raise ValueError(f"{name} has shape {tuple(y.shape[1:])} per sample but the model outputs "
                             f"{tuple(output.shape[1:])} per sample; for loss='mse' they must match "
                             "(for class labels use loss='cross_entropy')")
    elif spec.kind == "cross_entropy":
        if y.is_floating_point() or y.dtype not in _INT_DTYPES:
            raise TypeError(f"{name} must hold integer class labels (int64) for loss='cross_entropy', "
                            f"got dtype {y.dtype}; convert with y.long()")
        if output.ndim != 2:
            raise ValueError("loss='cross_entropy' needs model outputs of shape (n, n_classes), "
                             f"got {tuple(output.shape)}")
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D class labels of shape (n,) for loss='cross_entropy', "
                             f"got shape {tuple(y.shape)}")
        check_labels(y, output.shape[1], name)


def check_labels(y: torch.Tensor, n_classes: int, name: str = "y") -> None:
    """All labels must lie in ``[0, n_classes)``."""
    if y.numel() == 0:
        return
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= n_classes:
        raise ValueError(f"{name} holds class labels in [{lo}, {hi}] but the model outputs {n_classes} "
                         f"classes; labels must be in [0, {n_classes - 1}] (widen the output layer "
                         "or re-encode the labels)")


_INT_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)
