"""Description length of a formula, in bits: what "simpler" means for snapping and choosing.

Minimum description length (Rissanen 1978; AI Feynman, Udrescu & Tegmark 2020, uses the same
idea to rank formulas): a formula is a tree, and writing it down costs

* ``OP_BITS`` per operator or function node (``+``, ``·``, ``^``, ``sin`` …),
* ``SYMBOL_BITS`` per variable and ``CONSTANT_BITS`` per named constant (π, e),
* ``log₂(1 + |p|) + log₂(q)`` for a rational ``p/q`` (so 2 is cheap, 1908/7 is not),
* ``FLOAT_BITS`` for a free real constant: it has to be written to about seven significant
  digits (``log₂ 10⁷ ≈ 23``).

A snapped constant is kept only when it does not make the formula longer (issue 11: "no rational
towers, no invented π powers"), and :func:`numeric_coefficients` lets the last snap pass see a
whole coefficient such as ``153/(2π⁶)`` at once (it is ``1/(4π)`` to 7·10⁻⁵).
"""
from __future__ import annotations

import math

import sympy

__all__ = ["description_length", "numeric_coefficients", "FLOAT_BITS"]

OP_BITS = 3.0
SYMBOL_BITS = 3.0
CONSTANT_BITS = 2.0
FLOAT_BITS = 23.0


def _int_bits(n: int) -> float:
    """``log₂(1 + |n|)``, with a power of ten written as ``m·10^k``: ``log₂(1 + |m|) + OP + log₂(1 + k)``."""
    n, k = abs(n), 0
    while n >= 100 and n % 10 == 0:
        n, k = n // 10, k + 1
    return math.log2(1 + n) + (OP_BITS + math.log2(1 + k) if k else 0.0)


def _rational_bits(r: sympy.Rational) -> float:
    return _int_bits(int(r.p)) + (math.log2(int(r.q)) if r.q < 100 else _int_bits(int(r.q)))


def description_length(expr: sympy.Basic) -> float:
    """Bits needed to write ``expr`` (see the module doc). ``x/π`` costs less than ``0.3183·x``."""
    if isinstance(expr, sympy.Float):
        return FLOAT_BITS
    if isinstance(expr, sympy.Rational):  # Integer included
        return _rational_bits(expr)
    if isinstance(expr, sympy.NumberSymbol) or expr in (sympy.E, sympy.I):
        return CONSTANT_BITS
    if isinstance(expr, sympy.Symbol):
        return SYMBOL_BITS
    if isinstance(expr, sympy.Pow) and expr.exp == -1:  # 1/u: one division, not a power and a -1
        return OP_BITS + description_length(expr.base)
    if not expr.args:
        return SYMBOL_BITS
    n_ops = max(len(expr.args) - 1, 1) if isinstance(expr, (sympy.Add, sympy.Mul)) else 1
    return OP_BITS * n_ops + sum(description_length(a) for a in expr.args)


def numeric_coefficients(expr: sympy.Basic) -> list[tuple[sympy.Mul, sympy.Expr]]:
    """Every product in ``expr`` whose numeric factors are not one plain rational, with that
    numeric factor: e.g. ``(153·P/(2π⁶r²), 153/(2π⁶))``."""
    out: list[tuple[sympy.Mul, sympy.Expr]] = []

    def walk(e: sympy.Basic) -> None:
        if isinstance(e, sympy.Mul):
            num = [a for a in e.args if a.is_number]
            if len(num) > 1 or (num and not isinstance(num[0], sympy.Rational)):
                c = sympy.Mul(*num)
                if not isinstance(c, sympy.Rational) and c.is_real:
                    out.append((e, c))
        for a in e.args:
            walk(a)

    walk(expr)
    return out
