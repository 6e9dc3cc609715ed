"""Residual-block pruning (lecture §4.2, §5.5).

A residual block computes H(x) = F(x) + x (or + P(x), a projection, when widths differ). If
F(x) ≈ 0 the block is the identity and can be removed; "uselessness" is judged on a
validation set. Two criteria:

* ``"lesion"``: the validation-loss increase from replacing F by 0, ΔL = L(model with
  H(x) = x) − L(model) (measured, not estimated);
* ``"norm"``: the lecture's heuristic ‖F(x)‖ / ‖x‖ on validation inputs (small ⇒ near identity).

Blocks are removed greedily, one at a time, re-measuring after each removal, while the total
validation-loss increase stays within ``tolerance``.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ._common import LossFn, as_xy, dense_copy, forward_with_hooks, resolve_loss

__all__ = ["residual_blocks", "residual_modules", "lesion_damage", "norm_ratio", "remove_blocks",
           "ResidualReport"]


def _is_residual(m: nn.Module) -> bool:
    return hasattr(m, "block") and hasattr(m, "projection") and isinstance(getattr(m, "block"), nn.Module)


def residual_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The residual blocks (modules with ``.block`` and ``.projection``, like ``nl.Residual``)."""
    return [(n, m) for n, m in model.named_modules() if n and _is_residual(m)]


def _skip(res: nn.Module) -> nn.Module:
    return copy.deepcopy(res.projection) if res.projection is not None else nn.Identity()


def remove_blocks(model: nn.Module, names: list[str]) -> nn.Module:
    """A copy of ``model`` with each named residual block replaced by its skip path (x or P(x))."""
    out = copy.deepcopy(model)
    mods = dict(out.named_modules())
    for name in names:
        if name not in mods or not _is_residual(mods[name]):
            raise ValueError(f"{name!r} is not a residual block of the model")
        parent_name, _, child = name.rpartition(".")
        setattr(mods[parent_name] if parent_name else out, child, _skip(mods[name]))
    return out


def _loss(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: LossFn) -> float:
    was = model.training
    model.eval()
    with torch.no_grad():
        v = float(loss(model(X), y))
    model.train(was)
    return v


def lesion_damage(model: nn.Module, X: torch.Tensor, y: torch.Tensor, loss: str | LossFn = "cross_entropy"
                  ) -> dict[str, float]:
    """ΔL_b = L(model with block b's F replaced by 0) − L(model), for every residual block b."""
    loss = resolve_loss(loss)
    base = _loss(model, X, y, loss)
    return {n: _loss(remove_blocks(model, [n]), X, y, loss) - base for n, _ in residual_modules(model)}


def norm_ratio(model: nn.Module, X: torch.Tensor) -> dict[str, float]:
    """‖F(x)‖ / ‖skip(x)‖ (Frobenius over the batch) at every residual block, skip(x) = x or P(x)."""
    out: dict[str, float] = {}
    hooks = []

    def hook(name: str):
        def f(m: nn.Module, args: tuple) -> None:
            x = args[0]
            skip = m.projection(x) if m.projection is not None else x
            out[name] = float(m.block(x).norm() / skip.norm().clamp_min(1e-12))
        return f

    for n, m in residual_modules(model):
        hooks.append(m.register_forward_pre_hook(hook(n)))
    forward_with_hooks(model, X, hooks)
    return out


@dataclass
class ResidualReport:
    """What :func:`residual_blocks` did: the initial scores of both criteria and each removal."""

    criterion: str
    tolerance: float
    base_loss: float
    final_loss: float
    lesion: dict[str, float]
    norm_ratio: dict[str, float]
    removed: list[str] = field(default_factory=list)
    steps: list[dict[str, float | str]] = field(default_factory=list)
    n_params_before: int = 0
    n_params_after: int = 0

    def __str__(self) -> str:
        rows = [f"residual-block pruning ({self.criterion}, tolerance {self.tolerance:g}): "
                f"val loss {self.base_loss:.4f} -> {self.final_loss:.4f}, "
                f"params {self.n_params_before} -> {self.n_params_after}",
                f"{'block':<16} {'lesion dL':>10} {'|F|/|x|':>9} {'removed':>8}"]
        for n in self.lesion:
            rows.append(f"{n:<16} {self.lesion[n]:>10.4f} {self.norm_ratio[n]:>9.4f} "
                        f"{'yes' if n in self.removed else '':>8}")
        return "\n".join(rows)


def residual_blocks(model: nn.Module, val: Any, loss: str | LossFn = "cross_entropy", tolerance: float = 0.01,
                    criterion: str = "lesion", max_blocks: int | None = None) -> tuple[nn.Module, ResidualReport]:
    """Remove residual blocks whose removal raises the validation loss by at most ``tolerance``.

    Args:
        model: a network containing residual blocks (``nl.Residual``: ``.block`` F and
            ``.projection`` P or None). It is not modified.
        val: validation ``(X, y)`` (or a Dataset / DataLoader).
        loss: ``"cross_entropy"``, ``"mse"`` or ``callable(output, y) -> scalar``.
        tolerance: the largest allowed increase of the validation loss over the unpruned model's.
        criterion: which block goes next: ``"lesion"`` (smallest measured ΔL) or ``"norm"``
            (smallest ‖F(x)‖/‖x‖). Both are re-measured after every removal; removal stops at the
            first block that would exceed the tolerance.
        max_blocks: remove at most this many blocks.

    Returns ``(smaller_model, report)``; each removed block becomes its skip path (identity or P).
    """
    if criterion not in ("lesion", "norm"):
        raise ValueError(f"criterion must be 'lesion' or 'norm', got {criterion!r}")
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise ValueError(f"tolerance must be a number >= 0 (allowed validation-loss increase), got {tolerance!r}")
    if max_blocks is not None and (not isinstance(max_blocks, int) or max_blocks < 0):
        raise ValueError(f"max_blocks must be a non-negative integer or None, got {max_blocks!r}")
    if not residual_modules(model):
        raise ValueError(f"{type(model).__name__} has no residual blocks (modules with .block and .projection, "
                         "e.g. nl.MLP(..., residual=True)); nothing to remove")
    lossf = resolve_loss(loss)
    X, y = as_xy(val, model, "val")
    current = dense_copy(model)
    base = _loss(current, X, y, lossf)
    report = ResidualReport(criterion, float(tolerance), base, base, lesion_damage(current, X, y, lossf),
                            norm_ratio(current, X), n_params_before=sum(p.numel() for p in model.parameters()))
    limit = len(report.lesion) if max_blocks is None else max_blocks
    while len(report.removed) < limit and residual_modules(current):
        scores = lesion_damage(current, X, y, lossf) if criterion == "lesion" else norm_ratio(current, X)
        name = min(scores, key=scores.__getitem__)
        candidate = remove_blocks(current, [name])
        new_loss = _loss(candidate, X, y, lossf)
        if new_loss - base > tolerance:
            break
        current = candidate
        report.removed.append(name)
        report.steps.append({"block": name, "score": scores[name], "val_loss": new_loss})
        report.final_loss = new_loss
    report.n_params_after = sum(p.numel() for p in current.parameters())
    return current, report
