"""Number snap (lecture §6.3, step 6): 3.141 → π, 0.4999 → 1/2, 1.9999 → 2.

Each Float constant of the formula is offered candidates ``r·K``: ``r`` a simple rational (small
denominator, numerator at most ``max_numerator``) and ``K`` one of 1, π, π², 1/π, 1/π², √π, 1/√π,
√2, √3, √(2π), 1/√(2π) (and 0 for tiny values); a constant known to 1e-9 (exact data) is also
offered rationals with denominators up to 60 (``3/(20π)``). ``e`` is not offered: it comes with ``exp``, and a
power of ``e`` in a coefficient is an invention (issue 11). Candidates are tried simplest first.
One is kept only when

* it lies within the constant's confidence interval: ``|r·K − v| ≤ z·se(v)`` (``se`` from the
  Jacobian of the least-squares fit, ``z`` Student's quantile at level α; at least 10⁻⁶
  relative), or the snapped formula is no worse on the data than before; 0 is offered first
  when the interval holds 0 (a term that carries nothing is dropped);
* the data do not object, after re-fitting the constants that are still free (least-squares
  polish): the F-test of :mod:`~nnlab.symbolic.significance` against the fully free fit, or an
  error increase of at most ``tol`` (round-off). Under noise the F-test on the refit formula *is*
  the (profile) confidence region, so the marginal interval is not required. When the residual
  of the free fit still depends on x (a k-NN test), it is misfit, not noise: only ``tol`` counts;
* a constant that is not identifiable (it moves along a flat direction of the fit with others, as
  the common scale of ``P`` and ``Q`` in ``P/Q``) is offered ±1 first: the refit moves the rest;
* the formula does not get longer (:func:`~nnlab.symbolic.length.description_length`): a free
  constant costs 23 bits, ``1908/(7π²)`` more than a plain ``x/π``.

First every constant is moved at once to the simplest value inside its interval (the constants
of a fit are correlated: ``C·a^p·b^q`` may reject ``p = 1`` alone at 3.4 standard errors and
accept ``C = p = q = 1`` together); then, one constant at a time, the rest are refit after each snap.

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

from .dependence import NOISE_STRUCTURE, residual_structure
from .length import description_length, numeric_coefficients
from .polish import evaluate, polish, relative_rmse, standard_errors
from .significance import ALPHA, SnapTest

__all__ = ["SnapResult", "reference_test", "snap", "snap_candidates", "snap_coefficients"]

_P = sympy.pi
_BASES: list[tuple[sympy.Expr, int]] = [
    (sympy.Integer(1), 0), (_P, 1), (1 / _P, 1), (_P ** 2, 2), (1 / _P ** 2, 2), (sympy.sqrt(_P), 2),
    (1 / sympy.sqrt(_P), 2), (sympy.sqrt(2), 2), (sympy.sqrt(3), 2), (1 / sympy.sqrt(2 * _P), 3),
    (sympy.sqrt(2 * _P), 3),
]
_MAX_WINDOW = 2e-2
_MIN_WINDOW = 1e-6
_MAX_NOISY_WINDOW = 0.1
_SLACK_BITS = 1.0
# a constant known to 1e-9 (exact data) may also snap to a rational with a larger denominator
# (3/(20π) in 3q²/(5·4πεd)): a random constant lands that close to one of them with odds ~1e-5
_EXACT_DENOMINATOR = 60
_EXACT_DIST = 1e-9


@dataclass(frozen=True)
class SnapResult:
    """``expr``: the snapped expression; ``error``: its relative RMSE on the data
    (``RMSE / RMS(y)``); ``replaced``: list of ``(old float, new value)`` pairs."""

    expr: sympy.Expr
    error: float
    replaced: tuple[tuple[float, str], ...] = ()


def _scored_candidates(v: float, max_denominator: int = 12, rel: float = _MAX_WINDOW,
                       max_numerator: int = 64, rational_only: bool = False) -> list[tuple[float, sympy.Expr]]:
    """``(cost in bits, value)`` of the simple values near ``v``, simplest first (see snap_candidates)."""
    if not math.isfinite(v):
        return []
    out: list[tuple[float, float, sympy.Expr]] = []
    if abs(v) < 1e-2:
        out.append((0.0, abs(v), sympy.Integer(0)))
    for K, kc in (_BASES[:1] if rational_only else _BASES):
        kv = float(K)
        r = v / kv
        for cap, near in ((max_denominator, rel), (max(_EXACT_DENOMINATOR, max_denominator), min(rel, _EXACT_DIST))):
            fr = Fraction(r).limit_denominator(cap)
            if fr == 0 or abs(fr.numerator) > max_numerator:
                continue
            dist = abs(float(fr) - r) / max(abs(r), 1e-300)
            if dist <= near:
                cx = kc + math.log2(abs(fr.numerator) + 1) + 2 * math.log2(fr.denominator)
                out.append((cx, dist, sympy.Rational(fr.numerator, fr.denominator) * K))
    out.sort(key=lambda t: (t[0], t[1]))
    seen: set = set()
    res = []
    for cx, _, e in out:
        if e not in seen:
            seen.add(e)
            res.append((cx, e))
    return res


def snap_candidates(v: float, max_denominator: int = 12, rel: float = _MAX_WINDOW,
                    max_numerator: int = 64, rational_only: bool = False) -> list[sympy.Expr]:
    """Simple values near ``v``, simplest first (each within ``rel`` relative distance);
    ``rational_only``: no π or roots (for exponents: ``x^(π/3)`` is not a law)."""
    return [e for _, e in _scored_candidates(v, max_denominator, rel, max_numerator, rational_only)]


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


def _undefined(expr: sympy.Expr) -> bool:
    """A snap that leaves ``zoo``/``nan`` (e.g. a constant in a denominator set to 0) is no formula."""
    return expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


def _q(test: SnapTest, expr: sympy.Expr) -> int:
    """Constants fixed so far: the reference's free constants minus those still free (at least 1)."""
    return max(test.p - len(expr.atoms(sympy.Float)), 1)


