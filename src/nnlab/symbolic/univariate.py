"""One-variable laws beyond ``c·f(a·t + b) + d``: rational functions of ``t``, of ``√`` and of ``e^{a·t}``.

Once a law is reduced to one dimensionless group ``t`` (a monomial such as ``ω/ω₀`` or
``ħω/(k_B T)``, :mod:`~nnlab.symbolic.composite`, or a leaf of
:mod:`~nnlab.symbolic.decompose`), what is left is ``z = g(t)``. Many of physics' ``g`` are not one
library function of an affine map but small rational functions of a simple atom:

- ``g = P(t)/Q(t)`` (resonance ``t⁴/(t² − 1)²``, Doppler ``1/(1 − t)``): the null vector of
  ``[M_P(t), −z·M_Q(t)]`` (:func:`~nnlab.symbolic.rational.fit_rational`);
- ``g = ±√(P(t)/Q(t))`` (relativistic Doppler ``√((1 + t)/(1 − t))``): the same on ``z²``;
- ``g = P(w)/Q(w)``, ``w = e^{a·t}`` (Bose–Einstein ``1/(e^{at} − 1)``, Fermi ``1/(e^{at} + 1)``,
  ``1/(e^{at} + e^{−at}) = w/(w² + 1)``): for a fixed rate ``a`` the fit is linear again, so
  ``a`` is searched on a log grid (rates whose ``a·ptp(t)`` spans 0.03 to 40) by the smallest
  relative residual over the degree pairs ``≤ 2``, then refined by a bounded 1-D minimisation.

Each fit is returned as a builder ``g(T)`` of a sympy expression for the atom ``T`` (the caller
substitutes its group), with its relative error and a cost (terms and atom) so that the caller
prefers the simplest exact one. Only fits within ``tol`` are returned: a rational of degree 4 can
approximate any smooth curve to a few digits, so these are exact-recovery tools, not fallbacks.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy
from scipy.optimize import minimize_scalar

from .rational import _design, _null, monomials, fit_rational

__all__ = ["UnivariateFit", "fit_univariate", "exp_rate"]

_T = sympy.Symbol("_t")


@dataclass(frozen=True)
class UnivariateFit:
    """``build(T)``: the law as a sympy expression of the atom ``T``; ``error``: relative RMSE
    ``‖g(t) − z‖/‖z‖``; ``cost``: number of constants plus the atom's; ``label``: what was fitted."""

    build: Callable[[sympy.Expr], sympy.Expr]
    error: float
    cost: int
    label: str


def _terms(expr: sympy.Expr) -> int:
    return len(expr.atoms(sympy.Float)) + 1


def _subst(expr: sympy.Expr, atom: Callable[[sympy.Expr], sympy.Expr]) -> Callable[[sympy.Expr], sympy.Expr]:
    return lambda T: expr.xreplace({_T: atom(T)})


def _rel(pred: np.ndarray, z: np.ndarray) -> float:
    with np.errstate(all="ignore"):
        e = float(np.sqrt(np.mean((pred - z) ** 2)) / (np.sqrt(np.mean(z ** 2)) or 1.0))
    return e if math.isfinite(e) else math.inf


def _eval(expr: sympy.Expr, t: np.ndarray) -> np.ndarray:
    f = sympy.lambdify([_T], expr, "numpy")
    with np.errstate(all="ignore"):
        return np.asarray(f(t), dtype=np.float64) * np.ones_like(t)


def _residual(w: np.ndarray, z: np.ndarray, dp: int, dq: int) -> float:
    """Relative residual of ``z ≈ P(w)/Q(w)`` (degrees ``dp``, ``dq``, full support)."""
    ws = w / (np.max(np.abs(w)) or 1.0)
    zs = z / (np.sqrt(np.mean(z ** 2)) or 1.0)
    MP, MQ = _design(ws[:, None], monomials(1, dp)), _design(ws[:, None], monomials(1, dq))
    A = np.hstack([MP, -zs[:, None] * MQ])
    if not np.all(np.isfinite(A)):
        return math.inf
    v, *_ = _null(A, np.ones(A.shape[1], dtype=bool))
    with np.errstate(all="ignore"):
        pred = (MP @ v[:MP.shape[1]]) / (MQ @ v[MP.shape[1]:])
    return _rel(pred, zs)


