"""Sparse rational functions ``y = P(x)/Q(x)`` from noisy data (issue 11, item 8).

The exact path (:func:`~nnlab.symbolic.rational.fit_rational`) takes the null vector of
``[M_P, −y·M_Q]`` and accepts a degree pair when it fits within ``1e-6``. Under noise neither
step works: the null vector minimises the *algebraic* residual ``y·Q − P``, which weights the
rows by ``|Q|`` and mixes the noise into the design, and no pair reaches ``1e-6``. Here:

1. **Output-error fit** (Sanathanan & Koerner, IEEE TAC 1963). One coefficient of ``Q`` is fixed
   to 1 (the largest of the null vector's); then repeatedly ``min Σ ((P(x) − y·Q(x)) / Q_prev(x))²``,
   a linear least-squares problem whose weights ``1/Q_prev`` make it converge to the least
   squares of ``y − P/Q`` itself.
2. **Degree pair by the residual.** Pairs are tried from the smallest total degree up; the first
   whose residual is noise is the model: a k-NN regression of it on x explains less than
   ``NOISE_STRUCTURE`` of it (:func:`~nnlab.symbolic.dependence.residual_structure`) *and* the
   F-test of :mod:`~nnlab.symbolic.significance` against a flexible reference (the full
   polynomial of degree ≤ 6 with at most N/4 terms) finds no lack of fit. A too-small pair leaves
   a residual that is still a function of x.
3. **Terms by the F-test.** Backward elimination: the term whose removal raises the residual the
   least is dropped while the F-test of :mod:`~nnlab.symbolic.significance` against the pair's
   full fit accepts (σ̂ from that fit): the law's own terms survive, the noise's do not.
"""
from __future__ import annotations

import math
import time

import numpy as np
import sympy
from scipy.optimize import least_squares

from .dependence import NOISE_STRUCTURE, residual_structure
from .rational import _design, monomials, scaled_rows
from .significance import SnapTest

__all__ = ["fit_rational_noisy", "noise_reference"]

_ITERATIONS = 8
_MAX_ERROR = 0.1
_BUDGET = 6.0  # seconds
_NOISY_DROP = 1.2


def _sk_fit(MP: np.ndarray, MQ: np.ndarray, t: np.ndarray, sp: np.ndarray, sq: np.ndarray, lead: int,
            iterations: int = _ITERATIONS) -> tuple[np.ndarray, np.ndarray, float] | None:
    """Sanathanan–Koerner fit of ``t ≈ P/Q`` on the supports ``sp`` (of MP's columns) and ``sq``
    (of MQ's; ``lead`` in it, its coefficient fixed to 1); returns (a, b, relative RMSE) or None."""
    A_cols = np.flatnonzero(sp)
    B_cols = [j for j in np.flatnonzero(sq) if j != lead]
    w = np.ones(len(t))
    best = None
    for _ in range(iterations):
        D = np.hstack([MP[:, A_cols], -t[:, None] * MQ[:, B_cols]]) * w[:, None]
        rhs = t * MQ[:, lead] * w
        try:
            sol, *_ = np.linalg.lstsq(D, rhs, rcond=None)
        except np.linalg.LinAlgError:
            return best
        a = np.zeros(MP.shape[1])
        b = np.zeros(MQ.shape[1])
        a[A_cols] = sol[:len(A_cols)]
        b[B_cols] = sol[len(A_cols):]
        b[lead] = 1.0
        q = MQ @ b
        if not np.all(np.isfinite(q)) or np.any(np.abs(q) < 1e-12 * np.max(np.abs(q))):
            return best
        with np.errstate(all="ignore"):
            err = float(np.sqrt(np.mean((MP @ a / q - t) ** 2)) / np.sqrt(np.mean(t ** 2)))
        if not math.isfinite(err):
            return best
        if best is None or err < best[2]:
            best = (a, b, err)
        w = 1.0 / np.abs(q)
    return best