def reference_test(expr: sympy.Expr, X: Any, y: Any, variables: Sequence[Any] | None = None,
                   tol: float = 1e-6, alpha: float = ALPHA) -> SnapTest:
    """The :class:`~nnlab.symbolic.significance.SnapTest` of snaps of ``expr`` (a least-squares fit
    of its Float constants to (X, y)): ``n`` rows, ``p`` free constants, its relative RMSE."""
    X, y, variables = _prepare(expr, X, y, variables)
    pred = evaluate(expr, variables, X)
    return _test(expr, X, y, pred, relative_rmse(pred, y), tol, alpha)


def _test(expr: sympy.Expr, X: np.ndarray, y: np.ndarray, pred: np.ndarray, err: float, tol: float,
          alpha: float) -> SnapTest:
    """The F-test against ``expr``'s fit; only the ``tol`` floor when its residual still depends on
    x (k-NN test): then the residual is misfit, not noise, and would license invented constants."""
    if alpha > 0 and err > tol and math.isfinite(err) \
            and residual_structure(X, y - pred) > NOISE_STRUCTURE:
        alpha = 0.0
    return SnapTest(len(y), len(expr.atoms(sympy.Float)), err, floor=tol, alpha=alpha)


def snap(expr: sympy.Expr, X: Any, y: Any, tol: float = 1e-6, variables: Sequence[Any] | None = None,
         max_denominator: int = 12, refit: bool = True, max_tries: int = 4, max_constants: int = 16,
         test: SnapTest | None = None, alpha: float = ALPHA) -> SnapResult:
    """Snap the constants of ``expr`` to simple numbers where the data allows (lecture §6.3 step 6).

    Args:
        expr: sympy expression in ``variables`` (its Float constants fitted by least squares).
        X: (N, n_vars) data (a (N,) vector for one variable); y: (N,) targets.
        tol: relative-RMSE increase over the unsnapped expression always allowed (round-off).
        variables: symbols (or names) in the column order of X; default: free symbols sorted by name.
        max_denominator: largest denominator of a snapped rational.
        refit: re-fit the still-free constants by least squares after each snap.
        max_tries: candidates tried per constant.
        max_constants: at most this many constants are tried (each try re-fits the rest).
        test: the significance test to judge snaps by (default: an F-test at level ``alpha``
            against ``expr`` itself, see :mod:`~nnlab.symbolic.significance`); pass one test
            through several snapping passes so they are all judged against the same free fit.
        alpha: level of the default test (0: only ``tol`` counts).

    Returns:
        :class:`SnapResult` (expression, its relative RMSE, what was replaced).
    """
    X, y, variables = _prepare(expr, X, y, variables)
    if tol < 0 or not math.isfinite(tol):
        raise ValueError(f"tol must be a finite number >= 0, got {tol}")
    pred = evaluate(expr, variables, X)
    base = relative_rmse(pred, y)
    if not math.isfinite(base):
        return SnapResult(expr, base)
    if test is None:
        test = _test(expr, X, y, pred, base, tol, alpha)
    noisy = test.limit(1) > test.error + test.floor  # the noise, not round-off, sets the tolerance
    z = test.z()
    cur, cur_err = expr, base
    replaced: list[tuple[float, str]] = []

    def options(e: sympy.Expr, se: dict) -> list[tuple[sympy.Float, float, float, list[sympy.Expr]]]:
        """(constant, its se, window, candidates simplest first) for each Float of ``e``."""
        exponents = {p.exp for p in e.atoms(sympy.Pow) if isinstance(p.exp, sympy.Float)}
        out = []
        for f in e.atoms(sympy.Float):
            v, s = float(f), se.get(f, math.inf)
            ci = z * s / max(abs(v), 1e-300)  # relative half-width of the confidence interval
            window = min(max(ci, _MIN_WINDOW), _MAX_WINDOW if not noisy else _MAX_NOISY_WINDOW)
            # a snap must be cheaper to write than the float at the precision the data give it (MDL):
            # within a ±w interval a float costs about log2(1/w) bits; 13/(8π) is not "simpler"
            # than a constant known to 0.3% (any value has such a neighbour), 1/2 is
            bits = math.log2(1.0 / window) + _SLACK_BITS
            cands = [c for cx, c in _scored_candidates(v, max_denominator, rel=max(window, _MAX_WINDOW),
                                                       rational_only=f in exponents) if cx <= bits]
            if not math.isfinite(s) and f not in exponents and v != 0:
                # not identifiable (c·x/(c·y − c·z) = x/(y − z)): it moves along a flat direction
                # with the others, so ±1 costs nothing in error and the refit moves the rest
                one = sympy.Integer(1 if v > 0 else -1)
                cands = [one] + [c for c in cands if c != one]
            elif abs(v) <= z * s:  # the interval holds 0: the term may carry nothing
                cands = [sympy.Integer(0)] + [c for c in cands if c != 0]
            out.append((f, s, window, cands))
        return out

    def accept(new: sympy.Expr, err: float) -> bool:
        return test.accepts(err, _q(test, new))

    # 1. every constant at once to its simplest value inside its interval (a joint test: the
    #    constants of a fit are correlated, one at a time each may look significant, all at once not)
    opts = options(cur, standard_errors(cur, variables, X, y))
    joint = {f: next((c for c in cands if abs(float(c) - float(f)) <= w * abs(float(f))
                      or (c == 0 and abs(float(f)) <= z * s)), None) for f, s, w, cands in opts}
    joint = {f: c for f, c in joint.items() if c is not None}
    if len(joint) > 1:
        new = cur.xreplace(joint)
        if not _undefined(new) and description_length(new) <= description_length(cur):
            if refit and new.atoms(sympy.Float):
                new, err = polish(new, variables, X, y)
            else:
                err = relative_rmse(evaluate(new, variables, X), y)
            if accept(new, err):
                replaced += [(float(f), str(c)) for f, c in joint.items()]
                cur, cur_err = new, err
    # 2. one constant at a time, the others refit after each snap
    tried: set[float] = set()
    while True:
        floats = [f for f in cur.atoms(sympy.Float) if float(f) not in tried]
        if not floats or len(tried) >= max_constants:
            break
        se = standard_errors(cur, variables, X, y)
        ranked = []
        for f, s, w, cands in options(cur, se):
            if float(f) in tried:
                continue
            # most certain snap first under noise (fewest standard errors away); else the largest constant
            dist = abs(float(cands[0]) - float(f)) / s if cands and noisy and s > 0 else 0.0
            ranked.append((0 if cands else 1, dist, -abs(float(f)), f, s, w, cands))
        ranked.sort(key=lambda t: t[:3])
        _, _, _, f, se_f, window, cands = ranked[0]
        tried.add(float(f))
        v = float(f)
        length = description_length(cur)
        for cand in cands[:max_tries]:
            new = cur.xreplace({f: cand})
            if _undefined(new) or description_length(new) > length:  # 0 in a denominator: 1/0
                continue
            if refit and new.atoms(sympy.Float):
                new, err = polish(new, variables, X, y)
            else:
                err = relative_rmse(evaluate(new, variables, X), y)
            # inside the interval (under noise: the F-test on the refit formula is the interval)
            close = noisy or abs(float(cand) - v) <= window * abs(v) or err <= cur_err + 1e-12 \
                or (cand == 0 and abs(v) <= z * se_f)
            if close and accept(new, err):
                cur, cur_err = new, err
                replaced.append((v, str(cand)))
                break
    return SnapResult(cur, cur_err, tuple(replaced))


