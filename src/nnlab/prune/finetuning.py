"""Fine-tuning after a pruning step that never hands back a worse model than it was given (§5.5).

A pruned model (above all one repaired by OBS's compensating update) starts its fine-tune near a
good solution. ``nl.fit`` with a fresh optimiser at a constant learning rate then ends wherever
the last epoch's noise leaves it: at lr 1e-3 the test accuracy of a 1024-wide MLP on digits moves
by ±1 point from epoch to epoch, so a fine-tune can return a model worse than the one it started
from. :func:`finetune` therefore

* anneals the learning rate to 0 over the fine-tune (``scheduler="cosine"`` unless the caller
  passes one), so the last epochs settle instead of jumping, and
* with ``val`` data, keeps the weights with the best validation score among the starting point
  and the end of every epoch (early stopping's "restore best", lecture §1.1: the held-out risk
  chooses), so on the validation data the result is never worse than the start.

``val`` must be held out from the training data (never the test set); :func:`split_off` cuts a
fraction of the training rows off for it.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from ._common import LossFn, resolve_loss

__all__ = ["finetune", "split_off", "KeepBest"]


class KeepBest:
    """``nl.fit`` callback: score the model on ``val`` at the start and after every epoch; restore the best.

    Score: the validation loss (lower is better; a tie keeps the later weights, which trained
    longer). Attributes after fit: ``best_`` (the best loss), ``best_epoch_`` (0 = the start).
    """

    def __init__(self, val: tuple[torch.Tensor, torch.Tensor], loss: LossFn) -> None:
        self.val, self.loss = val, loss
        self.best_: float | None = None
        self.best_epoch_: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def score(self, model: nn.Module) -> float:
        was = model.training
        model.eval()
        try:
            with torch.no_grad():
                return float(self.loss(model(self.val[0]), self.val[1]))
        finally:
            model.train(was)

    def _offer(self, model: nn.Module, epoch: int) -> None:
        s = self.score(model)
        if s == s and (self.best_ is None or s <= self.best_):      # NaN never wins
            self.best_, self.best_epoch_ = s, epoch
            self._state = copy.deepcopy(model.state_dict())

    def on_fit_start(self, state: Any) -> None:
        self.best_, self.best_epoch_, self._state = None, None, None
        self._offer(state.model, 0)

    def on_epoch_end(self, state: Any) -> None:
        self._offer(state.model, state.epoch)

    def on_fit_end(self, state: Any) -> None:
        if self._state is not None:
            state.model.load_state_dict(self._state)


def split_off(X: torch.Tensor, y: torch.Tensor, fraction: float, seed: int = 0) -> tuple[
        tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """``(train, val)``: a random ``fraction`` of the rows (at least one) held out for validation."""
    if isinstance(fraction, bool) or not isinstance(fraction, float) or not 0.0 < fraction < 1.0:
        raise ValueError(f"a validation fraction must be a float in (0, 1) (the share of the training rows held "
                         f"out), got {fraction!r}")
    n = len(X)
    k = max(1, int(round(fraction * n)))
    if k >= n:
        raise ValueError(f"cannot hold out {fraction:g} of {n} training rows for validation and keep any to train on")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    tr, va = perm[k:], perm[:k]
    return (X[tr], y[tr]), (X[va], y[va])


def finetune(model: nn.Module, train: Any, val: Any = None, loss: str | LossFn = "cross_entropy", epochs: int = 3,
             **fit_kwargs: Any) -> tuple[Any, int | None]:
    """Fine-tune ``model`` in place with ``nl.fit``; returns ``(History, kept epoch)``.

    Args:
        train: ``(X, y)`` to train on. val: ``(X, y)`` held out from the training data, or None.
        loss: as for ``nl.fit``; with ``val``, also the validation score (lower is better).
        epochs: epochs of ``nl.fit``.
        fit_kwargs: passed on (``lr``, ``batch_size``, ``seed``…); ``scheduler`` defaults to
            ``"cosine"`` (the learning rate decays to 0 over the fine-tune), ``progress`` to False.

    With ``val`` the model ends with the weights that scored best on it (the starting weights
    included), so fine-tuning never makes the validation loss worse; the kept epoch is 0 when
    the starting weights won (None without ``val``).
    """
    import nnlab

    fit_kwargs = {"progress": False, "scheduler": "cosine", **fit_kwargs}
    if val is None:
        return nnlab.fit(model, train, loss=loss, epochs=epochs, **fit_kwargs), None
    keep = KeepBest(val, resolve_loss(loss))
    callbacks = [*fit_kwargs.pop("callbacks", ()), keep]
    hist = nnlab.fit(model, train, val, loss=loss, epochs=epochs, callbacks=callbacks, **fit_kwargs)
    return hist, keep.best_epoch_
