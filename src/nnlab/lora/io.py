"""Adapter-only files: save just A and B (and optionally a small head) as safetensors.

A file holds, per wrapped layer ``name``, the tensors ``lora::<name>::A`` (r, in) and
``lora::<name>::B`` (out, r); extra modules chosen with ``include`` go in as
``extra::<parameter name>``. The safetensors metadata records the format and, per layer,
rank, alpha and the base shape, so :func:`load_adapter` can check everything (and name the
layer) before it changes a single weight. Files are written atomically (``nnlab._io``).
"""
from __future__ import annotations

import json
import os
from typing import Sequence

import torch
from torch import nn

from .._io import load_tensors, save_tensors
from .config import name_matches
from .inject import lora_layers, set_submodule
from .layer import LoRALinear

__all__ = ["save_adapter", "load_adapter"]

FORMAT = "nnlab-lora"
VERSION = "1"


def save_adapter(model: nn.Module, path: str | os.PathLike,
                 include: str | Sequence[str] = ()) -> None:
    """Write the LoRA matrices of ``model`` (plus the parameters of modules in ``include``).

    Args:
        model: a model with :class:`LoRALinear` layers.
        path: the ``.safetensors`` file to write (atomically).
        include: name patterns of extra modules saved whole, e.g. ``"head"`` for a new classifier
            trained next to the adapter.
    """
    layers = lora_layers(model)
    if not layers:
        raise ValueError("the model has no LoRA layers to save (call nl.lora.inject first)")
    tensors: dict[str, torch.Tensor] = {}
    info = {}
    for name, m in layers:
        tensors[f"lora::{name}::A"] = m.lora_A.detach()
        tensors[f"lora::{name}::B"] = m.lora_B.detach()
        info[name] = {"rank": m.rank, "alpha": m.alpha, "in": m.in_features, "out": m.out_features}
    patterns = [include] if isinstance(include, str) else list(include)
    for pat in patterns:
        hits = [(n, p) for n, p in model.named_parameters()
                if _in_module(n, pat) and ".lora_" not in n and ".base_layer." not in n]
        if not hits:
            raise ValueError(f"include pattern {pat!r} matches no parameter of the model")
        for n, p in hits:
            tensors[f"extra::{n}"] = p.detach()
    meta = {"format": FORMAT, "version": VERSION, "layers": json.dumps(info, sort_keys=True)}
    save_tensors(path, tensors, metadata=meta)


def _in_module(param_name: str, pattern: str) -> bool:
    module = param_name.rpartition(".")[0]
    return any(name_matches(prefix, pattern)
               for prefix in _prefixes(module)) if module else name_matches(param_name, pattern)


def _prefixes(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def _read(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict]:
    from safetensors import safe_open

    tensors = load_tensors(path)
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata() or {}
    if meta.get("format") != FORMAT:
        raise ValueError(f"{path} is not an nnlab LoRA adapter (metadata format={meta.get('format')!r}); "
                         "write adapters with nl.lora.save_adapter")
    return tensors, json.loads(meta["layers"])


def load_adapter(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load an adapter file into ``model`` (in place) and return it.

    If ``model`` has no LoRA layers yet (a fresh copy of the base model), the layers named in the
    file are wrapped first with the file's rank and alpha, and everything else is frozen, as
    :func:`nnlab.lora.inject` does. Otherwise the model's LoRA layers must be exactly the file's.

    Raises:
        ValueError: a layer of the file is missing from the model or is not an ``nn.Linear``; a
            shape, rank or alpha differs (the message names the layer and both values); the model
            has LoRA layers the file lacks; or a layer is merged in place (unmerge first).
    """
    tensors, info = _read(path)
    existing = dict(lora_layers(model))
    if existing:
        missing = sorted(set(existing) - set(info))
        if missing:
            raise ValueError(f"the model has LoRA layers that the adapter {path} lacks: {missing}")
    # Check everything before changing anything.
    for name, meta in info.items():
        try:
            target = model.get_submodule(name)
        except AttributeError:
            raise ValueError(f"the adapter has a layer {name!r} that the model does not have") from None
        layer = target.base_layer if isinstance(target, LoRALinear) else target
        if not isinstance(layer, nn.Linear):
            raise ValueError(f"adapter layer {name!r} is a {type(layer).__name__} in the model, "
                             "not an nn.Linear")
        if (layer.out_features, layer.in_features) != (meta["out"], meta["in"]):
            raise ValueError(f"adapter for {name!r} was trained on a layer of shape (out={meta['out']}, "
                             f"in={meta['in']}) but the model's is (out={layer.out_features}, "
                             f"in={layer.in_features})")
        if existing:
            if name not in existing:
                raise ValueError(f"adapter layer {name!r} has no LoRA wrapper in the model; load into "
                                 "a model without LoRA, or inject the same targets first")
            m = existing[name]
            if m.merged:
                raise ValueError(f"{name!r} is merged in place; call nl.lora.unmerge(model) first")
            if (m.rank, m.alpha) != (meta["rank"], float(meta["alpha"])):
                raise ValueError(f"adapter for {name!r} has rank={meta['rank']}, alpha={meta['alpha']} "
                                 f"but the model's LoRA layer has rank={m.rank}, alpha={m.alpha:g}")
        r = meta["rank"]
        for key, want in (("A", (r, meta["in"])), ("B", (meta["out"], r))):
            t = tensors.get(f"lora::{name}::{key}")
            if t is None:
                raise ValueError(f"adapter file {path} lacks lora_{key} for {name!r}")
            if tuple(t.shape) != want:
                raise ValueError(f"adapter lora_{key} for {name!r} has shape {tuple(t.shape)}, "
                                 f"expected {want}")
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"adapter lora_{key} for {name!r} holds NaN/inf values")
    params = dict(model.named_parameters())
    extras = {k[len("extra::"):]: v for k, v in tensors.items() if k.startswith("extra::")}
    for n, t in extras.items():
        if n not in params:
            raise ValueError(f"the adapter holds extra parameter {n!r} that the model does not have")
        if tuple(params[n].shape) != tuple(t.shape):
            raise ValueError(f"extra parameter {n!r} has shape {tuple(t.shape)} in the adapter but "
                             f"{tuple(params[n].shape)} in the model")
    # Apply.
    if not existing:
        for name, meta in info.items():
            set_submodule(model, name, LoRALinear(model.get_submodule(name), meta["rank"],
                                                  float(meta["alpha"]), name=name))
        keep = {id(p) for _, m in lora_layers(model) for p in (m.lora_A, m.lora_B)}
        keep |= {id(params[n]) for n in extras}
        for p in model.parameters():
            p.requires_grad_(id(p) in keep)
    with torch.no_grad():
        for name, m in lora_layers(model):
            m.lora_A.copy_(tensors[f"lora::{name}::A"])
            m.lora_B.copy_(tensors[f"lora::{name}::B"])
        for n, t in extras.items():
            params[n].copy_(t)
    return model
