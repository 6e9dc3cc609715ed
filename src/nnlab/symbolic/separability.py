"""Structure tests on an oracle ``f`` (a fitted surrogate), judged against its error ``σ``.

Every test evaluates ``f`` at points built from rows of the data (so they stay inside the data's
box) and returns a z-score: the RMS of a residual that is zero when the structure holds,
divided by the RMS noise that an oracle with absolute error ``σ`` puts into that residual.
A structure is accepted when ``z ≤ z_max`` (AI Feynman, Udrescu & Tegmark 2020; KAN 2.0's
modularity, Liu et al. 2024):

* **additive** ``f = g(A) + h(B)``: ``f(a,b) + f(a',b') − f(a,b') − f(a',b) = 0``;
* **multiplicative**, sign-safe (no log of y): ``f(a,b)·f(a',b') − f(a,b')·f(a',b) = 0``;
* **symmetry**: ``f`` depends on ``x_i, x_j`` only through ``x_i − x_j`` (invariant under
  ``x_i + δ, x_j + δ``), ``x_i + x_j`` (``x_i + δ, x_j − δ``), ``x_i·x_j`` (``λx_i, x_j/λ``) or
  ``x_i/x_j`` (``λx_i, λx_j``);
* **linearity** in ``x_k``: ``f = a(R) + b(R)·x_k`` (second divided difference zero);
* **relevance**: ``f`` does not change when ``x_k`` alone does;
* **one index**: ``f = g(t)``, ``t = Π |x_k|^{β_k}`` (small integer ``β``) over every variable: the
  gradients of ``f`` in ``log|x|`` are all parallel to ``β`` (:func:`index_direction`), and the
  rows themselves are one smooth function of ``log t`` (:func:`index_residual`); ``√(1 +
  2ε²EL²/(m Z₁²Z₂²q⁴))``, seven variables, is one variable then;
* **homogeneity** of degree ``p`` in a group ``G``: ``f(λ·x_G, x_R) = λ^p·f(x_G, x_R)`` (the
  ``x_i/x_j`` symmetry is ``p = 0`` for a pair); then ``f = x_k^p·g(x_G/x_k, x_R)``, one variable
  fewer: AI Feynman's dimensionless groups such as ``u/c, v/c`` or ``(θ−θ₁)/σ``, found from the data.

Pairwise additive/multiplicative tests give an interaction graph whose connected components are
the modules (a zero Hessian block ``∂²f/∂x_i∂x_j``, resp. of ``log|f|``, between two sets is
exactly separability); the split into modules is then confirmed on the whole blocks.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = ["Oracle", "additive_z", "multiplicative_z", "symmetry_z", "linear_z", "relevance_z", "modules",
           "homogeneity_z", "index_direction", "index_residual", "SYMMETRIES"]

Oracle = Callable[[np.ndarray], np.ndarray]
SYMMETRIES = ("minus", "plus", "times", "divide")


def _pairs(X: np.ndarray, rng: np.random.Generator, m: int) -> tuple[np.ndarray, np.ndarray]:
    i = rng.integers(0, len(X), m)
    j = rng.integers(0, len(X), m)
    return X[i].copy(), X[j].copy()


def _swap(P: np.ndarray, Q: np.ndarray, cols: list[int]) -> np.ndarray:
    out = P.copy()
    out[:, cols] = Q[:, cols]
    return out


def additive_z(f: Oracle, X: np.ndarray, A: list[int], B: list[int], sigma: float, rng: np.random.Generator,
               m: int = 256) -> float:
    """z-score of ``f(a,b) + f(a',b') − f(a,b') − f(a',b)`` (``A`` and ``B`` column sets; other
    columns are held at the first point's values)."""
    P, Q = _pairs(X, rng, m)
    Q2 = _swap(P, Q, A + B)
    r = f(P) + f(Q2) - f(_swap(P, Q, A)) - f(_swap(P, Q, B))
    return float(np.sqrt(np.mean(r ** 2)) / (2 * sigma))


def multiplicative_z(f: Oracle, X: np.ndarray, A: list[int], B: list[int], sigma: float,
                     rng: np.random.Generator, m: int = 256) -> float:
    """z-score of the product identity ``f(a,b)·f(a',b') − f(a,b')·f(a',b)`` (works through zeros)."""
    P, Q = _pairs(X, rng, m)
    f1, f2 = f(P), f(_swap(P, Q, A + B))
    f3, f4 = f(_swap(P, Q, A)), f(_swap(P, Q, B))
    r = f1 * f2 - f3 * f4
    noise = sigma * np.sqrt(f1 ** 2 + f2 ** 2 + f3 ** 2 + f4 ** 2)
    return float(np.sqrt(np.mean(r ** 2)) / max(float(np.sqrt(np.mean(noise ** 2))), 1e-300))


def _shift(kind: str, xi: np.ndarray, xj: np.ndarray, lo: np.ndarray, hi: np.ndarray, i: int, j: int,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray] | None:
    """New (x_i, x_j) along the symmetry's orbit, inside the box; None if the kind does not apply."""
    if kind in ("times", "divide") and (lo[i] <= 0 or lo[j] <= 0):
        return None
    if kind == "minus":
        a, b = np.maximum(lo[i] - xi, lo[j] - xj), np.minimum(hi[i] - xi, hi[j] - xj)
    elif kind == "plus":
        a, b = np.maximum(lo[i] - xi, xj - hi[j]), np.minimum(hi[i] - xi, xj - lo[j])
    elif kind == "times":
        a = np.maximum(np.log(lo[i] / xi), np.log(xj / hi[j]))
        b = np.minimum(np.log(hi[i] / xi), np.log(xj / lo[j]))
    else:
        a = np.maximum(np.log(lo[i] / xi), np.log(lo[j] / xj))
        b = np.minimum(np.log(hi[i] / xi), np.log(hi[j] / xj))
    t = a + (b - a) * rng.uniform(size=xi.shape)
    if kind == "minus":
        return xi + t, xj + t
    if kind == "plus":
        return xi + t, xj - t
    if kind == "times":
        return xi * np.exp(t), xj * np.exp(-t)
    return xi * np.exp(t), xj * np.exp(t)


def symmetry_z(f: Oracle, X: np.ndarray, i: int, j: int, kind: str, sigma: float, rng: np.random.Generator,
               m: int = 256) -> tuple[float, float]:
    """(z of the change of ``f`` along the symmetry's orbit, z of the change when only ``x_i``
    moves the same way). A symmetry holds when the first is small and the second is large (the
    move was big enough to be seen)."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    P = X[rng.integers(0, len(X), m)].copy()
    moved = _shift(kind, P[:, i], P[:, j], lo, hi, i, j, rng)
    if moved is None:
        return float("inf"), 0.0
    Q, R = P.copy(), P.copy()
    Q[:, i], Q[:, j] = moved
    R[:, i] = moved[0]
    f0 = f(P)
    z_sym = float(np.sqrt(np.mean((f(Q) - f0) ** 2)) / (np.sqrt(2) * sigma))
    z_power = float(np.sqrt(np.mean((f(R) - f0) ** 2)) / (np.sqrt(2) * sigma))
    return z_sym, z_power


def linear_z(f: Oracle, X: np.ndarray, k: int, sigma: float, rng: np.random.Generator, m: int = 256) -> tuple[float, float]:
    """(z of the deviation of ``f`` from linearity in ``x_k``, z of the change along ``x_k``)."""
    lo, hi = float(X[:, k].min()), float(X[:, k].max())
    P = X[rng.integers(0, len(X), m)].copy()
    t1, t2 = lo + 0.1 * (hi - lo), lo + 0.9 * (hi - lo)
    t3 = rng.uniform(lo, hi, m)
    P1, P2, P3 = P.copy(), P.copy(), P.copy()
    P1[:, k], P2[:, k], P3[:, k] = t1, t2, t3
    f1, f2, f3 = f(P1), f(P2), f(P3)
    w = (t3 - t1) / (t2 - t1)
    r = f3 - (f1 + (f2 - f1) * w)
    noise = sigma * np.sqrt(1 + (1 - w) ** 2 + w ** 2)
    return float(np.sqrt(np.mean(r ** 2)) / np.sqrt(np.mean(noise ** 2))), \
        float(np.sqrt(np.mean((f2 - f1) ** 2)) / (np.sqrt(2) * sigma))


def relevance_z(f: Oracle, X: np.ndarray, k: int, sigma: float, rng: np.random.Generator, m: int = 256) -> float:
    """z of the change of ``f`` when ``x_k`` alone is redrawn from the data (small: irrelevant)."""
    P, Q = _pairs(X, rng, m)
    return float(np.sqrt(np.mean((f(_swap(P, Q, [k])) - f(P)) ** 2)) / (np.sqrt(2) * sigma))


def modules(f: Oracle, X: np.ndarray, sigma: float, kind: str, rng: np.random.Generator, z_max: float,
            m: int = 256) -> tuple[list[list[int]], list[tuple[int, int, float]]]:
    """Connected components of the interaction graph (edge ``i–j`` when the pairwise ``kind``
    test, ``"additive"`` or ``"multiplicative"``, has ``z > z_max``), then each split confirmed on
    whole blocks (components that fail are merged). Returns (modules, pairwise z list)."""
    test = additive_z if kind == "additive" else multiplicative_z
    n = X.shape[1]
    parent = list(range(n))

    def root(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    zs = []
    for i in range(n):
        for j in range(i + 1, n):
            if root(i) == root(j):
                continue
            z = test(f, X, [i], [j], sigma, rng, m)
            zs.append((i, j, z))
            if z > z_max:
                parent[root(i)] = root(j)
    comps: dict[int, list[int]] = {}
    for i in range(n):
        comps.setdefault(root(i), []).append(i)
    mods = sorted(comps.values())
    # confirm: each module against the rest as whole blocks
    ok: list[list[int]] = []
    rest_merge: list[int] = []
    for mod in mods:
        other = [c for c in range(n) if c not in mod]
        if not other:
            ok.append(mod)
            continue
        if test(f, X, mod, other, sigma, rng, m) <= z_max:
            ok.append(mod)
        else:
            rest_merge += mod
    if rest_merge:
        ok.append(sorted(rest_merge))
    return sorted(ok), zs


def homogeneity_z(f: Oracle, X: np.ndarray, group: list[int], sigma: float, rng: np.random.Generator,
                  m: int = 256, max_degree: float = 4.0) -> tuple[float, float, float]:
    """(z of ``f(λx_G, x_R) − λ^p·f(x)``, the smallest z of that residual when only one column of
    ``G`` is scaled (large: each column matters to the identity), degree ``p``).

    ``λ > 0`` is drawn per point so that every scaled column stays inside the data's box (columns
    of either sign; a zero stays zero). ``p`` is estimated from ``log|f(λx)/f(x)| / log λ`` on
    points where ``f`` is well away from zero, then rounded to a multiple of 1/2 (physical
    degrees); ``|p| > max_degree`` is not tried. A group that cannot be scaled gives ``(inf, 0, 0)``."""
    lo, hi = X.min(axis=0), X.max(axis=0)
    P = X[rng.integers(0, len(X), m)].copy()
    a = np.full(m, -np.inf)
    b = np.full(m, np.inf)
    with np.errstate(all="ignore"):
        for c in group:
            x = P[:, c]
            l1, l2 = lo[c] / x, hi[c] / x
            lmin, lmax = np.where(x > 0, l1, np.where(x < 0, l2, 0.0)), np.where(x > 0, l2, np.where(x < 0, l1, np.inf))
            a = np.maximum(a, np.log(np.maximum(lmin, 1e-300)))
            b = np.minimum(b, np.log(lmax))
    ok = np.isfinite(a) & np.isfinite(b) & (b - a > 0.05)
    if ok.sum() < m // 4:
        return float("inf"), 0.0, 0.0
    P, a, b = P[ok], a[ok], b[ok]
    t = a + (b - a) * rng.uniform(size=len(P))
    lam = np.exp(t)
    Q = P.copy()
    Q[:, group] = P[:, group] * lam[:, None]
    f0, f1 = f(P), f(Q)
    scale = np.sqrt(np.mean(f0 ** 2))
    use = (np.abs(f0) > 0.1 * scale) & (np.abs(f1) > 0.1 * scale) & (np.abs(t) > 0.05) & (np.sign(f0) == np.sign(f1))
    if use.sum() < 8:
        return float("inf"), 0.0, 0.0
    with np.errstate(all="ignore"):
        p_hat = float(np.median(np.log(f1[use] / f0[use]) / t[use]))
    p = round(2 * p_hat) / 2
    if not np.isfinite(p) or abs(p) > max_degree:
        return float("inf"), 0.0, 0.0
    r = f1 - lam ** p * f0
    noise = sigma * np.sqrt(1 + lam ** (2 * p))
    z = float(np.sqrt(np.mean(r ** 2)) / np.sqrt(np.mean(noise ** 2)))
    power = math.inf  # the move must matter: each column of G scaled alone breaks the identity
    for c in group:
        R = P.copy()
        R[:, c] = P[:, c] * lam
        power = min(power, float(np.sqrt(np.mean((f(R) - lam ** p * f0) ** 2)) / np.sqrt(np.mean(noise ** 2))))
    return z, power, float(p)


def index_direction(f: Oracle, X: np.ndarray, rng: np.random.Generator, m: int = 256, max_power: int = 6,
                    max_ratio: float = 0.05) -> np.ndarray | None:
    """Integer exponents ``β`` (no common factor, first non-zero entry positive) when ``f`` looks like
    a function of the one monomial ``t = Π |x_k|^{β_k}``, else None. Every column must have a fixed
    sign. ``f = g(t)`` makes ``∂f/∂log|x_k| = g'(t)·t·β_k`` at every point: the gradients, by central
    differences in ``log|x|``, form a rank-one matrix (second singular value at most ``max_ratio`` of
    the first, rows normalised); its direction is snapped to small integers (entries at most
    ``max_power``, each within 3 % of the estimate's largest). A zero entry is refused (the variable
    would not matter; :func:`relevance_z` drops those first)."""
    signs = np.sign(X[0])
    if X.shape[1] < 2 or np.any(signs == 0) or np.any(np.sign(X) != signs):
        return None
    P = X[rng.integers(0, len(X), m)]
    h = 1e-3
    G = np.empty(P.shape)
    for k in range(X.shape[1]):
        up, down = P.copy(), P.copy()
        up[:, k] *= math.exp(h)
        down[:, k] *= math.exp(-h)
        G[:, k] = (f(up) - f(down)) / (2 * h)
    norms = np.linalg.norm(G, axis=1)
    finite = np.isfinite(norms)
    if finite.sum() < m // 4:
        return None
    keep = finite & (norms > 1e-3 * np.median(norms[finite]))
    if keep.sum() < m // 4:
        return None
    _, sv, Vt = np.linalg.svd(G[keep] / norms[keep, None], full_matrices=False)
    if not sv[1] <= max_ratio * sv[0]:
        return None
    v = Vt[0] / np.max(np.abs(Vt[0]))
    best = None
    for pivot in np.flatnonzero(np.abs(v) > 1.0 / max_power):
        for scale in range(1, max_power + 1):
            w = v / abs(v[pivot]) * scale
            r = np.round(w)
            if np.any(r == 0) or np.max(np.abs(r)) > max_power or np.max(np.abs(w - r)) > 0.03 * np.max(np.abs(w)):
                continue
            r = r / np.gcd.reduce(r.astype(int))
            r = r if r[np.flatnonzero(r)[0]] > 0 else -r
            if best is None or np.abs(r).sum() < np.abs(best).sum():
                best = r
    return best


def index_residual(t: np.ndarray, y: np.ndarray, rng: np.random.Generator, degree: int = 14) -> float:
    """Held-out RMS residual of the rows ``y`` as one smooth function of ``log t`` (a Chebyshev
    polynomial of ``degree`` fitted on three quarters of the rows, judged on the rest): zero when
    ``y = g(t)`` with ``g`` smooth, about ``y``'s spread when ``t`` is not what ``y`` depends on."""
    s = np.log(t)
    lo, hi = float(s.min()), float(s.max())
    if not hi > lo:
        return float("inf")
    u = 2 * (s - lo) / (hi - lo) - 1
    perm = rng.permutation(len(y))
    va, tr = perm[: len(y) // 4], perm[len(y) // 4:]
    if len(tr) <= 2 * degree:
        return float("inf")
    coef = np.polynomial.chebyshev.chebfit(u[tr], y[tr], degree)
    return float(np.sqrt(np.mean((np.polynomial.chebyshev.chebval(u[va], coef) - y[va]) ** 2)))