def exp_rate(t: np.ndarray, z: np.ndarray, *, max_degree: int = 2, tol: float = 1e-7,
             grid: int = 48, wells_refined: int = 4) -> tuple[float, float, tuple[int, int]]:
    """The rate ``a > 0`` for which ``z`` is a rational function of ``w = e^{a·t}``: (a, relative
    residual, degrees). Degree pairs are tried from the smallest total degree up and the first
    within ``tol`` wins (``1/(w² − 1)`` at rate ``a/2`` is also ``1/(w − 1)`` at rate ``a``: the
    smaller degree names the law); otherwise the best pair. ``a < 0`` needs no search: a
    rational of ``e^{−a·t}`` is a rational of ``e^{a·t}`` of the same degrees."""
    span = float(np.ptp(t))
    if not span > 0 or not np.all(np.isfinite(t)):
        return math.nan, math.inf, (0, 0)
    shift = float(np.min(t))  # e^{a(t − t_min)}: the same rational up to a constant; no overflow
    las = np.linspace(math.log(0.03 / span), math.log(40.0 / span), grid)
    pairs = sorted(((dp, dq) for dp in range(max_degree + 1) for dq in range(1, max_degree + 1)),
                   key=lambda p: (p[0] + p[1], p[1]))
    best = (math.nan, math.inf, (0, 0))
    for dp, dq in pairs:
        def cost(la: float) -> float:
            r = _residual(np.exp(math.exp(la) * (t - shift)), z, dp, dq)
            return math.log(r + 1e-300) if math.isfinite(r) else 0.0

        costs = np.array([cost(la) for la in las])
        # the true rate is a narrow well: refine every local minimum of the grid, lowest first
        wells = [i for i in range(grid) if costs[i] <= costs[max(i - 1, 0)] and costs[i] <= costs[min(i + 1, grid - 1)]]
        for i in sorted(wells, key=lambda i: costs[i])[:wells_refined]:
            lo, hi = las[max(i - 1, 0)], las[min(i + 1, grid - 1)]
            opt = minimize_scalar(cost, bounds=(lo, hi), method="bounded", options={"xatol": 1e-10})
            la, c = (float(opt.x), float(opt.fun)) if opt.fun < costs[i] else (float(las[i]), float(costs[i]))
            if math.exp(c) < best[1]:
                best = (math.exp(la), math.exp(c), (dp, dq))
            if best[1] <= tol:
                return best
    return best


def fit_univariate(t: np.ndarray, z: np.ndarray, *, tol: float = 1e-7, max_degree: int = 4,
                   exp_degree: int = 2, rational: bool = True,
                   deadline: float | None = None) -> list[UnivariateFit]:
    """Every form above that fits ``z ≈ g(t)`` (t, z: (N,)) within relative RMSE ``tol``, cheapest first.

    Args:
        tol: relative error accepted (exact data: about 1e-7; the fits are refit later anyway).
        max_degree: largest degree of ``P`` and ``Q`` in ``t``; ``exp_degree`` in ``e^{a·t}``.
        deadline: ``time.monotonic()`` value after which the costlier forms are skipped."""
    t = np.asarray(t, dtype=np.float64).reshape(-1)
    z = np.asarray(z, dtype=np.float64).reshape(-1)
    if len(t) != len(z):
        raise ValueError(f"t has {len(t)} values but z has {len(z)}; they must match")
    out: list[UnivariateFit] = []
    if len(t) < 8 or not np.all(np.isfinite(t)) or not np.all(np.isfinite(z)) or not np.ptp(t) > 0:
        return out

    def add(expr: sympy.Expr | None, atom: Callable[[sympy.Expr], sympy.Expr], extra: int, label: str,
            wrap: Callable[[sympy.Expr], sympy.Expr] = lambda e: e) -> None:
        if expr is None:
            return
        law = wrap(expr)
        err = _rel(_eval(law.xreplace({_T: atom(_T)}), t), z)
        if err <= tol:
            out.append(UnivariateFit(_subst(law, atom), err, _terms(law) + extra, label))

    col = t[:, None]
    if rational:
        _add_rational(add, col, z, max_degree, tol)
    if deadline is not None and time.monotonic() > deadline:
        return sorted(out, key=lambda f: (f.cost, f.error))
    a, r, (dp, dq) = exp_rate(t, z, max_degree=exp_degree, tol=tol)
    if r <= 10 * tol:
        shift = float(np.min(t))
        w = np.exp(a * (t - shift))
        rat = fit_rational(w[:, None], z, [_T], max_degree=max(dp, dq), tol=10 * tol)
        if rat is not None:  # e^{a(T − t_min)} = C·e^{aT}: the refit absorbs C into the coefficients
            A, S = sympy.Float(a), sympy.Float(shift)
            add(rat, lambda T: sympy.exp(A * (T - S)), 2, "P(w)/Q(w), w = exp(a t)")
    return sorted(out, key=lambda f: (f.cost, f.error))


def _add_rational(add, col: np.ndarray, z: np.ndarray, max_degree: int, tol: float) -> None:
    add(fit_rational(col, z, [_T], max_degree=max_degree, tol=tol, polynomial=True), lambda T: T, 0, "P(t)/Q(t)")
    s = 1 if np.all(z > 0) else (-1 if np.all(z < 0) else 0)
    if s != 0:  # the relative error of z² is twice z's
        sq = fit_rational(col, z ** 2, [_T], max_degree=max_degree, tol=2 * tol, polynomial=True)
        add(sq, lambda T: T, 1, "sqrt(P(t)/Q(t))", lambda e: s * sympy.sqrt(e))
