"""Put LoRA adapters into a model and report what trains (lecture §5.3)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from .config import LoRAConfig, Targets, select_linears
from .layer import LoRALinear

__all__ = ["inject", "lora_layers", "set_submodule", "trainable_report", "TrainableReport"]


def set_submodule(model: nn.Module, name: str, new: nn.Module) -> None:
    """Replace the submodule at the dotted ``name`` (``"0.1"``, ``"encoder.layer.3.query"``)."""
    parent_name, _, leaf = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, leaf, new)


def lora_layers(model: nn.Module) -> list[tuple[str, LoRALinear]]:
    """The ``(name, LoRALinear)`` pairs of ``model``, in ``named_modules`` order."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LoRALinear)]


def inject(model: nn.Module, rank: int = 4, alpha: float = 8.0, dropout: float = 0.0,
           targets: Targets = None, exclude: Targets = (), *,
           config: LoRAConfig | None = None) -> nn.Module:
    """Wrap the chosen ``nn.Linear`` layers of ``model`` in :class:`LoRALinear`, in place.

    Every other parameter of ``model`` is frozen (``requires_grad=False``), so only the LoRA
    matrices A and B train; unfreeze a new head afterwards with
    ``nl.transfer.unfreeze(model, "head")`` if it should train too.

    Args:
        model: any ``nn.Module``; it is modified in place and returned.
        rank, alpha, dropout: see :class:`LoRALinear` (ignored when ``config`` is given).
        targets: name patterns and/or ``nn.Linear`` classes to wrap (``None``: every Linear);
            see :mod:`nnlab.lora.config` for the matching rule.
        exclude: patterns/types never wrapped.
        config: a :class:`LoRAConfig` holding all of the above.

    Returns:
        ``model``, now holding ``LoRALinear`` layers.

    Raises:
        ValueError: no Linear matches (the message lists the available names), or the rank does not
            fit a chosen layer (the message names the layer).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"inject needs an nn.Module, got {type(model).__name__}")
    cfg = config if config is not None else LoRAConfig(rank, alpha, dropout, targets, exclude)
    chosen = select_linears(model, cfg.targets, cfg.exclude)
    for name, layer in chosen:  # check every layer first so a bad rank leaves the model untouched
        _check_rank(layer, cfg.rank, name)
    for name, layer in chosen:
        set_submodule(model, name, LoRALinear(layer, cfg.rank, cfg.alpha, cfg.dropout, name=name))
    keep = {id(p) for _, m in lora_layers(model) for p in (m.lora_A, m.lora_B)}
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
    return model


def _check_rank(layer: nn.Linear, rank: int, name: str) -> None:
    if rank >= min(layer.in_features, layer.out_features):
        raise ValueError(
            f"rank={rank} is too large for {name!r} of shape (out={layer.out_features}, "
            f"in={layer.in_features}): LoRA needs 0 < rank < "
            f"{min(layer.in_features, layer.out_features)}; lower the rank or add {name!r} to exclude")


@dataclass(frozen=True)
class TrainableReport:
    """Trainable vs total parameter counts, overall and per LoRA layer."""

    trainable: int
    total: int
    lora: int
    layers: tuple[tuple[str, int, int], ...]  # (name, LoRA params, base params)

    @property
    def fraction(self) -> float:
        """trainable / total (0 for an empty model)."""
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        lines = [f"trainable {self.trainable:,} of {self.total:,} parameters "
                 f"({100 * self.fraction:.3f}%), LoRA {self.lora:,} in {len(self.layers)} layer(s)"]
        for name, n_lora, n_base in self.layers:
            lines.append(f"  {name}: LoRA {n_lora:,} on a frozen base of {n_base:,}")
        return "\n".join(lines)


def trainable_report(model: nn.Module) -> TrainableReport:
    """Count trainable/total parameters (shared ones once) and the LoRA parameters per layer."""
    seen: set[int] = set()
    trainable = total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    rows = []
    for name, m in lora_layers(model):
        n_base = sum(p.numel() for p in m.base_layer.parameters())
        rows.append((name, m.lora_A.numel() + m.lora_B.numel(), n_base))
    return TrainableReport(trainable, total, sum(r[1] for r in rows), tuple(rows))
