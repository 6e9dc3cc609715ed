"""The record of a training run: empirical and held-out risk per epoch (lecture §1.1).

*Empirical risk* is the mean loss over the training sample, the estimate that training minimises;
the *held-out risk* is the same mean on data the optimiser never saw, the estimate of the true risk.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["History"]

_MAXIMISED = ("train_acc", "val_acc")


@dataclass
class History:
    """Per-epoch metrics of :func:`nnlab.fit`; every list has one entry per finished epoch.

    Attributes:
        epochs: epoch numbers, 1-based (``[1, 2, ...]``).
        train_loss: empirical risk, the sample-weighted mean training loss over the epoch's
            batches (without the ``penalty`` term).
        val_loss: held-out risk on ``val`` after the epoch (None entries when no ``val``).
        train_acc, val_acc: accuracy for ``loss="cross_entropy"`` (None entries otherwise).
        grad_norm: mean global gradient norm ‖g‖ before clipping, over the epoch's steps.
        lr: learning rate of the first parameter group at the epoch's last optimiser step.
        penalty: mean value of the ``penalty`` term (None entries when no penalty).
    """

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float | None] = field(default_factory=list)
    train_acc: list[float | None] = field(default_factory=list)
    val_acc: list[float | None] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    penalty: list[float | None] = field(default_factory=list)

    _KEYS = ("epochs", "train_loss", "val_loss", "train_acc", "val_acc", "grad_norm", "lr", "penalty")

    def append(self, logs: dict[str, Any]) -> None:
        """Add one epoch's metrics (``logs`` holds the keys above, ``epoch`` for ``epochs``)."""
        for key in self._KEYS:
            getattr(self, key).append(logs["epoch"] if key == "epochs" else logs.get(key))

    def as_dict(self) -> dict[str, list]:
        """Plain lists (JSON-serialisable copy)."""
        return {key: list(getattr(self, key)) for key in self._KEYS}

    @classmethod
    def from_dict(cls, d: dict[str, list]) -> "History":
        unknown = set(d) - set(cls._KEYS)
        if unknown:
            raise ValueError(f"unknown History keys {sorted(unknown)}; expected {list(cls._KEYS)}")
        return cls(**{k: list(v) for k, v in d.items()})

    def best(self, metric: str = "val_loss") -> tuple[int, float]:
        """``(epoch, value)`` of the best epoch: minimum for losses, maximum for accuracies.

        Raises ValueError for an unknown metric or one that was never recorded.
        """
        if metric not in self._KEYS or metric == "epochs":
            raise ValueError(f"unknown metric {metric!r}; expected one of {list(self._KEYS[1:])}")
        pairs = [(e, v) for e, v in zip(self.epochs, getattr(self, metric))
                 if v is not None and not math.isnan(v)]
        if not pairs:
            raise ValueError(f"metric {metric!r} was not recorded in this run "
                             "(no val data / not a classification loss / no epochs?)")
        sign = -1.0 if metric in _MAXIMISED else 1.0
        return min(pairs, key=lambda p: sign * p[1])

    def __len__(self) -> int:
        return len(self.epochs)