def _refine(MP: np.ndarray, MQ: np.ndarray, t: np.ndarray, sp: np.ndarray, sq: np.ndarray, lead: int,
            a: np.ndarray, b: np.ndarray, max_nfev: int = 60) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Least squares of the output error ``P/Q − t`` (analytic Jacobian, trust region) from (a, b);
    returns (a, b, relative RMSE, t-statistics |θ|/se of the free coefficients, P's then Q's)."""
    A_cols = np.flatnonzero(sp)
    B_cols = np.array([j for j in np.flatnonzero(sq) if j != lead], dtype=int)
    rms = float(np.sqrt(np.mean(t ** 2))) or 1.0

    def unpack(theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a2, b2 = np.zeros(MP.shape[1]), np.zeros(MQ.shape[1])
        a2[A_cols], b2[B_cols], b2[lead] = theta[:len(A_cols)], theta[len(A_cols):], 1.0
        return a2, b2

    def resid(theta: np.ndarray) -> np.ndarray:
        a2, b2 = unpack(theta)
        with np.errstate(all="ignore"):
            r = MP @ a2 / (MQ @ b2) - t
        return np.where(np.isfinite(r), r, 1e6)

    def jac(theta: np.ndarray) -> np.ndarray:
        a2, b2 = unpack(theta)
        with np.errstate(all="ignore"):
            q = MQ @ b2
            J = np.hstack([MP[:, A_cols] / q[:, None], -(MP @ a2 / q ** 2)[:, None] * MQ[:, B_cols]])
        return np.where(np.isfinite(J), J, 0.0)

    theta0 = np.concatenate([a[A_cols], b[B_cols]])
    theta = theta0
    try:
        sol = least_squares(resid, theta0, jac=jac, method="trf", max_nfev=max_nfev)
        if np.all(np.isfinite(sol.x)) and np.sum(sol.fun ** 2) <= np.sum(resid(theta0) ** 2):
            theta = sol.x
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        pass
    r = resid(theta)
    err = float(np.sqrt(np.mean(r ** 2)) / rms)
    J = jac(theta)
    dof = max(len(t) - len(theta), 1)
    try:
        cov = np.linalg.pinv(J.T @ J) * float(np.sum(r ** 2)) / dof
        tstat = np.abs(theta) / np.sqrt(np.clip(np.diag(cov), 1e-300, None))
    except np.linalg.LinAlgError:
        tstat = np.full(len(theta), np.inf)
    a2, b2 = unpack(theta)
    return a2, b2, err, tstat


def noise_reference(Xs: np.ndarray, t: np.ndarray, alpha: float, max_degree: int = 6) -> SnapTest | None:
    """Lack-of-fit reference: the F-test against the full polynomial of the highest total degree
    ``d`` (≤ ``max_degree``) with at most N/4 terms, a flexible fit whose residual is about the
    noise. None when the data do not look noisy: its error is below 10⁻⁶, or degree ``d − 1`` is
    more than 20% worse (exact data keep improving with the degree; noisy data stop at the noise)."""
    N, n = Xs.shape
    rms = float(np.sqrt(np.mean(t ** 2))) or 1.0
    for d in range(max_degree, 1, -1):
        mons = monomials(n, d)
        if len(mons) > N // 4:
            continue
        errs = []
        for m in (mons, monomials(n, d - 1)):
            M = _design(Xs, m)
            coef, *_ = np.linalg.lstsq(M, t, rcond=None)
            errs.append(float(np.sqrt(np.mean((M @ coef - t) ** 2)) / rms))
        return SnapTest(N, len(mons), errs[0], floor=1e-9, alpha=alpha) \
            if 1e-6 < errs[0] and errs[1] <= _NOISY_DROP * errs[0] else None
    return None


def fit_rational_noisy(X: np.ndarray, y: np.ndarray, variables: list[sympy.Symbol], *, max_degree: int = 3,
                       deadline: float | None = None, polynomial: bool = False, alpha: float = 1e-3,
                       max_terms: int = 30) -> sympy.Expr | None:
    """The sparsest ``P/Q`` (total degrees ≤ ``max_degree``) whose residual on (X (N, n), y (N,)) is
    noise (see the module doc), or None. ``polynomial``: also accept a constant ``Q``;
    ``deadline``: a ``time.monotonic()`` value after which it gives up (None)."""
    X = np.asarray(X, dtype=np.float64)
    rows = scaled_rows(X, y, min_rows=20)
    if rows is None:
        return None
    Xs, scale, t, ys = rows
    N, n = Xs.shape
    # plain polynomials (dq = 0) are always tried: a law that is a polynomial (or one over a monomial)
    # must not come back as a larger pair with a common factor, so a genuine P/Q must have fewer
    # free coefficients than every polynomial that fits (description length)
    pairs = sorted(((dp, dq) for dp in range(max_degree + 1) for dq in range(max_degree + 1)),
                   key=lambda p: (p[0] + p[1], p[1]))
    reference = noise_reference(Xs, t, alpha)
    if reference is None:
        return None  # exact data (or a law no polynomial follows yet): the noise-free path's case
    budget = time.monotonic() + _BUDGET
    deadline = budget if deadline is None else min(deadline, budget)
    shortest = 10 ** 9  # free coefficients of the shortest polynomial (over a monomial) that fits
    for dp, dq in pairs:
        if deadline is not None and time.monotonic() > deadline:
            return None
        mp, mq = monomials(n, dp), monomials(n, dq)
        p = len(mp) + len(mq) - 1
        if p + 1 > min(max_terms, N // 4):
            continue
        MP, MQ = _design(Xs, mp), _design(Xs, mq)
        sp, sq = np.ones(len(mp), dtype=bool), np.ones(len(mq), dtype=bool)
        # which coefficient of Q is fixed to 1 matters (Q = c − v has no constant term): try each,
        # a few output-error steps from each start; the best one is then refit to convergence
        starts = sorted([(j, f) for j in range(len(mq)) if (f := _sk_fit(MP, MQ, t, sp, sq, j)) is not None],
                        key=lambda r: r[1][2])[:6]
        if not starts or time.monotonic() > deadline:
            continue
        lead, short = min(((j, _refine(MP, MQ, t, sp, sq, j, f[0], f[1], max_nfev=8)) for j, f in starts),
                          key=lambda r: r[1][2])
        a, b, err, tstat = _refine(MP, MQ, t, sp, sq, lead, short[0], short[1])
        if not err <= _MAX_ERROR or (p < reference.p and not reference.accepts(err, reference.p - p)):
            continue  # a larger model explains significantly more: a lack of fit, not noise
        with np.errstate(all="ignore"):
            if residual_structure(X, t - MP @ a / (MQ @ b)) > NOISE_STRUCTURE:
                continue  # the residual is still a function of x: not this pair
        test = SnapTest(N, int(sp.sum() + sq.sum() - 1), err, floor=1e-9, alpha=alpha)
        removed = 0
        while sp.sum() + sq.sum() > 2:
            if deadline is not None and time.monotonic() > deadline:
                return None
            # the least significant coefficient first (smallest |θ|/se), refit; stop when the F-test objects
            free = [(0, j) for j in np.flatnonzero(sp)] + [(1, j) for j in np.flatnonzero(sq) if j != lead]
            for idx in np.argsort(tstat)[:3]:
                part, j = free[idx]
                sp2, sq2 = sp.copy(), sq.copy()
                (sp2 if part == 0 else sq2)[j] = False
                if not sp2.any():
                    continue
                out = _refine(MP, MQ, t, sp2, sq2, lead, a, b, max_nfev=30)
                if test.accepts(out[2], removed + 1):
                    sp, sq, removed = sp2, sq2, removed + 1
                    a, b, err, tstat = out
                    break
            else:
                break
        q = MQ @ b
        terms = int(sp.sum() + sq.sum() - 1)
        if sq.sum() < 2 or np.std(q) <= 1e-6 * np.mean(np.abs(q)):  # a polynomial (over a monomial)
            if not polynomial:  # the other candidates cover it; a larger pair must be shorter to win
                shortest = min(shortest, terms)
                continue
        elif terms >= shortest:
            continue  # no shorter than a polynomial that fits: a common factor, not a law
        # in the user's variables, Q's lead coefficient exactly 1 (b[lead] = 1 by construction):
        # P/Q then has one free scale, not two
        unit = np.prod(scale ** np.array(mq[lead], dtype=np.float64))

        def poly(coefs: np.ndarray, mons: list[tuple[int, ...]], factor: float, fixed: int = -1) -> sympy.Expr:
            terms = []
            for j, (c, mon) in enumerate(zip(coefs, mons)):
                if c == 0:
                    continue
                m = sympy.Mul(*[s ** e for s, e in zip(variables, mon)])
                w = np.prod(scale ** np.array(mon, dtype=np.float64))
                terms.append(m if j == fixed else sympy.Float(float(c * factor * unit / w)) * m)
            return sympy.Add(*terms)
        return poly(a, mp, ys) / poly(b, mq, 1.0, fixed=lead)
    return None