def snap_coefficients(expr: sympy.Expr, X: Any, y: Any, tol: float = 1e-6,
                      variables: Sequence[Any] | None = None, test: SnapTest | None = None) -> SnapResult:
    """Re-snap each numeric coefficient of ``expr`` as a whole (e.g. ``153/(2π⁶) → 1/(4π)``,
    ``0.9999·√10/√10 → 1``): the shortest candidate that keeps the error within ``tol`` of the
    current one (or, given ``test``, that the test accepts) replaces the coefficient when it makes
    the formula shorter."""
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
        if coef in cands:  # already a simple value: only a simpler one may replace it (within noise,
            cands = cands[:cands.index(coef)]  # several are near; 1/√(2π) must not become 2/5)
        if abs(k) >= 2:  # 1.0e+300 = 10**300 exactly (what undoing the scale leaves)
            cands += [c * sympy.Integer(10) ** k for c in snap_candidates(v / 10.0 ** k)[:3]]
        for cand in cands:
            new = cur.xreplace({node: sympy.Mul(cand, *rest)})
            if new == cur or description_length(new) >= length:
                continue
            err = relative_rmse(evaluate(new, variables, X), y)
            if err <= limit or (test is not None and test.accepts(err, _q(test, new))):
                cur, cur_err = new, err
                replaced.append((v, str(cand)))
                break
    return SnapResult(cur, cur_err, tuple(replaced))
