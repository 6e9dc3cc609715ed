"""LoRA settings and the rule that picks which ``nn.Linear`` layers get an adapter (lecture §5.3).

A :class:`LoRAConfig` only stores and checks its arguments; :func:`select_linears` turns
its ``targets``/``exclude`` into the list of ``(qualified_name, nn.Linear)`` to wrap.

Target rule (one table for names and types):

* ``None``: every ``nn.Linear`` of the model;
* a string is a pattern on the qualified module name (``model.named_modules()``): it matches
  when the name equals it, ends with ``"." + pattern`` (``"query"`` matches
  ``"encoder.layer.0.attention.self.query"``), or ``re.fullmatch``-es it as a regular expression
  (``r".*\\.(query|value)"``);
* a class (a subclass of ``nn.Linear``) matches by ``isinstance``;
* a list/tuple mixes both; a module matches if any entry does.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence, Union

from torch import nn

__all__ = ["LoRAConfig", "Targets", "name_matches", "select_linears"]

Target = Union[str, type]
Targets = Union[None, Target, Sequence[Target]]


@dataclass(frozen=True)
class LoRAConfig:
    """Hyper-parameters of a LoRA adapter: ``h = W₀x + (alpha/rank)·B·A·x``.

    Args:
        rank: r, the inner dimension of ``A`` (r, in) and ``B`` (out, r); ``0 < r < min(in, out)``.
        alpha: the scale numerator; the update is multiplied by ``alpha / rank``.
        dropout: dropout probability applied to ``x`` on the LoRA path only (0 disables it).
        targets: which ``nn.Linear`` layers to wrap (see the module docstring); ``None`` = all.
        exclude: patterns/types never wrapped even if they match ``targets`` (e.g. a new head).
    """

    rank: int = 4
    alpha: float = 8.0
    dropout: float = 0.0
    targets: Targets = None
    exclude: Targets = field(default=())

    def __post_init__(self) -> None:
        check_hparams(self.rank, self.alpha, self.dropout)
        _normalise(self.targets, "targets")
        _normalise(self.exclude, "exclude")

    @property
    def scaling(self) -> float:
        """alpha / rank, the factor in front of B·A."""
        return float(self.alpha) / int(self.rank)


def check_hparams(rank: object, alpha: object, dropout: object) -> None:
    """Raise ``TypeError``/``ValueError`` for a rank, alpha or dropout that cannot work."""
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise TypeError(f"rank must be an int, got {type(rank).__name__} {rank!r}")
    if rank <= 0:
        raise ValueError(f"rank must be a positive int (e.g. 4), got {rank}")
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
        raise TypeError(f"alpha must be a number, got {type(alpha).__name__} {alpha!r}")
    if not alpha > 0 or alpha != alpha or alpha == float("inf"):
        raise ValueError(f"alpha must be a positive finite number (e.g. 2*rank), got {alpha}")
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)):
        raise TypeError(f"dropout must be a number in [0, 1), got {type(dropout).__name__}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


def _normalise(targets: Targets, what: str) -> tuple[Target, ...]:
    if targets is None:
        return ()
    if isinstance(targets, (str, type)):
        items: Iterable[Target] = (targets,)
    elif isinstance(targets, (list, tuple, set, frozenset)):
        items = targets
    else:
        raise TypeError(f"{what} must be a name pattern (str), an nn.Linear class or a list of them, "
                        f"got {type(targets).__name__} {targets!r}")
    out = []
    for t in items:
        if isinstance(t, str):
            if not t:
                raise ValueError(f"{what} contains an empty pattern")
            try:
                re.compile(t)
            except re.error as e:
                raise ValueError(f"{what} pattern {t!r} is not a valid regular expression: {e}") from None
        elif isinstance(t, type):
            if not issubclass(t, nn.Linear):
                raise TypeError(f"{what} type {t.__name__} is not an nn.Linear subclass; LoRA wraps "
                                "nn.Linear layers only")
        else:
            raise TypeError(f"{what} entries must be name patterns (str) or nn.Linear classes, "
                            f"got {type(t).__name__} {t!r}")
        out.append(t)
    return tuple(out)


def name_matches(name: str, pattern: str) -> bool:
    """True when the qualified ``name`` equals, ends with ``.pattern``, or fullmatches ``pattern``."""
    if name == pattern or name.endswith("." + pattern):
        return True
    return re.fullmatch(pattern, name) is not None


def _matches(name: str, module: nn.Module, rules: tuple[Target, ...]) -> bool:
    for r in rules:
        if isinstance(r, str) and name_matches(name, r):
            return True
        if isinstance(r, type) and isinstance(module, r):
            return True
    return False


def select_linears(model: nn.Module, targets: Targets = None,
                   exclude: Targets = ()) -> list[tuple[str, nn.Linear]]:
    """The ``(name, layer)`` pairs of plain ``nn.Linear`` layers chosen by ``targets``/``exclude``.

    Layers already inside a LoRA wrapper are skipped. Raises ``ValueError`` naming the available
    layers when nothing matches.
    """
    from .layer import LoRALinear

    rules = _normalise(targets, "targets")
    skip = _normalise(exclude, "exclude")
    wrapped = [n for n, m in model.named_modules() if isinstance(m, LoRALinear)]
    linears = [(n, m) for n, m in model.named_modules()
               if isinstance(m, nn.Linear) and n and not any(n.startswith(w + ".") for w in wrapped)]
    chosen = [(n, m) for n, m in linears
              if (not rules or _matches(n, m, rules)) and not _matches(n, m, skip)]
    if not chosen and isinstance(model, nn.Linear):
        raise ValueError("inject wraps the Linear layers inside a model; for a lone nn.Linear use "
                         "nl.lora.LoRALinear(layer, rank, alpha) directly")
    if not chosen:
        names = [n for n, _ in linears]
        shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
        extra = f"; already wrapped: {', '.join(wrapped[:6])}" if wrapped else ""
        raise ValueError(f"no nn.Linear in the model matches targets={targets!r} "
                         f"(exclude={exclude!r}); available: [{shown}]{extra}")
    return chosen
