"""Least-squares polish of the numeric constants of a sympy formula.

After the formula is composed (lecture §6.3 step 5) its floating-point constants still carry the
spline approximation's error. Every ``sympy.Float`` in the expression becomes a free parameter
``θ_k`` and ``Σ_n (f(x_n; θ) − y_n)²`` is minimised with ``scipy.optimize.least_squares``,
starting from the current values. Integers and rationals (already snapped) stay fixed.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import sympy
from scipy.optimize import least_squares

__all__ = ["parametrize", "evaluate", "polish", "relative_rmse", "formula_error", "standard_errors"]


def parametrize(expr: sympy.Expr) -> tuple[sympy.Expr, list[sympy.Symbol], list[float]]:
    """Replace every Float in ``expr`` by a fresh symbol ``_c{k}``; return (expr, symbols, values)."""
    floats = sorted(expr.atoms(sympy.Float), key=lambda f: sympy.default_sort_key(f))
    syms = [sympy.Symbol(f"_c{k}") for k in range(len(floats))]
    return expr.xreplace(dict(zip(floats, syms))), syms, [float(f) for f in floats]


def evaluate(expr: sympy.Expr, variables: Sequence[sympy.Symbol], X: np.ndarray) -> np.ndarray:
    """Evaluate ``expr`` on rows of X (columns in the order of ``variables``); NaN where undefined."""
    X = np.asarray(X, dtype=np.float64)
    if expr.atoms(sympy.core.function.AppliedUndef):
        raise ValueError("the formula still has spline edges (phi_l_o_i placeholders); it cannot be evaluated "
                         "numerically: use the KAN for those edges")
    f = sympy.lambdify(list(variables), expr, "numpy")
    with np.errstate(all="ignore"):
        out = f(*[X[:, j] for j in range(X.shape[1])])
    out = np.asarray(out, dtype=np.complex128 if np.iscomplexobj(out) else np.float64)
    if np.iscomplexobj(out):
        out = np.where(np.abs(out.imag) < 1e-12 * (1 + np.abs(out.real)), out.real, np.nan)
    return np.broadcast_to(out, (X.shape[0],)).astype(np.float64)


def relative_rmse(pred: np.ndarray, y: np.ndarray) -> float:
    """``RMSE(pred, y) / RMS(y)`` (inf if pred has NaN/inf): the error measure used for snapping.

    Computed on ``pred/m`` and ``y/m`` with ``m = max|y|``, so values near 1e±300 do not overflow."""
    pred = np.asarray(pred, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if pred.shape != y.shape or not np.all(np.isfinite(pred)):
        return float("inf")
    m = float(np.max(np.abs(y))) if y.size else 0.0
    m = m if m > 0 and np.isfinite(m) else 1.0
    with np.errstate(all="ignore"):
        ys, d = y / m, pred / m - y / m
    if not np.all(np.isfinite(d)):
        return float("inf")
    scale = float(np.sqrt(np.mean(ys ** 2))) or 1.0
    return float(np.sqrt(np.mean(d ** 2)) / scale)


def formula_error(expr: sympy.Expr, variables: Sequence[sympy.Symbol], X: np.ndarray, y: np.ndarray) -> float:
    """:func:`relative_rmse` of ``expr`` on (X, y); inf where it cannot be evaluated (a candidate
    fit is then simply not chosen)."""
    try:
        with np.errstate(all="ignore"):
            return relative_rmse(evaluate(expr, variables, X), y)
    except (ValueError, TypeError, ArithmeticError):
        return float("inf")


def standard_errors(expr: sympy.Expr, variables: Sequence[sympy.Symbol], X: np.ndarray,
                    y: np.ndarray) -> dict[sympy.Float, float]:
    """Standard error of every Float constant of ``expr``, ``se = √diag((JᵀJ)⁻¹)·s`` with ``J`` the
    Jacobian of the predictions with respect to the constants (central differences) and ``s²`` the
    residual variance; inf where a constant is not identifiable (it moves along a direction in
    which the predictions do not change) or nothing can be computed."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    pexpr, syms, vals = parametrize(expr)
    floats = sorted(expr.atoms(sympy.Float), key=lambda f: sympy.default_sort_key(f))
    bad = {f: float("inf") for f in floats}
    if not syms or len(y) <= len(syms):
        return bad
    f = sympy.lambdify(list(variables) + syms, pexpr, "numpy")
    cols = [X[:, j] for j in range(X.shape[1])]
    theta = np.asarray(vals, dtype=np.float64)

    def pred(t: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(f(*cols, *t), dtype=np.complex128).real, y.shape)

    try:
        r = pred(theta) - y
        J = np.empty((len(y), len(theta)))
        for k in range(len(theta)):
            h = 1e-6 * max(abs(theta[k]), 1e-12)
            tp, tm = theta.copy(), theta.copy()
            tp[k] += h
            tm[k] -= h
            J[:, k] = (pred(tp) - pred(tm)) / (2 * h)
        if not (np.all(np.isfinite(J)) and np.all(np.isfinite(r))):
            return bad
        s2 = float(np.sum(r ** 2)) / (len(y) - len(theta))
        _, sv, Vt = np.linalg.svd(J, full_matrices=False)
        small = sv <= 1e-9 * (sv[0] if sv.size else 0.0)
        inv = np.where(small, 0.0, 1.0 / np.where(small, 1.0, sv) ** 2)
        se = np.sqrt(np.clip((Vt.T ** 2) @ inv * s2, 0, None))
        # constants that move along a flat direction (c/√(d − d·u) = (c/√d)/√(1 − u)) are not identifiable
        free = np.any(np.abs(Vt[small]) > 1e-3, axis=0) if small.any() else np.zeros(len(theta), bool)
        se = np.where(free, np.inf, se)
    except (ValueError, ArithmeticError, TypeError, np.linalg.LinAlgError):
        return bad
    return {fl: (float(v) if np.isfinite(v) else float("inf")) for fl, v in zip(floats, se)}


