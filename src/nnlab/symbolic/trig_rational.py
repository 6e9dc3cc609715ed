"""Sparse rationals in trigonometric features: ``T(y) = P(φ(x))/Q(φ(x))`` with ``φ_j ∈ {x_j, cos x_j, sin x_j}``.

Angles enter physical laws through ``cos θ`` and ``sin θ``, and then often rationally: the
relativistic Doppler factor ``√(1 − w²)/(1 + w·cos θ)``, a conic ``d(1 − α²)/(1 + α·cos φ)``,
aberration ``cos θ' = (cos θ − w)/(1 − w·cos θ)``. Once a variable is replaced by its cosine (or
sine) such a law is a ratio of low-degree polynomials, found exactly by the null-vector fit of
:func:`~nnlab.symbolic.rational.fit_rational`. The target may be transformed first (``y²`` for a
root, ``cos y`` for an ``acos`` of values in ``[0, π]``, ``sin y`` for an ``asin`` of values in
``[−π/2, π/2]``), and the fit is composed back in sympy. AI Feynman reaches these laws by brute
force over expression strings; here the search is over ``3^m`` feature choices and four target
transforms, each a linear-algebra fit.
"""
from __future__ import annotations

import functools
import itertools
import math
import time
from typing import Any, Callable

import numpy as np
import sympy

from .exchange import share, value_name
from .polish import formula_error
from .rational import _design, _null, fit_rational, monomials, scaled_rows
from .transforms import fixed_sign

__all__ = ["target_transforms", "fit_trig_rational"]

_FEATURES: tuple[tuple[str, Callable[[np.ndarray], np.ndarray], Callable[[sympy.Expr], sympy.Expr]], ...] = (
    ("x", lambda v: v, lambda s: s),
    ("cos", np.cos, sympy.cos),
    ("sin", np.sin, sympy.sin),
)


def target_transforms(y: np.ndarray) -> list[tuple[str, np.ndarray, float, Callable[[sympy.Expr], sympy.Expr]]]:
    """The transforms that apply to ``y``: (name, ``T(y)``, amplification of the relative error,
    ``T⁻¹`` in sympy). ``y²`` needs a fixed sign, ``cos y`` values in ``[0, π]``, ``sin y`` in
    ``[−π/2, π/2]`` (where each is invertible)."""
    out: list = [("y", y, 1.0, lambda e: e)]
    s = fixed_sign(y)
    if s != 0:
        out.append(("y^2", y ** 2, 2.0, lambda e, s=s: s * sympy.sqrt(e)))
    lo, hi = float(np.min(y)), float(np.max(y))
    rms = float(np.sqrt(np.mean(y ** 2))) or 1.0
    for name, T, dT, inv, ok in (("cos y", np.cos, np.sin, sympy.acos, 0 <= lo and hi <= math.pi),
                                 ("sin y", np.sin, np.cos, sympy.asin, -math.pi / 2 <= lo and hi <= math.pi / 2)):
        if ok and hi > lo:
            t = T(y)
            amp = float(np.sqrt(np.mean(dT(y) ** 2))) * rms / (float(np.sqrt(np.mean(t ** 2))) or 1.0)
            out.append((name, t, max(amp, 1.0), inv))
    return out


