"""Number snap (lecture §6.3, step 6): 3.141 → π, 0.4999 → 1/2, 1.9999 → 2.

Each Float constant of the formula is offered candidates ``r·K``: ``r`` a simple rational (small
denominator) and ``K`` one of 1, π, π², 1/π, 1/π², √π, 1/√π, e, √2, √3 (and 0 for tiny values).
Candidates are tried simplest first; one is kept only when the formula's error on the data stays
within ``tol`` of the unsnapped formula's error — after re-fitting the constants that are still
free (least-squares polish), so snapping one constant lets the others settle exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import sympy

from .polish import evaluate, polish, relative_rmse

__all__ = ["SnapResult", "snap", "snap_candidates"]

_P = sympy.pi
_BASES: list[tuple[sympy.Expr, int]] = [
    (sympy.Integer(1), 0), (_P, 1), (1 / _P, 1), (_P ** 2, 2), (1 / _P ** 2, 2), (sympy.sqrt(_P), 2),
    (1 / sympy.sqrt(_P), 2), (sympy.E, 2), (sympy.sqrt(2), 2), (sympy.sqrt(3), 2), (1 / sympy.sqrt(2 * _P), 3),
    (sympy.sqrt(2 * _P), 3),
]


@dataclass(frozen=True)
class SnapResult:
    """``expr``: the snapped expression; ``error``: its relative RMSE on the data
    (``RMSE / RMS(y)``); ``replaced``: list of ``(old float, new value)`` pairs."""

    expr: sympy.Expr
    error: float
    replaced: tuple[tuple[float, str], ...] = ()


def snap_candidates(v: float, max_denominator: int = 12, rel: float = 2e-2) -> list[sympy.Expr]:
    """Simple values near ``v``, simplest first (each within ``rel`` relative distance)."""
    if not math.isfinite(v):
        return []
    out: list[tuple[float, float, sympy.Expr]] = []
    if abs(v) < 1e-2:
        out.append((0.0, abs(v), sympy.Integer(0)))
    for K, kc in _BASES:
        kv = float(K)
        r = v / kv
        fr = Fraction(r).limit_denominator(max_denominator)
        if fr == 0 or abs(fr.numerator) > 1000:
            continue
        dist = abs(float(fr) - r) / max(abs(r), 1e-300)
        if dist <= rel:
            cx = kc + math.log2(abs(fr.numerator) + 1) + 2 * math.log2(fr.denominator)
            out.append((cx, dist, sympy.Rational(fr.numerator, fr.denominator) * K))
    out.sort(key=lambda t: (t[0], t[1]))
    seen: set = set()
    res = []
    for _, _, e in out:
        if e not in seen:
            seen.add(e)
            res.append(e)
    return res


def _prepare(expr: Any, X: Any, y: Any, variables: Sequence[Any] | None):
    if not isinstance(expr, sympy.Basic):
        raise TypeError(f"expr must be a sympy expression, got {type(expr).__name__}")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[:, None]
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {y.shape[0]}; they must match")
    if variables is None:
        variables = sorted(expr.free_symbols, key=lambda s: s.name)
    variables = [sympy.Symbol(v) if isinstance(v, str) else v for v in variables]
    if len(variables) != X.shape[1]:
        raise ValueError(f"X has {X.shape[1]} columns but {len(variables)} variables were given "
                         f"({', '.join(map(str, variables))}); pass variables= in column order")
    return X, y, variables


def snap(expr: sympy.Expr, X: Any, y: Any, tol: float = 1e-6, variables: Sequence[Any] | None = None,
         max_denominator: int = 12, refit: bool = True, max_tries: int = 4, max_constants: int = 16) -> SnapResult:
    """Snap the constants of ``expr`` to simple numbers where the data allows (lecture §6.3 step 6).

    Args:
        expr: sympy expression in ``variables``.
        X: (N, n_vars) data (a (N,) vector for one variable); y: (N,) targets.
        tol: allowed increase of the relative RMSE over the unsnapped expression's.
        variables: symbols (or names) in the column order of X; default: free symbols sorted by name.
        max_denominator: largest denominator of a snapped rational.
        refit: re-fit the still-free constants by least squares after each snap.
        max_tries: candidates tried per constant.
        max_constants: at most this many constants are tried (each try re-fits the rest).

    Returns:
        :class:`SnapResult` (expression, its relative RMSE, what was replaced).
    """
    X, y, variables = _prepare(expr, X, y, variables)
    if tol < 0 or not math.isfinite(tol):
        raise ValueError(f"tol must be a finite number >= 0, got {tol}")
    base = relative_rmse(evaluate(expr, variables, X), y)
    if not math.isfinite(base):
        return SnapResult(expr, base)
    limit = base + tol
    cur, cur_err = expr, base
    replaced: list[tuple[float, str]] = []
    tried: set[float] = set()
    while True:
        floats = [f for f in cur.atoms(sympy.Float) if float(f) not in tried]
        if not floats or len(tried) >= max_constants:
            break
        # the constant closest (relatively) to a simple value goes first
        ranked = []
        for f in floats:
            c = snap_candidates(float(f), max_denominator)
            ranked.append((0 if c else 1, len(c) == 0, f, c))
        ranked.sort(key=lambda t: (t[0], -abs(float(t[2]))))
        _, _, f, cands = ranked[0]
        tried.add(float(f))
        for cand in cands[:max_tries]:
            new = cur.xreplace({f: cand})
            if refit and new.atoms(sympy.Float):
                new, err = polish(new, variables, X, y)
            else:
                err = relative_rmse(evaluate(new, variables, X), y)
            if err <= limit:
                cur, cur_err = new, err
                replaced.append((float(f), str(cand)))
                break
    return SnapResult(cur, cur_err, tuple(replaced))
