"""Fine-tuning in two phases (lecture §5.2).

1. **Freeze** the pretrained part A′ and train only the new layers B, so that a random B cannot
   wreck A′'s good weights with large early gradients.
2. **Unfreeze** (optional) and train everything, with a smaller learning rate for A′:
   optimizer parameter groups ``[{A′, lr·extractor_lr_scale}, {B and the rest, lr}]``.

Each phase is one call of ``nl.fit`` with an optimizer built here over the phase's trainable
parameters; the result reports the trainable-parameter count of each phase.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from ..training.optimizers import make_optimizer
from .freeze import ParamCount, count_parameters, freeze, hold_batchnorm, unfreeze

__all__ = ["finetune", "FinetuneResult", "Phase", "make_optimizer"]

_NAMES = ("adam", "adamw", "sgd")
SGD_MOMENTUM = 0.9  # fine-tuning's "sgd" is SGD with momentum (the usual transfer recipe)


@dataclass
class Phase:
    """One phase: its name, trainable/total parameter counts, the learning rates and the History."""

    name: str
    params: ParamCount
    lrs: dict[str, float]
    history: Any


@dataclass
class FinetuneResult:
    """The fine-tuned model (trained in place) and one :class:`Phase` per phase run."""

    model: nn.Module
    phases: list[Phase] = field(default_factory=list)

    def summary(self) -> str:
        lines = []
        for ph in self.phases:
            last = ph.history.val_acc[-1] if getattr(ph.history, "val_acc", None) else None
            acc = f", last val acc {last:.3f}" if isinstance(last, float) else ""
            lrs = ", ".join(f"{k} lr={v:g}" for k, v in ph.lrs.items())
            lines.append(f"{ph.name}: {ph.params} ({lrs}){acc}")
        return "\n".join(lines)


def _resolve(model: nn.Module, part: nn.Module | str | None, role: str) -> nn.Module:
    if isinstance(part, str):
        try:
            return model.get_submodule(part)
        except AttributeError:
            names = [n for n, _ in model.named_children()]
            raise ValueError(f"{role}={part!r} is not a submodule of the model; its children are "
                             f"{names}") from None
    if isinstance(part, nn.Module):
        if not any(m is part for m in model.modules()):
            raise ValueError(f"the {role} module is not part of the model being fine-tuned")
        return part
    if part is not None:
        raise TypeError(f"{role} must be an nn.Module, a submodule name or None, got "
                        f"{type(part).__name__}")
    children = list(model.named_children())
    names = [n for n, _ in children]
    if role == "head" and "head" in names:
        return model.head
    if role == "extractor" and "extractor" in names:
        return model.extractor
    if isinstance(model, nn.Sequential) and len(model) >= 2:
        return model[-1] if role == "head" else model[:-1]
    raise ValueError(f"cannot guess the {role} of a {type(model).__name__}; pass {role}= "
                     "(a submodule or its name)")


def finetune(model: nn.Module, train: Any, val: Any = None, *,
             extractor: nn.Module | str | None = None, head: nn.Module | str | None = None,
             head_epochs: int = 5, full_epochs: int = 5, lr: float = 1e-3,
             head_lr: float | None = None, extractor_lr_scale: float = 0.1,
             optimizer: str | Callable[[list[dict[str, Any]]], torch.optim.Optimizer] = "adam",
             loss: Any = "cross_entropy", batch_size: int = 64, seed: int | None = None,
             progress: bool = False, freeze_batchnorm: bool = True,
             **fit_kwargs: Any) -> FinetuneResult:
    """Two-phase fine-tuning of A′ + B (lecture §5.2), training ``model`` in place.

    Args:
        model: the whole model A′ + B (e.g. from :func:`attach_head`, or an ``nl.MLP``).
        train, val: data as ``nl.fit`` takes it (``(X, y)``, a Dataset or a DataLoader).
        extractor, head: A′ and B as submodules of ``model`` or their names. Defaults: the children
            named ``extractor``/``head`` (what ``attach_head`` builds), else ``model[:-1]`` and
            ``model[-1]`` of a Sequential.
        head_epochs: epochs of phase 1 (A′ frozen, B trains at ``head_lr``); 0 skips it.
        full_epochs: epochs of phase 2 (all train; A′ at ``lr·extractor_lr_scale``, the rest at
            ``lr``); 0 skips it (head-only transfer).
        lr: learning rate of phase 2's non-extractor parameters; ``head_lr`` (default ``lr``) is
            phase 1's.
        extractor_lr_scale: A′'s learning-rate factor in phase 2 (0.1: ten times smaller; 1.0:
            plain full fine-tuning).
        optimizer: ``"adam"``, ``"adamw"``, ``"sgd"`` (with momentum 0.9) or a factory
            ``groups -> Optimizer``; built by :func:`nnlab.training.optimizers.make_optimizer`.
        freeze_batchnorm: in phase 1 the extractor's BatchNorm layers also keep their pretrained
            running statistics (they run in eval mode); see :func:`hold_batchnorm`.
        loss, batch_size, seed, progress, **fit_kwargs: passed to ``nl.fit``.

    Returns:
        :class:`FinetuneResult` with the model and, per phase, trainable-parameter counts, the
        learning rates used and ``nl.fit``'s History. At the end every parameter of A′ and B
        is trainable again if phase 2 ran, else A′ stays frozen.
    """
    from nnlab.training import fit

    for nm, v in (("head_epochs", head_epochs), ("full_epochs", full_epochs)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise ValueError(f"{nm} must be a non-negative int, got {v!r}")
    if head_epochs == 0 and full_epochs == 0:
        raise ValueError("head_epochs and full_epochs are both 0: nothing to train")
    for nm, v in (("lr", lr), ("extractor_lr_scale", extractor_lr_scale)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0 or v == float("inf"):
            raise ValueError(f"{nm} must be a positive finite number, got {v!r}")
    head_lr = lr if head_lr is None else head_lr
    ext = _resolve(model, extractor, "extractor")
    hd = _resolve(model, head, "head")
    ext_ids = {id(p) for p in ext.parameters()}
    if any(id(p) in ext_ids for p in hd.parameters()):
        raise ValueError("the head and the extractor share parameters; pass disjoint modules")

    def build(groups: list[dict[str, Any]]) -> torch.optim.Optimizer:
        groups = [g for g in groups if g["params"]]
        if callable(optimizer) and not isinstance(optimizer, str):
            opt = optimizer(groups)
            if not isinstance(opt, torch.optim.Optimizer):
                raise TypeError("the optimizer factory must return a torch.optim.Optimizer")
            return opt
        if not isinstance(optimizer, str) or optimizer.lower() not in _NAMES:
            raise ValueError(f"optimizer must be one of {list(_NAMES)} (or pass a factory "
                             f"callable(groups) -> Optimizer), got {optimizer!r}")
        extra = {"momentum": SGD_MOMENTUM} if optimizer.lower() == "sgd" else {}
        return make_optimizer(optimizer, groups, **extra)

    result = FinetuneResult(model)
    common = dict(loss=loss, batch_size=batch_size, progress=progress, **fit_kwargs)
    if head_epochs:
        freeze(ext)
        unfreeze(hd)
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = build([{"params": trainable, "lr": head_lr}])
        counts = count_parameters(model)
        hold = hold_batchnorm(ext) if freeze_batchnorm else contextlib.nullcontext()
        with hold:
            hist = fit(model, train, val, optimizer=opt, epochs=head_epochs, seed=seed, **common)
        result.phases.append(Phase("head (extractor frozen)", counts, {"head": head_lr}, hist))
    if full_epochs:
        unfreeze(model)
        ext_params = list(ext.parameters())
        rest = [p for p in model.parameters() if id(p) not in ext_ids]
        ext_lr = lr * extractor_lr_scale
        opt = build([{"params": ext_params, "lr": ext_lr}, {"params": rest, "lr": lr}])
        counts = count_parameters(model)
        fit_seed = None if seed is None else seed + 1
        hist = fit(model, train, val, optimizer=opt, epochs=full_epochs, seed=fit_seed, **common)
        result.phases.append(Phase("full (extractor unfrozen)", counts,
                                   {"extractor": ext_lr, "head": lr}, hist))
    return result