def fit_trig_rational(X: np.ndarray, y: np.ndarray, variables: list[sympy.Symbol], *, tol: float = 1e-7,
                      max_vars: int = 3, max_terms: int = 8, deadline: float | None = None,
                      exchange: Any = None) -> list[sympy.Expr]:
    """Formulas ``y = T⁻¹(P(φ(x))/Q(φ(x)))`` with at least one ``φ_j`` a cosine or sine, each
    fitting (X (N, n), y (N,)) within relative error ``tol`` on ``T(y)`` (times the transform's
    amplification); the fewest trigonometric features first, at most ``max_vars`` variables and
    ``max_terms`` terms in ``P`` and ``Q`` together.
    Plain rationals (every ``φ_j = x_j``) are :func:`~nnlab.symbolic.rational.fit_rational`'s job.

    Returns the fits of the first number of trigonometric features that gives any, the sparsest
    (fewest terms in ``P`` and ``Q``) first, then the most accurate (empty when none fits).
    ``exchange``: the shards of a decomposition that fit the same rows split the feature choices of
    each number (:func:`~nnlab.symbolic.exchange.share`); the same formulas."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    n = X.shape[1]
    if n == 0 or n > max_vars or len(y) < 8 or not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        return []
    forms = target_transforms(y)
    choices = sorted((c for c in itertools.product(range(len(_FEATURES)), repeat=n) if any(c)),
                     key=lambda c: (sum(k > 0 for k in c), c))
    # exact values: degrees up to 4 (a Doppler factor squared), the first fitting pair; a
    # surrogate's values (tol well above rounding): degree 2, the sparsest fit of all pairs
    loose = tol > 1e-5
    degree = (2 if loose else 4) if n <= 2 else (2 if loose else 3)

    def late() -> bool:
        return deadline is not None and time.monotonic() > deadline

    def fit(combo: tuple[int, ...]) -> list[tuple[int, float, sympy.Expr]]:
        if late():
            return []
        F = np.column_stack([_FEATURES[c][1](X[:, j]) for j, c in enumerate(combo)])
        return _fit_forms(F, [_FEATURES[c][2](v) for c, v in zip(combo, variables)], X, y, forms, variables,
                          degree, tol, max_terms, loose, deadline)

    def name(kind: str, **args: Any) -> str:
        return value_name(kind, X, y, tol=tol, max_terms=max_terms, degree=degree, variables=str(variables), **args)
    found: list[tuple[int, float, sympy.Expr]] = []  # (terms of P and Q, error, formula)
    for k in sorted({sum(c > 0 for c in combo) for combo in choices}):  # the fewest trigonometric features first
        if late():
            break
        level = [c for c in choices if sum(q > 0 for q in c) == k]
        found = [f for fits in share(exchange, [(name("trig", combo=c), functools.partial(fit, c)) for c in level])
                 for f in fits]
        if found:
            break
    if not found and n <= 2:  # x beside cos x (a sinc²), or the angle a product (n slits)
        sets = _joint_sets(X, variables)
        found = [f for fits in share(exchange, [(name("trig-joint", set=i), functools.partial(
            _fit_joint, X, y, forms, variables, cols, exprs, degree, tol, max_terms, loose, deadline))
            for i, (cols, exprs) in enumerate(sets)]) for f in fits]
    return [e for *_, e in sorted(found, key=lambda p: p[:2])]


def _joint_sets(X: np.ndarray, variables: list[sympy.Symbol]) -> list[tuple[list[np.ndarray], list[sympy.Expr]]]:
    """Features that mix what :func:`fit_trig_rational` keeps apart, as (columns, their sympy forms). One
    variable: ``(x, cos x)`` or ``(x, sin x)``, where ``sin²(x/2)/(x/2)² = 2(1 − cos x)/x²``. Two
    variables ``a, b``: ``(φ(a), φ(b), cos(a·b))`` with ``φ ∈ {x, cos}``, where the interference of ``n``
    slits is ``(1 − cos nθ)/(1 − cos θ)`` and a ``sinc²`` of a product ``2(1 − cos(ut))/(u²t)``."""
    a = variables[0]
    if X.shape[1] == 1:
        x = X[:, 0]
        return [([x, np.cos(x)], [a, sympy.cos(a)]), ([x, np.sin(x)], [a, sympy.sin(a)])]
    b, prod = variables[1], X[:, 0] * X[:, 1]
    return [([_FEATURES[i][1](X[:, 0]), _FEATURES[j][1](X[:, 1]), np.cos(prod)],
             [_FEATURES[i][2](a), _FEATURES[j][2](b), sympy.cos(a * b)]) for i in range(2) for j in range(2)]


def _fit_joint(X: np.ndarray, y: np.ndarray, forms: list, variables: list[sympy.Symbol], cols: list[np.ndarray],
               exprs: list[sympy.Expr], degree: int, tol: float, max_terms: int, loose: bool,
               deadline: float | None) -> list[tuple[int, float, sympy.Expr]]:
    if deadline is not None and time.monotonic() > deadline:
        return []
    return _fit_forms(np.column_stack(cols), exprs, X, y, forms, variables, min(degree, 3), tol, max_terms,
                      loose, deadline)


def _fit_forms(F: np.ndarray, exprs: list[sympy.Expr], X: np.ndarray, y: np.ndarray, forms: list,
               variables: list[sympy.Symbol], degree: int, tol: float, max_terms: int, loose: bool,
               deadline: float | None) -> list[tuple[int, float, sympy.Expr]]:
    """Sparse ``P/Q`` in the feature columns ``F`` (``exprs``: each column in sympy) for every target
    transform that fits within ``tol`` times its amplification: (terms of P and Q, error, formula)."""
    if any(np.ptp(F[:, j]) <= 1e-9 * (np.max(np.abs(F[:, j])) or 1.0) for j in range(F.shape[1])):
        return []  # a feature constant on the data carries nothing
    feats = [sympy.Symbol(f"_phi{j}") for j in range(F.shape[1])]
    back = dict(zip(feats, exprs))
    found = []
    for _, t, amp, inv in forms:
        if not _may_fit(F, t, degree, 10 * tol * amp):
            continue
        try:  # at most max_terms terms: a dense P/Q of degree 4 can mimic any smooth function
            e = fit_rational(F, t, feats, max_degree=degree, tol=tol * amp,
                             deadline=deadline, polynomial=True, max_support=max_terms, sparsest=loose)
        except (ValueError, ArithmeticError, np.linalg.LinAlgError, sympy.PolynomialError):
            continue
        if e is None:
            continue
        expr = inv(e.xreplace(back))
        err = formula_error(expr, variables, X, y)
        if err <= 2 * tol * amp + 1e-12:
            found.append((_terms(e), err, expr))
    return found


def _may_fit(F: np.ndarray, t: np.ndarray, degree: int, bound: float) -> bool:
    """A screen with one SVD: a ``P/Q`` of any lower degrees fitting ``t`` leaves the full-degree
    system ``[M_P, −t·M_Q]`` (columns scaled) a near-null vector, ``σ_min/σ_max ≤ bound``."""
    rows = scaled_rows(F, t, min_rows=8)
    if rows is None:
        return False
    Fs, _, ts, _ = rows
    mons = monomials(F.shape[1], degree)
    M = _design(Fs, mons)
    A = np.hstack([M, -ts[:, None] * M])
    if A.shape[1] >= A.shape[0]:
        return True
    _, ratio, _ = _null(A, np.ones(A.shape[1], dtype=bool))
    return bool(ratio <= bound)


def _terms(e: sympy.Expr) -> int:
    num, den = sympy.fraction(sympy.together(e))
    return len(sympy.Add.make_args(sympy.expand(num))) + len(sympy.Add.make_args(sympy.expand(den)))
