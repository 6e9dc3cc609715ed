"""``ModelCheckpoint``: keep the latest checkpoint and the best one by a monitored metric.

Folders under ``dirpath`` (each a full checkpoint of :mod:`nnlab.training.checkpoint`, so
``fit(resume=...)`` continues from any of them):

* ``last/``: the latest epoch (``keep_last >= 1``); with ``keep_last = k > 1`` the k most
  recent epochs are also kept as ``recent/epoch-NNNN/``;
* ``best/``: the epoch with the best ``monitor`` value so far (``save_top_k >= 1``); with
  ``save_top_k = k > 1`` the k best are also kept as ``top/epoch-NNNN/``.

``save_fn(model, folder)``, if given, also writes the model into ``best/`` and ``last/`` in a
form of the caller's choice (``nnlab train`` writes its model files, so ``nl.load_model``
reads ``runs/<name>/best`` as well as ``runs/<name>``).
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Callable

from torch import nn

from ._monitor import check_writable_dir, improved, read_metric, resolve_mode

__all__ = ["ModelCheckpoint"]


def _count(v: Any, name: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
    return v


class ModelCheckpoint:
    """Save ``last/`` and ``best/`` checkpoints into ``dirpath`` after every epoch (rank 0).

    Args:
        dirpath: parent folder (created).
        monitor: the metric that decides "best" (``val_loss``, ``val_acc``, ``train_loss``...).
        mode: ``"min"``, ``"max"`` or ``"auto"`` (max for accuracies, min otherwise).
        save_top_k: how many best checkpoints to keep (0: none, no ``best/``).
        keep_last: how many latest checkpoints to keep (0: none, no ``last/``).
        save_fn: optional ``save_fn(model, folder)`` writing extra model files.

    Attributes: ``best_`` (best value), ``best_epoch_``, ``best_path`` (``dirpath/best``).
    """

    def __init__(self, dirpath: str | os.PathLike, monitor: str = "val_loss", mode: str = "auto",
                 save_top_k: int = 1, keep_last: int = 1,
                 save_fn: Callable[[nn.Module, Path], Any] | None = None) -> None:
        self.dirpath = Path(dirpath)
        self.monitor = monitor
        self.mode = resolve_mode(mode, monitor)
        self.save_top_k = _count(save_top_k, "save_top_k")
        self.keep_last = _count(keep_last, "keep_last")
        if self.save_top_k == 0 and self.keep_last == 0:
            raise ValueError("save_top_k and keep_last are both 0: ModelCheckpoint would save nothing")
        if save_fn is not None and not callable(save_fn):
            raise TypeError(f"save_fn must be a callable save_fn(model, folder), got {save_fn!r}")
        self.save_fn = save_fn
        self.best_: float | None = None
        self.best_epoch_: int | None = None
        self._top: list[tuple[float, int]] = []  # (value, epoch), best first

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best"

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last"

    def on_fit_start(self, state: Any) -> None:
        if state.save_checkpoint is None:
            raise TypeError("ModelCheckpoint needs nl.fit's TrainState.save_checkpoint")
        self.best_, self.best_epoch_, self._top = None, None, []
        past = state.history.as_dict()
        for i, epoch in enumerate(past["epochs"]):  # resumed: the best so far comes from History
            value = past.get(self.monitor, [None] * (i + 1))[i]
            if value is not None:
                self._rank(float(value), epoch)
        if state.rank == 0:
            check_writable_dir(self.dirpath, "ModelCheckpoint")

    def _rank(self, value: float, epoch: int) -> bool:
        """Enter (value, epoch) into the top-k; True when it is the new best."""
        new_best = improved(value, self.best_, self.mode)
        if new_best:
            self.best_, self.best_epoch_ = value, epoch
        if value == value:  # NaN never enters the ranking
            sign = 1.0 if self.mode == "min" else -1.0
            self._top = sorted([*self._top, (value, epoch)], key=lambda t: (sign * t[0], t[1]))
            self._top = self._top[:max(self.save_top_k, 1)]
        return new_best

    def _write(self, state: Any, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.save_fn is not None:
            self.save_fn(state.model, folder)
        state.save_checkpoint(folder)

    def on_epoch_end(self, state: Any) -> None:
        value = read_metric(state.logs, self.monitor, "ModelCheckpoint")
        new_best = self._rank(value, state.epoch)
        if state.rank != 0:
            return
        epoch = state.epoch
        if self.keep_last:
            if self.keep_last > 1:
                self._write(state, self.dirpath / "recent" / f"epoch-{epoch:04d}")
                # recent/ holds the keep_last - 1 epochs before the latest, and the latest itself
                self._prune(self.dirpath / "recent", list(range(epoch - self.keep_last + 1, epoch + 1)))
            self._write(state, self.last_path)
        if self.save_top_k:
            if new_best:
                self._write(state, self.best_path)
            if self.save_top_k > 1:
                top_epochs = [e for _, e in self._top]
                if epoch in top_epochs:
                    self._write(state, self.dirpath / "top" / f"epoch-{epoch:04d}")
                self._prune(self.dirpath / "top", top_epochs)

    @staticmethod
    def _prune(parent: Path, keep_epochs: list[int]) -> None:
        keep = {f"epoch-{e:04d}" for e in keep_epochs}
        if parent.is_dir():
            for child in parent.iterdir():
                if child.is_dir() and child.name.startswith("epoch-") and child.name not in keep:
                    shutil.rmtree(child, ignore_errors=True)
