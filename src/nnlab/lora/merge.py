"""Fold a trained LoRA update into its base weight: W_new = W₀ + (alpha/r)·B·A (lecture §5.3).

Two ways:

* ``merge(model)`` returns a *plain* copy: every :class:`LoRALinear` becomes an ``nn.Linear``
  holding ``W₀ + ΔW``; the input model is unchanged. Merging that copy again is refused
  (it has no LoRA left), so a double merge can never add ΔW twice.
* ``merge(model, inplace=True)`` adds ΔW into each wrapper's ``base_layer`` and marks it
  ``merged`` (the forward then skips the LoRA branch); :func:`unmerge` subtracts it again.
  A second in-place merge is refused until ``unmerge``.

Both check ΔW for NaN/inf first and refuse, naming the layer, rather than corrupt the weights.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .inject import lora_layers, set_submodule
from .layer import LoRALinear

__all__ = ["merge", "unmerge"]


def _require_lora(model: nn.Module, what: str) -> list[tuple[str, LoRALinear]]:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{what} needs an nn.Module, got {type(model).__name__}")
    layers = lora_layers(model)
    if not layers:
        raise ValueError(f"cannot {what}: the model has no LoRA layers (call nl.lora.inject first; "
                         "a model returned by nl.lora.merge is already plain)")
    return layers


def _checked_delta(name: str, layer: LoRALinear) -> torch.Tensor:
    with torch.no_grad():
        delta = layer.delta_weight()
    bad = ~torch.isfinite(delta)
    if bool(bad.any()):
        raise ValueError(f"refusing to merge {name!r}: its LoRA update has {int(bad.sum())} NaN/inf "
                         "value(s) (the adapter diverged; lower the learning rate or reload it)")
    return delta


def merge(model: nn.Module, inplace: bool = False) -> nn.Module:
    """Fold every LoRA update into its weight.

    Args:
        model: a model with :class:`LoRALinear` layers (from :func:`nnlab.lora.inject`).
        inplace: False (default) returns a deep copy in which each wrapper is replaced by a plain
            ``nn.Linear`` with weight ``W₀ + ΔW`` (its ``requires_grad`` as the frozen base had it);
            True merges inside the wrappers of ``model`` itself, undoable with :func:`unmerge`.

    Returns:
        The merged model (a new plain model, or ``model`` itself when ``inplace``).

    Raises:
        ValueError: no LoRA layer; a layer already merged in place (``inplace=True`` twice); or a
            non-finite update (named).
    """
    layers = _require_lora(model, "merge")
    for name, layer in layers:
        if layer.merged and inplace:
            raise ValueError(f"{name!r} is already merged in place; call nl.lora.unmerge(model) "
                             "before merging again")
    deltas = {name: (None if layer.merged else _checked_delta(name, layer)) for name, layer in layers}
    if inplace:
        with torch.no_grad():
            for name, layer in layers:
                layer.base_layer.weight.add_(deltas[name].to(layer.base_layer.weight.dtype))
                layer.merged = True
        return model
    out = copy.deepcopy(model)
    with torch.no_grad():
        for name, _ in layers:
            wrapped = out.get_submodule(name)
            plain = wrapped.base_layer
            if deltas[name] is not None:  # a wrapper merged in place already holds W₀ + ΔW
                plain.weight.add_(deltas[name].to(plain.weight.dtype))
            set_submodule(out, name, plain)
    return out


def unmerge(model: nn.Module) -> nn.Module:
    """Undo :func:`merge` ``(inplace=True)``: W₀ = W_new − ΔW in each merged wrapper, in place.

    Raises ``ValueError`` if the model has no LoRA layer or none of them is merged.
    """
    layers = _require_lora(model, "unmerge")
    merged = [(n, m) for n, m in layers if m.merged]
    if not merged:
        raise ValueError("nothing to unmerge: no LoRA layer is merged (nl.lora.merge(model, "
                         "inplace=True) merges in place; the default merge returns a copy)")
    deltas = {n: _checked_delta(n, m) for n, m in merged}
    with torch.no_grad():
        for name, layer in merged:
            layer.base_layer.weight.sub_(deltas[name].to(layer.base_layer.weight.dtype))
            layer.merged = False
    return model
