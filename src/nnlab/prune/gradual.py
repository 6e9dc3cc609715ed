"""Gradual pruning recipe: prune → fine-tune, repeated on a cubic sparsity schedule (§5.5).

Zhu & Gupta (2017): at step t = 1..T the sparsity is

    s_t = s_f + (s_0 − s_f) · (1 − t/T)³,

fast at first (many redundant weights), slow near the target. After each pruning step the
network is fine-tuned with ``nl.fit``; the masks stay in place, so removed weights stay 0.
"""
from __future__ import annotations

from typing import Any, Callable

from torch import nn

from ._common import LossFn, check_sparsity
from .magnitude import magnitude
from .masks import sparsity as measure

__all__ = ["gradual", "cubic_schedule", "METHODS"]


def cubic_schedule(target: float, steps: int, initial: float = 0.0) -> list[float]:
    """[s_1, …, s_T] with s_t = s_f + (s_0 − s_f)(1 − t/T)³; s_T = target."""
    target, initial = check_sparsity(target, "target_sparsity"), check_sparsity(initial, "initial sparsity")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    return [target + (initial - target) * (1 - t / steps) ** 3 for t in range(1, steps + 1)]


def _method(name: str | Callable, train: Any, loss: Any, kw: dict[str, Any]) -> Callable[[nn.Module, float], Any]:
    if callable(name):
        return lambda m, s: name(m, s, **kw)
    from .obd import obd
    from .obs import obs
    table: dict[str, Callable[[nn.Module, float], Any]] = {
        "magnitude": lambda m, s: magnitude(m, s, **{"scope": "global", **kw}),
        "magnitude_layer": lambda m, s: magnitude(m, s, **{"scope": "layer", **kw}),
        "obd": lambda m, s: obd(m, train, loss, s, **kw),
        "obs": lambda m, s: obs(m, train, loss, s, **kw),
    }
    if name not in table:
        raise ValueError(f"unknown method {name!r}; use one of {sorted(table)} or a callable (model, sparsity)")
    return table[name]


METHODS = ("magnitude", "magnitude_layer", "obd", "obs")


def gradual(model: nn.Module, train: Any, val: Any = None, target_sparsity: float = 0.9, steps: int = 10,
            method: str | Callable[[nn.Module, float], Any] = "magnitude", finetune_epochs: int = 2,
            final_epochs: int = 0, loss: str | LossFn = "cross_entropy", method_kwargs: dict[str, Any] | None = None,
            **fit_kwargs: Any
            ) -> tuple[nn.Module, list[dict[str, Any]]]:
    """Prune ``model`` to ``target_sparsity`` in ``steps`` cubic steps, fine-tuning after each, in place.

    Args:
        train, val: data for ``nl.fit`` (and for ``obd``/``obs``: their calibration data).
        method: ``"magnitude"`` (global), ``"magnitude_layer"``, ``"obd"``, ``"obs"`` or a
            callable ``(model, sparsity)`` that prunes in place.
        method_kwargs: extra keyword arguments for the method, e.g. ``{"algorithm": "exact"}``
            for ``"obs"`` or ``{"hessian": "fisher"}`` for ``"obd"``.
        finetune_epochs: ``nl.fit`` epochs after each pruning step; ``final_epochs`` more at the end.
        fit_kwargs: passed to ``nl.fit`` (``lr``, ``batch_size``, ``seed``, ``optimizer``…);
            ``progress`` defaults to False.

    Returns ``(model, log)`` with one dict per step: ``step``, ``sparsity`` (measured) and the
    last epoch's ``val_loss``/``val_acc`` when ``val`` is given.
    """
    import nnlab

    fit = getattr(nnlab, "fit", None)
    if fit is None:
        raise ImportError("nl.prune.gradual fine-tunes with nl.fit, which this nnlab build does not have")
    if not isinstance(finetune_epochs, int) or finetune_epochs < 0 or not isinstance(final_epochs, int) \
            or final_epochs < 0:
        raise ValueError(f"finetune_epochs and final_epochs must be integers >= 0, got {finetune_epochs!r}, "
                         f"{final_epochs!r}")
    schedule = cubic_schedule(target_sparsity, steps)
    prune_to = _method(method, train, loss, dict(method_kwargs or {}))
    fit_kwargs.setdefault("progress", False)
    log = []
    for t, s in enumerate(schedule, 1):
        prune_to(model, s)
        epochs = finetune_epochs + (final_epochs if t == steps else 0)
        rec: dict[str, Any] = {"step": t, "target": s, "sparsity": measure(model).overall}
        if epochs:
            hist = fit(model, train, val, loss=loss, epochs=epochs, **fit_kwargs)
            if val is not None and getattr(hist, "val_loss", None):
                rec["val_loss"] = hist.val_loss[-1]
                acc = getattr(hist, "val_acc", None)
                if acc:
                    rec["val_acc"] = acc[-1]
        log.append(rec)
    return model, log
