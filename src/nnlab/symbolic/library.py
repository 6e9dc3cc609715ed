"""The library of simple 1-D functions that KAN edges are matched against (lecture §6.3, step 3).

Each entry carries the same function three ways: a torch function (for training and matching),
a sympy function (for the formula) and a *safe domain* (a predicate telling where the torch
function is defined and finite), plus a complexity used to prefer simple matches.
An edge that matches entry ``f`` computes ``c·f(a·x + b) + d`` (the affine wrapper, step 4).

The built-in entries are read from the one function registry (:mod:`nnlab.functions`), which
also holds the activations of §3 (``tanh`` and ``arctan`` are one entry each for both uses).
Users add their own entries with :func:`register` (to the default :data:`LIBRARY`) or build a
private :class:`Library`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping

import sympy
import torch

from nnlab.functions import FunctionSpec, function

__all__ = ["SymbolicFunction", "Library", "LIBRARY", "register", "default_library", "from_spec", "DEFAULT_NAMES"]

Tensor = torch.Tensor


def _all_real(x: Tensor) -> Tensor:
    return torch.ones_like(x, dtype=torch.bool)


@dataclass(frozen=True)
class SymbolicFunction:
    """One library entry.

    Attributes:
        name: key in the library (e.g. ``"sin"``).
        torch_fn: elementwise torch function ``f(x)``.
        sympy_fn: the same function on a sympy expression.
        complexity: cost used to prefer simple matches (``0`` < ``x`` < ``x^2`` < ``exp`` ...).
        valid: predicate ``valid(x) -> bool tensor``: where ``f`` is defined and finite.
        fill: an input inside the domain, used in place of invalid inputs during training so
            gradients stay finite (the formula is never evaluated there by the matcher).
        domain: human-readable statement of the safe domain.
    """

    name: str
    torch_fn: Callable[[Tensor], Tensor]
    sympy_fn: Callable[[sympy.Expr], sympy.Expr]
    complexity: int
    valid: Callable[[Tensor], Tensor] = field(default=_all_real)
    fill: float = 0.0
    domain: str = "all reals"

    def safe(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(f(x) with invalid inputs replaced by f(fill), valid mask)``: never NaN/inf."""
        ok = self.valid(x)
        xs = torch.where(ok, x, torch.full_like(x, self.fill))
        y = self.torch_fn(xs)
        ok = ok & torch.isfinite(y)
        y = torch.where(ok, y, torch.zeros_like(y))
        return y, ok


class Library(Mapping[str, SymbolicFunction]):
    """An ordered, name-keyed collection of :class:`SymbolicFunction` (a read-only mapping)."""

    def __init__(self, functions: Iterable[SymbolicFunction] = ()) -> None:
        self._fns: dict[str, SymbolicFunction] = {}
        for f in functions:
            self.add(f)

    def add(self, fn: SymbolicFunction) -> None:
        if not isinstance(fn, SymbolicFunction):
            raise TypeError(f"expected a SymbolicFunction, got {type(fn).__name__}")
        if not isinstance(fn.complexity, int) or fn.complexity < 0:
            raise ValueError(f"complexity of {fn.name!r} must be a non-negative int, got {fn.complexity!r}")
        self._fns[fn.name] = fn

    def register(self, name: str, torch_fn: Callable, sympy_fn: Callable, complexity: int = 2,
                 valid: Callable | None = None, fill: float = 0.0, domain: str = "all reals") -> SymbolicFunction:
        """Add (or replace) an entry; returns it. ``valid`` defaults to "all reals"."""
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string")
        if not callable(torch_fn) or not callable(sympy_fn):
            raise TypeError("torch_fn and sympy_fn must be callables of one argument")
        fn = SymbolicFunction(name, torch_fn, sympy_fn, complexity, valid or _all_real, float(fill), domain)
        self.add(fn)
        return fn

    def subset(self, names: Iterable[str]) -> "Library":
        """A new library with only ``names`` (in that order); unknown names raise ``ValueError``."""
        names = list(names)
        for n in names:
            if n not in self._fns:
                raise ValueError(f"unknown library function {n!r}; valid names: {', '.join(self._fns)}")
        return Library(self._fns[n] for n in names)

    def __getitem__(self, name: str) -> SymbolicFunction:
        try:
            return self._fns[name]
        except KeyError:
            raise KeyError(f"unknown library function {name!r}; valid names: {', '.join(self._fns)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._fns)

    def __len__(self) -> int:
        return len(self._fns)

    def __repr__(self) -> str:
        return f"Library({', '.join(self._fns)})"


#: Order of the built-in library (issue 4's list); the entries come from the one function registry.
DEFAULT_NAMES = ("0", "x", "x^2", "x^3", "x^4", "1/x", "1/x^2", "sqrt", "1/sqrt", "exp", "log", "sin", "cos",
                 "tan", "tanh", "arcsin", "arctan", "arctanh", "abs", "sgn", "gaussian")


def from_spec(spec: FunctionSpec) -> SymbolicFunction:
    """The library entry of a registered :class:`~nnlab.functions.FunctionSpec` (one with a complexity)."""
    if spec.complexity is None:
        raise ValueError(f"function {spec.name!r} has no complexity: it is not meant for the symbolic library")
    return SymbolicFunction(spec.name, spec.raw_fn, spec.raw_sympy, spec.complexity, spec.valid or _all_real,
                            spec.fill, spec.domain)


def default_library() -> Library:
    """A fresh copy of the built-in library, read from the function registry (:mod:`nnlab.functions`)."""
    import nnlab.activations  # noqa: F401  (registers tanh and arctan)

    return Library(from_spec(function(n)) for n in DEFAULT_NAMES)


#: The default library used by :func:`nnlab.symbolic.auto_symbolic` and the regressor.
LIBRARY: Library = default_library()


def register(name: str, torch_fn: Callable, sympy_fn: Callable, complexity: int = 2,
             valid: Callable | None = None, fill: float = 0.0, domain: str = "all reals") -> SymbolicFunction:
    """Register a function in the default :data:`LIBRARY` (see :meth:`Library.register`)."""
    return LIBRARY.register(name, torch_fn, sympy_fn, complexity, valid, fill, domain)
