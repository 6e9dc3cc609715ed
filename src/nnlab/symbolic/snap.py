"""Number snap (lecture §6.3, step 6): 3.141 → π, 0.4999 → 1/2, 1.9999 → 2.

Each Float constant of the formula is offered candidates ``r·K``: ``r`` a simple rational (small
denominator, numerator at most ``max_numerator``) and ``K`` one of 1, π, π², 1/π, 1/π², √π, 1/√π,
√2, √3, √(2π), 1/√(2π) (and 0 for tiny values). ``e`` is not offered: it comes with ``exp``, and a
power of ``e`` in a coefficient is an invention (issue 11). Candidates are tried simplest first.
One is kept only when

* it lies within the constant's uncertainty: ``|r·K − v| ≤ 4·se(v)`` (``se`` from the Jacobian
  of the least-squares fit; at least 10⁻⁶ relative, at most 2%; 0 when ``|v| ≤ 4·se(v)``), or
  the snapped formula is no worse on the data than before;
* the formula's error stays within ``tol`` of the unsnapped formula's error, after re-fitting the
  constants that are still free (least-squares polish);
* the formula does not get longer (:func:`~nnlab.symbolic.length.description_length`): a free
  constant costs 23 bits, ``1908/(7π²)`` more than a plain ``x/π``.

A last pass (:func:`snap_coefficients`) re-snaps every numeric coefficient as a whole, so
``153/(2π⁶)`` (snapped piece by piece) becomes ``1/(4π)`` when the data agree.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import sympy

from .length import description_length, numeric_coefficients
from .polish import evaluate, polish, relative_rmse, standard_errors

__all__ = ["SnapResult", "snap", "snap_candidates", "snap_coefficients"]

_P = sympy.pi
_BASES: list[tuple[sympy.Expr, int]] = [
    (sympy.Integer(1), 0), (_P, 1), (1 / _P, 1), (_P ** 2, 2), (1 / _P ** 2, 2), (sympy.sqrt(_P), 2),
    (1 / sympy.sqrt(_P), 2), (sympy.sqrt(2), 2), (sympy.sqrt(3), 2), (1 / sympy.sqrt(2 * _P), 3),
    (sympy.sqrt(2 * _P), 3),
]
_MAX_WINDOW = 2e-2
_MIN_WINDOW = 1e-6


@dataclass(frozen=True)
class SnapResult:
    """``expr``: the snapped expression; ``error``: its relative RMSE on the data
    (``RMSE / RMS(y)``); ``replaced``: list of ``(old float, new value)`` pairs."""

    expr: sympy.Expr
    error: float
    replaced: tuple[tuple[float, str], ...] = ()


def snap_candidates(v: float, max_denominator: int = 12, rel: float = _MAX_WINDOW,
                    max_numerator: int = 64, rational_only: bool = False) -> list[sympy.Expr]:
    """Simple values near ``v``, simplest first (each within ``rel`` relative distance);
    ``rational_only``: no π or roots (for exponents: ``x^(π/3)`` is not a law)."""
    if not math.isfinite(v):
        return []
    out: list[tuple[float, float, sympy.Expr]] = []
    if abs(v) < 1e-2:
        out.append((0.0, abs(v), sympy.Integer(0)))
    for K, kc in (_BASES[:1] if rational_only else _BASES):
        kv = float(K)
        r = v / kv
        fr = Fraction(r).limit_denominator(max_denominator)
        if fr == 0 or abs(fr.numerator) > max_numerator:
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
        se = standard_errors(cur, variables, X, y)
        # the constant closest (relatively) to a simple value goes first
        exponents = {p.exp for p in cur.atoms(sympy.Pow) if isinstance(p.exp, sympy.Float)}
        ranked = []
        for f in floats:
            c = snap_candidates(float(f), max_denominator, rational_only=f in exponents)
            ranked.append((0 if c else 1, f, c))
        ranked.sort(key=lambda t: (t[0], -abs(float(t[1]))))
        _, f, cands = ranked[0]
        tried.add(float(f))
        v = float(f)
        se_f = se.get(f, math.inf)
        window = min(max(4 * se_f / max(abs(v), 1e-300), _MIN_WINDOW), _MAX_WINDOW)
        length = description_length(cur)
        for cand in cands[:max_tries]:
            new = cur.xreplace({f: cand})
            if description_length(new) > length:
                continue
            if refit and new.atoms(sympy.Float):
                new, err = polish(new, variables, X, y)
            else:
                err = relative_rmse(evaluate(new, variables, X), y)
            close = abs(float(cand) - v) <= window * abs(v) or err <= cur_err + 1e-12 \
                or (cand == 0 and abs(v) <= 4 * se_f)  # a tiny term within its uncertainty of 0
            if close and err <= limit:
                cur, cur_err = new, err
                replaced.append((v, str(cand)))
                break
    return SnapResult(cur, cur_err, tuple(replaced))


def snap_coefficients(expr: sympy.Expr, X: Any, y: Any, tol: float = 1e-6,
                      variables: Sequence[Any] | None = None) -> SnapResult:
    """Re-snap each numeric coefficient of ``expr`` as a whole (e.g. ``153/(2π⁶) → 1/(4π)``,
    ``0.9999·√10/√10 → 1``): the shortest candidate that keeps the error within ``tol`` of the
    current one replaces the coefficient when it makes the formula shorter."""
    X, y, variables = _prepare(expr, X, y, variables)
    cur = expr
    cur_err = relative_rmse(evaluate(cur, variables, X), y)
    if not math.isfinite(cur_err):
        return SnapResult(expr, cur_err)
    limit = cur_err + tol
    replaced: list[tuple[float, str]] = []
    for node, coef in numeric_coefficients(expr):
        try:
            v = float(coef)
        except (TypeError, ValueError):
            continue
        rest = [a for a in node.args if not a.is_number]
        length = description_length(cur)
        k = int(math.floor(math.log10(abs(v)) + 0.5)) if v != 0 and math.isfinite(v) else 0
        cands = snap_candidates(v)[:6]
        if abs(k) >= 2:  # 1.0e+300 = 10**300 exactly (what undoing the scale leaves)
            cands += [c * sympy.Integer(10) ** k for c in snap_candidates(v / 10.0 ** k)[:3]]
        for cand in cands:
            new = cur.xreplace({node: sympy.Mul(cand, *rest)})
            if new == cur or description_length(new) >= length:
                continue
            err = relative_rmse(evaluate(new, variables, X), y)
            if err <= limit:
                cur, cur_err = new, err
                replaced.append((v, str(cand)))
                break
    return SnapResult(cur, cur_err, tuple(replaced))
