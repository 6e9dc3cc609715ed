"""One mask mechanism for every pruning method (lecture §5.5).

Pruned weights are removed through ``torch.nn.utils.prune``'s re-parametrisation: the
parameter ``weight`` becomes ``weight_orig`` plus a 0/1 buffer ``weight_mask``, and a
forward pre-hook computes ``weight = weight_orig ⊙ weight_mask``. So a pruned model trains
as usual (the gradient of a removed weight is 0, the mask is kept) and
:func:`finalize` makes the zeros permanent.

Every method here only decides a score per weight (or new weight values, for OBS) and
calls :func:`apply_mask` / :func:`prune_by_scores`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

import torch
from torch import nn
from torch.nn.utils import prune as tprune

from ._common import check_sparsity, prunable_layers

__all__ = ["apply_mask", "weight_of", "is_masked", "prune_by_scores", "sparsity", "finalize", "Sparsity",
           "n_to_prune"]


def is_masked(module: nn.Module, name: str = "weight") -> bool:
    return hasattr(module, f"{name}_mask") and hasattr(module, f"{name}_orig")


def weight_of(module: nn.Module, name: str = "weight") -> torch.Tensor:
    """The effective weight ``weight_orig ⊙ weight_mask`` (or the plain weight), detached."""
    if is_masked(module, name):
        return (getattr(module, f"{name}_orig") * getattr(module, f"{name}_mask")).detach()
    return getattr(module, name).detach()


def apply_mask(module: nn.Module, mask: torch.Tensor, values: torch.Tensor | None = None,
               name: str = "weight") -> None:
    """Set ``module``'s mask to ``mask`` (1 keeps, 0 removes), optionally new weight ``values``.

    A module not yet pruned is re-parametrised with ``torch.nn.utils.prune.custom_from_mask``;
    an already pruned one gets its mask buffer replaced (the new mask is final, not multiplied),
    so methods that re-decide a layer (OBS, gradual schedules) stay simple.
    """
    w = getattr(module, f"{name}_orig") if is_masked(module, name) else getattr(module, name)
    if tuple(mask.shape) != tuple(w.shape):
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match {name} shape {tuple(w.shape)}")
    mask = mask.to(device=w.device, dtype=w.dtype)
    with torch.no_grad():
        if values is not None:
            if tuple(values.shape) != tuple(w.shape):
                raise ValueError(f"values shape {tuple(values.shape)} does not match {name} shape {tuple(w.shape)}")
            w.copy_(values)
        if is_masked(module, name):
            getattr(module, f"{name}_mask").copy_(mask)
            setattr(module, name, w * getattr(module, f"{name}_mask"))
        else:
            tprune.custom_from_mask(module, name, mask)


def n_to_prune(sparsity: float, n: int) -> int:
    """Number of weights removed for a fraction ``sparsity`` of ``n`` (rounded as torch does)."""
    return int(round(sparsity * n))


def prune_by_scores(model: nn.Module, scores: Mapping[str, torch.Tensor], sparsity: float,
                    scope: str = "global") -> nn.Module:
    """Remove the lowest-scoring weights: a fraction ``sparsity`` of all (``"global"``) or of each layer.

    ``scores`` maps ``nn.Linear`` module names to tensors shaped like their weights. Like
    ``torch.nn.utils.prune.L1Unstructured``, exactly ``round(sparsity · n)`` weights go (ties are
    broken by ``torch.topk``).
    """
    sparsity = check_sparsity(sparsity)
    if scope not in ("global", "layer"):
        raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
    modules = dict(model.named_modules())
    names = list(scores)
    if not names:
        raise ValueError("no layers to prune (empty scores)")
    for n in names:
        if n not in modules:
            raise ValueError(f"{n!r} is not a module of the model")
    if scope == "layer":
        for n in names:
            s = scores[n]
            k = n_to_prune(sparsity, s.numel())
            mask = torch.ones_like(s)
            if k:
                mask.view(-1)[torch.topk(s.reshape(-1), k, largest=False).indices] = 0
            apply_mask(modules[n], mask)
        return model
    flat = torch.cat([scores[n].reshape(-1) for n in names])
    k = n_to_prune(sparsity, flat.numel())
    mask = torch.ones_like(flat)
    if k:
        mask[torch.topk(flat, k, largest=False).indices] = 0
    start = 0
    for n in names:
        size = scores[n].numel()
        apply_mask(modules[n], mask[start:start + size].view_as(scores[n]))
        start += size
    return model


@dataclass
class Sparsity:
    """Fractions of zero weights: ``layers[name]`` per ``nn.Linear`` and ``overall``."""

    layers: dict[str, float] = field(default_factory=dict)
    zeros: dict[str, int] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)

    @property
    def overall(self) -> float:
        total = sum(self.sizes.values())
        return sum(self.zeros.values()) / total if total else 0.0

    def __str__(self) -> str:
        rows = [f"{'layer':<24} {'zeros':>9} {'size':>9} {'sparsity':>9}"]
        for n in self.layers:
            rows.append(f"{n or '<model>':<24} {self.zeros[n]:>9} {self.sizes[n]:>9} {self.layers[n]:>9.2%}")
        rows.append(f"{'overall':<24} {sum(self.zeros.values()):>9} {sum(self.sizes.values()):>9} "
                    f"{self.overall:>9.2%}")
        return "\n".join(rows)


def sparsity(model: nn.Module, layers: Iterable[str] | None = None) -> Sparsity:
    """Per-layer and overall fraction of zero weights of the ``nn.Linear`` layers (biases excluded)."""
    out = Sparsity()
    for n, m in prunable_layers(model, layers):
        w = weight_of(m)
        out.zeros[n] = int((w == 0).sum())
        out.sizes[n] = w.numel()
        out.layers[n] = out.zeros[n] / out.sizes[n]
    return out


def finalize(model: nn.Module) -> nn.Module:
    """Make the pruning permanent: ``weight = weight_orig ⊙ weight_mask`` becomes a plain parameter.

    Removes every mask and hook (``torch.nn.utils.prune.remove``); returns the same model.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    for m in model.modules():
        for hook in list(m._forward_pre_hooks.values()):
            if isinstance(hook, tprune.BasePruningMethod):
                tprune.remove(m, hook._tensor_name)
    return model
