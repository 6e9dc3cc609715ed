"""``EarlyStopping``: end training when the monitored metric stops improving.

Early stopping is regularisation by the held-out risk (lecture §1.1): once the validation loss
has not fallen by more than ``min_delta`` for ``patience`` epochs in a row, further epochs only
fit the training sample, so ``fit`` stops after the current epoch.
"""
from __future__ import annotations

import math
from typing import Any

from ._monitor import improved, read_metric, resolve_mode

__all__ = ["EarlyStopping"]


class EarlyStopping:
    """Stop ``fit`` after ``patience`` epochs without improvement of ``monitor``.

    Args:
        monitor: a metric ``fit`` logs: ``val_loss``, ``val_acc``, ``train_loss``, ``train_acc``...
        patience: epochs without improvement tolerated (0: stop at the first epoch that does
            not improve).
        min_delta: the smallest change that counts as an improvement.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, min otherwise).

    Attributes (after fit): ``best_`` (best value), ``best_epoch_``, ``stopped_epoch_`` (the epoch
    training stopped after, or None if it ran to the end). A resumed run replays its History, so
    the count continues where the interrupted run left it.
    """

    def __init__(self, monitor: str = "val_loss", patience: int = 3, min_delta: float = 0.0,
                 mode: str = "auto") -> None:
        if isinstance(patience, bool) or not isinstance(patience, int):
            raise TypeError(f"patience must be an integer number of epochs, got {patience!r}")
        if patience < 0:
            raise ValueError(f"patience must be >= 0 epochs, got {patience}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, (int, float)) \
                or not math.isfinite(min_delta) or min_delta < 0:
            raise ValueError(f"min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor = monitor
        self.mode = resolve_mode(mode, monitor)
        self.patience = patience
        self.min_delta = float(min_delta)
        self._reset()

    def _reset(self) -> None:
        self.best_: float | None = None
        self.best_epoch_: int | None = None
        self.stopped_epoch_: int | None = None
        self.wait_ = 0

    def _update(self, epoch: int, value: float) -> bool:
        """Record one epoch; True when training should stop."""
        if improved(value, self.best_, self.mode, self.min_delta):
            self.best_, self.best_epoch_, self.wait_ = value, epoch, 0
            return False
        self.wait_ += 1
        return self.wait_ > self.patience

    def on_fit_start(self, state: Any) -> None:
        self._reset()
        past = state.history.as_dict()
        for i, epoch in enumerate(past["epochs"]):  # a resumed run: replay the epochs already done
            value = past.get(self.monitor, [None] * (i + 1))[i]
            if value is not None:
                self._update(epoch, float(value))

    def on_epoch_end(self, state: Any) -> None:
        value = read_metric(state.logs, self.monitor, "EarlyStopping")
        if self._update(state.epoch, value):
            self.stopped_epoch_ = state.epoch
            state.stop = True
