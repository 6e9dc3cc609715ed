"""Sparse rational functions ``y = P(x)/Q(x)`` by linear algebra (a leaf and a candidate of the search).

``y·Q(x) − P(x) = 0`` is *linear* in the coefficients of ``P`` and ``Q`` (monomials of total
degree ``≤ d_P``, ``≤ d_Q``): the coefficient vector is the null vector of
``A = [M_P(x), −y·M_Q(x)]`` (smallest right singular vector, columns scaled to unit norm).
Degree pairs are tried from the smallest total degree up, so the first pair whose null space is
one-dimensional gives ``P/Q`` without a common factor (a larger pair would leave the freedom of
multiplying both by the same polynomial). Terms are then removed greedily (backward
elimination, each removal refit) while the relative error stays within tolerance: the law's own
terms survive, the numerical dust does not. Laws such as relativistic velocity addition
``(u + v)/(1 + uv/c²)`` or ``G·m₁m₂/((x₂−x₁)² + (y₂−y₁)²)`` are exactly of this form.
"""
from __future__ import annotations

import itertools
import math
import time

import numpy as np
import sympy

__all__ = ["monomials", "fit_rational", "run_rational"]


def monomials(n: int, degree: int) -> list[tuple[int, ...]]:
    """Exponent tuples of the monomials in ``n`` variables of total degree ≤ ``degree`` (constant first)."""
    out = []
    for d in range(degree + 1):
        for combo in itertools.combinations_with_replacement(range(n), d):
            e = [0] * n
            for c in combo:
                e[c] += 1
            out.append(tuple(e))
    return out


def _design(X: np.ndarray, mons: list[tuple[int, ...]]) -> np.ndarray:
    return np.column_stack([np.prod(X ** np.array(e, dtype=np.float64), axis=1) for e in mons])


def scaled_rows(X, y, min_rows: int):
    """``(Xs, scale, t, ys)``: columns divided by their largest magnitude ``scale`` (monomials of
    degree 3 stay well conditioned) and ``t = y / ys`` with ``ys = RMS(y)``; None for fewer than
    ``min_rows`` rows or non-finite values."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.shape[0] < min_rows or not np.all(np.isfinite(X)) or not np.all(np.isfinite(y)):
        return None
    scale = np.max(np.abs(X), axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    ys = float(np.sqrt(np.mean(y ** 2))) or 1.0
    return X / scale, scale, y / ys, ys


def _null(A: np.ndarray, support: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(null vector on ``support`` (zeros elsewhere), σ_min/σ_max, σ_2nd/σ_max) of the column-scaled ``A``."""
    B = A[:, support]
    norms = np.linalg.norm(B, axis=0)
    norms = np.where(norms > 0, norms, 1.0)
    _, s, vt = np.linalg.svd(B / norms, full_matrices=False)
    v = np.zeros(A.shape[1])
    v[support] = vt[-1] / norms
    second = s[-2] / s[0] if len(s) > 1 else 1.0
    return v, s[-1] / s[0], second


def _error(v: np.ndarray, MP: np.ndarray, MQ: np.ndarray, y: np.ndarray) -> float:
    k = MP.shape[1]
    with np.errstate(all="ignore"):
        pred = (MP @ v[:k]) / (MQ @ v[k:])
    if not np.all(np.isfinite(pred)):
        return math.inf
    return float(np.sqrt(np.mean((pred - y) ** 2)) / (np.sqrt(np.mean(y ** 2)) or 1.0))


