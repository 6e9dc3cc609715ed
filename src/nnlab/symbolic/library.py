"""The library of simple 1-D functions that KAN edges are matched against (lecture §6.3, step 3).

Each entry carries the same function three ways: a torch function (for training and matching),
a sympy function (for the formula) and a *safe domain* (a predicate telling where the torch
function is defined and finite), plus a complexity used to prefer simple matches.
An edge that matches entry ``f`` computes ``c·f(a·x + b) + d`` (the affine wrapper, step 4).

Users add their own entries with :func:`register` (to the default :data:`LIBRARY`) or build a
private :class:`Library`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping

import sympy
import torch

__all__ = ["SymbolicFunction", "Library", "LIBRARY", "register", "default_library"]

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


_EPS = 1e-6


def _nonzero(x: Tensor) -> Tensor:
    return x.abs() > _EPS


def _pos(x: Tensor) -> Tensor:
    return x > _EPS


def _nonneg(x: Tensor) -> Tensor:
    return x >= 0


def _unit_closed(x: Tensor) -> Tensor:
    return x.abs() <= 1


def _unit_open(x: Tensor) -> Tensor:
    return x.abs() < 1 - _EPS


def _tan_ok(x: Tensor) -> Tensor:
    return torch.cos(x).abs() > 1e-3


def _exp_ok(x: Tensor) -> Tensor:
    return x < 50


def default_library() -> Library:
    """A fresh copy of the built-in library (issue 4's list)."""
    s = sympy
    e = [
        SymbolicFunction("0", lambda x: torch.zeros_like(x), lambda x: s.Integer(0), 0),
        SymbolicFunction("x", lambda x: x, lambda x: x, 1),
        SymbolicFunction("x^2", lambda x: x ** 2, lambda x: x ** 2, 2),
        SymbolicFunction("x^3", lambda x: x ** 3, lambda x: x ** 3, 3),
        SymbolicFunction("x^4", lambda x: x ** 4, lambda x: x ** 4, 3),
        SymbolicFunction("1/x", lambda x: 1 / x, lambda x: 1 / x, 2, _nonzero, 1.0, "x != 0"),
        SymbolicFunction("1/x^2", lambda x: 1 / x ** 2, lambda x: x ** -2, 3, _nonzero, 1.0, "x != 0"),
        SymbolicFunction("sqrt", torch.sqrt, s.sqrt, 2, _nonneg, 1.0, "x >= 0"),
        SymbolicFunction("1/sqrt", torch.rsqrt, lambda x: 1 / s.sqrt(x), 3, _pos, 1.0, "x > 0"),
        SymbolicFunction("exp", torch.exp, s.exp, 3, _exp_ok, 0.0, "x < 50 (overflow guard)"),
        SymbolicFunction("log", torch.log, s.log, 3, _pos, 1.0, "x > 0"),
        SymbolicFunction("sin", torch.sin, s.sin, 3),
        SymbolicFunction("cos", torch.cos, s.cos, 3),
        SymbolicFunction("tan", torch.tan, s.tan, 4, _tan_ok, 0.0, "cos(x) != 0"),
        SymbolicFunction("tanh", torch.tanh, s.tanh, 4),
        SymbolicFunction("arcsin", torch.arcsin, s.asin, 4, _unit_closed, 0.0, "|x| <= 1"),
        SymbolicFunction("arctan", torch.arctan, s.atan, 4),
        SymbolicFunction("arctanh", torch.arctanh, s.atanh, 4, _unit_open, 0.0, "|x| < 1"),
        SymbolicFunction("abs", torch.abs, s.Abs, 4),
        SymbolicFunction("sgn", torch.sign, s.sign, 4),
        SymbolicFunction("gaussian", lambda x: torch.exp(-x ** 2), lambda x: s.exp(-x ** 2), 4),
    ]
    return Library(e)


#: The default library used by :func:`nnlab.symbolic.auto_symbolic` and the regressor.
LIBRARY: Library = default_library()


def register(name: str, torch_fn: Callable, sympy_fn: Callable, complexity: int = 2,
             valid: Callable | None = None, fill: float = 0.0, domain: str = "all reals") -> SymbolicFunction:
    """Register a function in the default :data:`LIBRARY` (see :meth:`Library.register`)."""
    return LIBRARY.register(name, torch_fn, sympy_fn, complexity, valid, fill, domain)
