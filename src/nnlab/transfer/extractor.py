"""Transfer learning's two pieces: the pretrained part A′ and the new head B (lecture §5.1).

1. Train A on a large set D_A for task T_A.
2. Take A′ = part of A (e.g. all layers but the last) as a feature extractor.
3. Add new layers B on top and train B (or A′ + B) on the small set D_B for task T_B.
"""
from __future__ import annotations

import copy
from collections import OrderedDict

from torch import nn

__all__ = ["feature_extractor", "attach_head", "output_width"]


def feature_extractor(model: nn.Module, upto: int = -1, copy_weights: bool = False) -> nn.Sequential:
    """A′: the first children of a sequential model, ``model[:upto]``.

    Args:
        model: an ``nn.Sequential`` (``nl.MLP`` is one: ``mlp[:-1]`` is its body, ``mlp[-1]`` its head).
        upto: where to cut, as a Python slice end: ``-1`` drops the last child (the default),
            ``2`` keeps children 0 and 1. Must leave at least one child.
        copy_weights: False (default) shares the layers with ``model`` (training one trains the
            other); True returns an independent deep copy.

    Returns:
        An ``nn.Sequential`` of the kept children, (batch, in) -> (batch, features).
    """
    if not isinstance(model, nn.Sequential):
        raise TypeError(
            f"feature_extractor cuts an nn.Sequential (such as nl.MLP), got {type(model).__name__}; "
            "for other models take the part yourself (e.g. model.encoder) and pass it to attach_head")
    if isinstance(upto, bool) or not isinstance(upto, int):
        raise TypeError(f"upto must be an int slice end (e.g. -1), got {type(upto).__name__}")
    n = len(model)
    end = upto + n if upto < 0 else upto
    if not 0 < end <= n:
        raise ValueError(f"upto={upto} keeps {max(end, 0)} of the model's {n} children; "
                         f"choose upto in [{-n + 1}, {n}] excluding 0")
    part = nn.Sequential(OrderedDict(list(model.named_children())[:end]))
    return copy.deepcopy(part) if copy_weights else part


def output_width(module: nn.Module) -> int:
    """The feature width a module produces, read from its last ``nn.Linear``/conv/embedding layer.

    Raises ``ValueError`` when no such layer exists (then give the width explicitly).
    """
    width = None
    for m in module.modules():
        if isinstance(m, nn.Linear) or type(m).__name__ == "LoRALinear":
            width = m.out_features
        elif isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            width = m.out_channels
        elif isinstance(m, nn.Embedding):
            width = m.embedding_dim
    if width is None:
        raise ValueError(f"cannot tell the output width of a {type(module).__name__} (no Linear/conv "
                         "layer found); pass the head as an nn.Module instead of a class count")
    return width


def attach_head(extractor: nn.Module, head: nn.Module | int) -> nn.Sequential:
    """A′ + B: a model whose children are named ``extractor`` and ``head``.

    Args:
        extractor: the pretrained part (any module mapping inputs to features).
        head: the new layers, or an int ``k`` for a fresh ``nn.Linear(width, k)`` where ``width`` is
            the extractor's output width (see :func:`output_width`).

    Returns:
        ``nn.Sequential(extractor=..., head=...)``; select its parts by name, e.g.
        ``nl.transfer.freeze(model, "extractor")``.
    """
    if not isinstance(extractor, nn.Module):
        raise TypeError(f"extractor must be an nn.Module, got {type(extractor).__name__}")
    if isinstance(head, bool):
        raise TypeError("head must be an nn.Module or a number of outputs, got a bool")
    if isinstance(head, int):
        if head <= 0:
            raise ValueError(f"a head needs at least one output, got {head}")
        head = nn.Linear(output_width(extractor), head)
    elif not isinstance(head, nn.Module):
        raise TypeError(f"head must be an nn.Module or an int, got {type(head).__name__}")
    return nn.Sequential(OrderedDict(extractor=extractor, head=head))