def fit_rational(X: np.ndarray, y: np.ndarray, variables: list[sympy.Symbol], *, max_degree: int = 3,
                 tol: float = 1e-7, max_terms: int | None = None, deadline: float | None = None,
                 polynomial: bool = False, max_support: int | None = None,
                 sparsest: bool = False) -> sympy.Expr | None:
    """The sparsest ``P/Q`` found that fits (X (N, n), y (N,)) with relative RMSE ≤ ``tol``, or None.

    Args:
        max_degree: largest total degree of ``P`` and of ``Q``.
        tol: relative error accepted (``1e-7`` for exact data; about 3× the noise for a surrogate's values).
        deadline: ``time.monotonic()`` value after which no further degree pair is tried.
        max_terms: most unknowns (``P`` and ``Q`` together) tried; default ``min(3N/4, 300)``.

        polynomial: also return a plain polynomial (``Q`` constant); by default that case is left
            to the other candidates (as is a single-term ``Q``) and only ``Q`` with two or more
            terms is returned.
        max_support: most terms of ``P`` and ``Q`` together in a returned fit; a degree pair whose
            sparsest fit has more is passed over (a dense ``P/Q`` can imitate any smooth function).
        sparsest: try every degree pair and return the fit with the fewest terms (then the
            smallest error) instead of the first pair's: on a surrogate's values a loose ``tol``
            lets a dense low-degree polynomial through before the law's own sparse ratio."""
    rows = scaled_rows(X, y, min_rows=8)
    if rows is None:
        return None
    Xs, scale, t, ys = rows
    N, n = Xs.shape
    cap = max_terms if max_terms is not None else min(3 * N // 4, 300)
    chosen: tuple[int, float, sympy.Expr] | None = None  # with sparsest: the fewest terms so far
    pairs = sorted(((dp, dq) for dp in range(max_degree + 1) for dq in range(0 if polynomial else 1, max_degree + 1)),
                   key=lambda p: (p[0] + p[1], p[1]))
    for dp, dq in pairs:
        if deadline is not None and time.monotonic() > deadline:
            break
        mp, mq = monomials(n, dp), monomials(n, dq)
        if len(mp) + len(mq) > cap:
            continue
        MP, MQ = _design(Xs, mp), _design(Xs, mq)
        A = np.hstack([MP, -t[:, None] * MQ])
        support = np.ones(A.shape[1], dtype=bool)
        v, smin, s2 = _null(A, support)
        err = _error(v, MP, MQ, t)
        if not err <= tol:
            continue
        # prune the dust first (terms far below the largest, as a batch), then backward elimination:
        # drop the term whose removal hurts least, while the fit stays within tol
        mag = np.abs(v) * np.linalg.norm(A, axis=0)
        for tau in (1e-2, 1e-3, 1e-4, 1e-6, 1e-8):
            trial = support & (mag >= tau * mag.max())
            if trial[len(mp):].any() and trial[:len(mp)].any():
                w, *_ = _null(A, trial)
                if _error(w, MP, MQ, t) <= tol:
                    support, v = trial, w
                    break
        while 2 < support.sum() <= 40:
            best = None
            for j in np.flatnonzero(support):
                trial = support.copy()
                trial[j] = False
                if not trial[len(mp):].any() or not trial[:len(mp)].any():
                    continue
                w, *_ = _null(A, trial)
                e = _error(w, MP, MQ, t)
                if e <= tol and (best is None or e < best[0]):
                    best = (e, j, w)
            if best is None:
                break
            support[best[1]] = False
            v = best[2]
        if max_support is not None and support.sum() > max_support:
            continue
        q = MQ @ v[len(mp):]
        if not polynomial and (support[len(mp):].sum() < 2 or np.std(q) <= 1e-6 * np.mean(np.abs(q))):
            continue  # a polynomial over a monomial: the other candidates cover it
        syms = [s / sympy.Float(float(c)) for s, c in zip(variables, scale)]
        k = len(mp)
        lead = next(j for j in range(len(mq)) if support[k + j])  # lowest-order denominator term -> 1
        v = v / v[k + lead]

        def poly(coefs: np.ndarray, mons: list[tuple[int, ...]]) -> sympy.Expr:
            return sympy.Add(*[sympy.Float(float(c)) * sympy.Mul(*[s ** e for s, e in zip(syms, mon)])
                               for c, mon in zip(coefs, mons) if c != 0])
        num, den = sympy.expand(poly(v[:k] * ys, mp)), sympy.expand(poly(v[k:], mq))
        lead_coef = sympy.Poly(den, *variables).coeffs()[-1] if den.free_symbols else den
        fit = (num / lead_coef) / (den / lead_coef)
        if not sparsest:
            return fit
        key = (int(support.sum()), _error(v, MP, MQ, t))
        if chosen is None or key < chosen[:2]:
            chosen = (*key, fit)
    return None if chosen is None else chosen[2]


def run_rational(res, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray,
                 variables: list[sympy.Symbol], *, snap_tol: float, deadline: float | None) -> None:
    """The ``rational`` candidate: fill ``res`` (a :class:`~nnlab.symbolic.search.CandidateResult`)
    with the sparsest ``P/Q`` (total degrees ≤ 3) that fits the
    training rows within ``1e-6``, finished (polish, snap) like every candidate. A plain
    polynomial is returned only on signed data, where the log-space candidates cannot run."""
    from .finish import fill_result, finish
    from .transforms import fixed_sign

    # plain polynomials are the monomial candidates' job where logs apply; on signed data
    # (a column or y changes sign: no log-space candidate runs) this candidate takes them too
    signed = fixed_sign(ytr) == 0 or any(fixed_sign(Xtr[:, j]) == 0 for j in range(Xtr.shape[1]))
    expr = fit_rational(Xtr, ytr, variables, max_degree=3, tol=1e-6,
                        deadline=deadline, polynomial=signed)
    if expr is None:  # noisy data: output-error fits, degree and terms by F-tests (see noisy_rational.py)
        from .noisy_rational import fit_rational_noisy

        expr = fit_rational_noisy(Xtr, ytr, variables, deadline=deadline, polynomial=signed)
    if expr is None:
        res.note = "no sparse P/Q of low degree fits the rows"
        return
    expr, _ = finish(expr, variables, Xtr, ytr, snap_tol=snap_tol, deadline=deadline)
    fill_result(res, expr, variables, Xtr, ytr, Xva, yva, "y = P(x)/Q(x), null vector of [M_P, -y·M_Q]")
