"""The tail every candidate formula goes through (lecture §6.3, steps 5–6), written once.

``finish(expr, …)``: tidy (collapse what the composition leaves) → least-squares polish of the
constants → snap → polish the constants still free → simplify (small formulas) → snap again →
re-snap whole numeric coefficients. Snapping is judged by description length and by one F-test
(:mod:`~nnlab.symbolic.significance`) against the fully free polished fit, whose residual
estimates the noise: with exact data a snap must be exact (within ``snap_tol``), with noisy data a
constant may move within its confidence interval (issue 11 items 4, 8 and 9).
"""
from __future__ import annotations

import time

import numpy as np
import sympy

from .dependence import NOISE_STRUCTURE, residual_structure
from .polish import evaluate, polish, relative_rmse
from .snap import reference_test, snap, snap_coefficients

__all__ = ["SNAP_MAX_ERROR", "EXACT_HELD_OUT", "NUMERIC_ERRORS", "complexity", "gather_numbers", "merge_numbers", "tidy", "simplify", "finish",
           "fill_result"]

SNAP_MAX_ERROR = 0.05
# a closed formula whose held-out relative RMSE is below this is the law: the search stops at the first
# candidate that gives one (the simpler ones come first), and so does a candidate's own list of forms
EXACT_HELD_OUT = 1e-10
NUMERIC_ERRORS = (ValueError, ArithmeticError, RuntimeError, TypeError, LookupError, np.linalg.LinAlgError,
                  RecursionError)


def complexity(expr: sympy.Expr) -> int:
    """Operation count of ``expr`` (``sympy.count_ops``) plus one per remaining float constant."""
    return int(sympy.count_ops(expr)) + len(expr.atoms(sympy.Float))


def merge_numbers(expr: sympy.Expr) -> sympy.Expr:
    """Fold the numeric factors of every product (and terms of every sum) that involve a Float into
    one Float, e.g. ``1.1557·e·V/π → 1.0000·V``, so each free constant appears once."""
    if not isinstance(expr, sympy.Basic) or expr.is_Atom:
        return expr
    args = [merge_numbers(a) for a in expr.args]
    if isinstance(expr, (sympy.Mul, sympy.Add)):
        num = [a for a in args if a.is_number]
        if len(num) > 1 and any(a.atoms(sympy.Float) for a in num):
            rest = [a for a in args if not a.is_number]
            val = complex(expr.func(*num).evalf())
            if abs(val.imag) < 1e-300:
                return expr.func(sympy.Float(val.real), *rest)
    return expr.func(*args) if args != list(expr.args) else expr


def gather_numbers(expr: sympy.Expr) -> sympy.Expr:
    """Pull the common numeric factor out of every sum, then fold the numbers of each product:
    ``10⁴·(−6.4e-4·m1 − 6.4e-4·m2) → −6.4·(m1 + m2)`` (what undoing a scale of y leaves), so the
    coefficient can be snapped as a whole (``−32/5``). The same function of x; ``expr`` if it fails."""
    try:
        return merge_numbers(sympy.factor_terms(expr))
    except NUMERIC_ERRORS:
        return expr


def tidy(expr: sympy.Expr) -> sympy.Expr:
    """Collapse what the composition leaves: logs of products, exp of sums, numeric sub-terms."""
    try:
        e = sympy.expand_log(expr, force=True)
        e = sympy.powsimp(sympy.expand_power_exp(e), force=True)
        e = sympy.expand_log(e, force=True)
    except NUMERIC_ERRORS:
        e = expr
    # evaluate purely numeric sub-expressions that are not already simple numbers
    reps = {s: sympy.Float(complex(s.evalf()).real) for s in e.atoms(sympy.Function, sympy.Pow)
            if s.is_number and s.atoms(sympy.Float) and s.evalf().is_real}
    e = e.xreplace(reps) if reps else e
    return merge_numbers(e)


def simplify(expr: sympy.Expr) -> sympy.Expr | None:
    """``sympy.simplify`` with floats merged (e.g. ``1.2·√3/π`` becomes one float); None if it fails."""
    try:
        return merge_numbers(sympy.simplify(expr))
    except NUMERIC_ERRORS:
        return None


def finish(expr: sympy.Expr, variables: list[sympy.Symbol], X: np.ndarray, y: np.ndarray, *,
           snap_tol: float, deadline: float | None = None, snap_constants: bool = True) -> tuple[sympy.Expr, float]:
    """Tidy, polish, snap, polish, simplify, snap and re-snap coefficients; returns (expr, relative RMSE).

    Only tidied and polished: huge compositions (> 400 operations), past ``deadline`` (a
    ``time.monotonic()`` value), formulas with more than 10 free constants and a visible error
    (each snap try re-fits all constants), formulas whose error after polishing exceeds
    ``SNAP_MAX_ERROR`` (5%: not the law even under 1% noise; snapping an approximation only
    invents constants), formulas whose residual still depends on x (k-NN test of
    :func:`~nnlab.symbolic.dependence.residual_structure`: an approximation, not the law within
    noise) and ``snap_constants=False`` (a closed form standing in for spline edges).
    """
    ops = sympy.count_ops(expr)
    if not snap_constants:  # a stand-in for spline edges: a quick polish only (deep KANs have ~60 constants)
        if ops <= 150:
            expr = tidy(expr)
        n_const = len(expr.atoms(sympy.Float))
        return polish(expr, variables, X, y, max_nfev=20) if n_const <= 40 else (
            expr, relative_rmse(evaluate(expr, variables, X), y))
    big = ops > 400  # tidying and snapping would take minutes
    if not big:
        expr = tidy(expr)
    expr, err = polish(expr, variables, X, y)
    late = deadline is not None and time.monotonic() > deadline
    if big or late or not snap_constants or not err <= SNAP_MAX_ERROR \
            or not (err < 1e-6 or len(expr.atoms(sympy.Float)) <= 10):
        return expr, err
    if err >= 1e-6 and residual_structure(X, y - evaluate(expr, variables, X)) > NOISE_STRUCTURE:
        return expr, err  # an approximation (its residual still depends on x): snapping would invent
    test = reference_test(expr, X, y, variables, tol=snap_tol)
    expr = tidy(snap(expr, X, y, tol=snap_tol, variables=variables, test=test).expr)
    if expr.atoms(sympy.Float):
        expr = snap(expr, X, y, tol=snap_tol, variables=variables, test=test).expr
    if expr.atoms(sympy.Float):
        expr, _ = polish(expr, variables, X, y)
    err = relative_rmse(evaluate(expr, variables, X), y)
    if sympy.count_ops(expr) <= 40:
        simple = simplify(expr)
        if simple is not None and (relative_rmse(evaluate(simple, variables, X), y) <= err + snap_tol):
            expr = simple
            if expr.atoms(sympy.Float):
                expr = snap(expr, X, y, tol=snap_tol, variables=variables, test=test).expr
    expr = snap_coefficients(expr, X, y, tol=snap_tol, variables=variables, test=test).expr
    return expr, relative_rmse(evaluate(expr, variables, X), y)


def fill_result(res, expr: sympy.Expr, variables, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray,
                yva: np.ndarray, note: str, complete: bool = True) -> None:
    """Record a finished formula in ``res`` (a :class:`~nnlab.symbolic.search.CandidateResult`):
    the formula, its train and validation relative RMSE, its complexity and ``note``."""
    res.expr, res.complete = expr, complete
    res.train_error = relative_rmse(evaluate(expr, variables, Xtr), ytr)
    res.val_error = relative_rmse(evaluate(expr, variables, Xva), yva)
    res.complexity = complexity(expr)
    res.note = note
