r"""Freezing: parameters that are not updated during training (lecture §5.2, step 1).

A frozen parameter has ``requires_grad=False``: autograd computes no gradient for it and
optimizers skip it. (BatchNorm running statistics are buffers, not parameters: they still
update in ``train()`` mode; call ``.eval()`` on such layers to hold them too.)

Selection, the same for :func:`freeze`, :func:`unfreeze` and :func:`count_parameters`:
``target`` is an ``nn.Module``, a parameter, or an iterable of either; ``pattern`` (a string or
list of strings, only with a module) narrows it to the parameters whose qualified name, or the
name of a module holding them, equals the pattern or ``re.fullmatch``-es it: ``"0"`` is the
first child of a Sequential with everything inside it, ``"head"`` a submodule named head,
``r".*\.bias"`` every bias, ``r"encoder\.layer\.[0-3]"`` the first four encoder layers.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence, Union

from torch import nn

__all__ = ["freeze", "unfreeze", "count_parameters", "ParamCount", "select_parameters",
           "hold_batchnorm"]

Selectable = Union[nn.Module, nn.Parameter, Iterable[Union[nn.Module, nn.Parameter]]]


def _matches(name: str, pattern: str) -> bool:
    """``name`` is a parameter name; it matches if it or one of its parent modules matches."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        prefix = ".".join(parts[:i])
        if prefix == pattern or re.fullmatch(pattern, prefix):
            return True
    return False


def select_parameters(target: Selectable, pattern: str | Sequence[str] | None = None
                      ) -> list[nn.Parameter]:
    """The distinct parameters chosen by ``target`` and ``pattern`` (see the module docstring)."""
    if pattern is not None:
        if not isinstance(target, nn.Module):
            raise TypeError("a name pattern needs a module to search in, got "
                            f"{type(target).__name__}")
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        if not patterns or not all(isinstance(p, str) and p for p in patterns):
            raise TypeError(f"pattern must be a non-empty string or list of strings, got {pattern!r}")
        for p in patterns:
            try:
                re.compile(p)
            except re.error as e:
                raise ValueError(f"pattern {p!r} is not a valid regular expression: {e}") from None
        named = list(target.named_parameters())
        out = []
        for p in patterns:
            hits = [t for n, t in named if _matches(n, p)]
            if not hits:
                mods = sorted({n.rpartition(".")[0] for n, _ in named if "." in n})
                shown = ", ".join(mods[:15]) + (" ..." if len(mods) > 15 else "")
                raise ValueError(f"pattern {p!r} matches no parameter of the "
                                 f"{type(target).__name__}; module names are: [{shown}]")
            out.extend(hits)
        return _unique(out)
    if isinstance(target, nn.Parameter):
        return [target]
    if isinstance(target, nn.Module):
        return _unique(target.parameters())
    try:
        items = list(target)
    except TypeError:
        raise TypeError("freeze/unfreeze take an nn.Module, a parameter or an iterable of them, got "
                        f"{type(target).__name__}") from None
    out = []
    for it in items:
        if isinstance(it, nn.Parameter):
            out.append(it)
        elif isinstance(it, nn.Module):
            out.extend(it.parameters())
        else:
            raise TypeError(f"cannot freeze a {type(it).__name__}; pass modules or parameters")
    return _unique(out)


def _unique(params: Iterable[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    out = []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


def freeze(target: Selectable, pattern: str | Sequence[str] | None = None) -> int:
    """Set ``requires_grad=False`` on the selected parameters; returns how many scalars were chosen.

    Example: ``freeze(model)``, ``freeze(model[:-1])``, ``freeze(model, "encoder")``,
    ``freeze(model, r"encoder\\.layer\\.[0-3]")``.
    """
    params = select_parameters(target, pattern)
    for p in params:
        p.requires_grad_(False)
    return sum(p.numel() for p in params)


def unfreeze(target: Selectable, pattern: str | Sequence[str] | None = None) -> int:
    """Set ``requires_grad=True`` on the selected parameters; returns how many scalars were chosen."""
    params = select_parameters(target, pattern)
    for p in params:
        if not (p.is_floating_point() or p.is_complex()):
            raise TypeError(f"cannot unfreeze an integer parameter of dtype {p.dtype}")
        p.requires_grad_(True)
    return sum(p.numel() for p in params)


@dataclass(frozen=True)
class ParamCount:
    """How many parameter scalars train, out of how many."""

    trainable: int
    total: int

    @property
    def frozen(self) -> int:
        return self.total - self.trainable

    @property
    def fraction(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.trainable:,} trainable of {self.total:,} ({100 * self.fraction:.2f}%)"


def count_parameters(target: Selectable, pattern: str | Sequence[str] | None = None) -> ParamCount:
    """Trainable and total parameter counts (shared parameters counted once)."""
    params = select_parameters(target, pattern)
    return ParamCount(sum(p.numel() for p in params if p.requires_grad),
                      sum(p.numel() for p in params))


@contextlib.contextmanager
def hold_batchnorm(module: nn.Module) -> Iterator[int]:
    """Inside the ``with`` block, the BatchNorm layers of ``module`` run in eval mode.

    Freezing parameters does not freeze BatchNorm's running mean/variance (buffers updated in
    ``train()`` mode); a frozen extractor should normalise with its pretrained statistics. A
    forward pre-hook switches each BatchNorm layer to eval just before it runs, so a training loop
    that calls ``model.train()`` cannot undo it; the hooks are removed on exit. Yields the number
    of BatchNorm layers held.
    """
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def to_eval(m: nn.Module, _inp: object) -> None:  # returns None: the input is left as it is
        m.train(False)

    handles = [m.register_forward_pre_hook(to_eval) for m in bns]
    try:
        yield len(bns)
    finally:
        for h in handles:
            h.remove()