def polish(expr: sympy.Expr, variables: Sequence[sympy.Symbol], X: np.ndarray, y: np.ndarray,
           max_nfev: int = 200) -> tuple[sympy.Expr, float]:
    """Refit the Float constants of ``expr`` to (X, y) by least squares.

    Returns ``(polished expression, relative RMSE)``; the input is returned unchanged if the
    polish does not improve it or fails numerically (it never raises on bad numerics).
    """
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    base_err = relative_rmse(evaluate(expr, variables, X), y)
    pexpr, syms, vals = parametrize(expr)
    if not syms:
        return expr, base_err
    f = sympy.lambdify(list(variables) + syms, pexpr, "numpy")
    cols = [X[:, j] for j in range(X.shape[1])]
    scale = float(np.sqrt(np.mean(y ** 2))) or 1.0

    def resid(theta: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            out = f(*cols, *theta)
        r = np.broadcast_to(np.asarray(out), y.shape) - y
        if np.iscomplexobj(r):
            r = np.where(np.abs(r.imag) < 1e-9, r.real, 1e6 * scale)
        return np.where(np.isfinite(r), r, 1e6 * scale).astype(np.float64)

    try:  # "trf", not MINPACK's "lm": scipy 1.17's C MINPACK reads work memory it never wrote, so a
        # degenerate fit (rank-deficient Jacobian) ended where the heap's leftovers sent it (issue 12)
        sol = least_squares(resid, np.asarray(vals, dtype=np.float64), method="trf",
                            max_nfev=max_nfev * (len(vals) + 1), xtol=1e-15, ftol=1e-15, gtol=1e-15)
        theta = sol.x
    except (ValueError, FloatingPointError, np.linalg.LinAlgError, OverflowError, ZeroDivisionError):
        return expr, base_err
    if not np.all(np.isfinite(theta)):
        return expr, base_err
    new = pexpr.xreplace({s: sympy.Float(float(t)) for s, t in zip(syms, theta)})
    err = relative_rmse(evaluate(new, variables, X), y)
    if err <= base_err:
        return new, err
    return expr, base_err
