"""Sparse sums of products of one-variable atoms, ``y = Σ_k c_k·Π_j a_{kj}(x_j)`` (few variables).

Each term multiplies, per variable, either nothing or one atom (``x``, ``√x``, ``1/x``, ``x²``,
``1/x²``, ``sin x``, ``cos x``); the coefficients enter linearly, so the law is a sparse solution of a
linear least-squares problem (SINDy, Brunton et al. 2016; AI Feynman's polynomial fit step).
Greedy forward selection (each step adds the term whose part orthogonal to the chosen ones best
explains the residual; terms that turn out unneeded are removed at the end) adds terms until the fit is exact within ``tol``; laws such
as ``I1 + I2 + 2·√(I1·I2)·cos δ`` (interference) are three terms of this dictionary, where no
separability test splits them.
"""
from __future__ import annotations

import functools
import itertools
import math
from typing import Any, Iterator

import numpy as np
import sympy

from .exchange import Task, value_name
from .transforms import fixed_sign

__all__ = ["LAW_ALPHA", "atoms", "columns", "fit_dictionary", "dictionary_tasks", "fit_dictionary_transformed",
           "run_dictionary"]

#: level of the one test of a noisy law's snapped coefficients against its free fit
LAW_ALPHA = 0.01


def atoms(x: np.ndarray, sym: sympy.Symbol, inverse_square: bool = True) -> list[tuple[np.ndarray, sympy.Expr]]:
    """The atoms of one column that are defined on all its values: (values, sympy form);
    ``inverse_square=False`` leaves ``1/x²`` out."""
    out = [(x, sym), (x ** 2, sym ** 2), (np.sin(x), sympy.sin(sym)), (np.cos(x), sympy.cos(sym))]
    if np.all(x > 0):
        out.append((np.sqrt(x), sympy.sqrt(sym)))
    if np.all(x > 0) or np.all(x < 0):
        out += [(1 / x, 1 / sym)] + ([(x ** -2, sym ** -2)] if inverse_square else [])
    return out


def columns(X: np.ndarray, variables: list[sympy.Symbol],
            inverse_square: bool = True) -> tuple[np.ndarray, np.ndarray, list[sympy.Expr]]:
    """The dictionary of (X (N, n)): every product of one atom (or nothing) per variable, as
    (columns scaled to unit norm (N, K), their norms (K,), their sympy forms)."""
    N = X.shape[0]
    per = [[(np.ones(N), sympy.Integer(1))] + atoms(X[:, j], s, inverse_square) for j, s in enumerate(variables)]
    cols, forms = [], []
    for combo in itertools.product(*per):
        v = np.prod([c[0] for c in combo], axis=0)
        if np.all(np.isfinite(v)):
            cols.append(v)
            forms.append(sympy.Mul(*[c[1] for c in combo]))
    D = np.column_stack(cols)
    norms = np.linalg.norm(D, axis=0)
    keep = norms > 0
    return D[:, keep] / norms[keep], norms[keep], [f for f, k in zip(forms, keep) if k]


def _rss(D: np.ndarray, y: np.ndarray, cols: list[int]) -> float:
    c, *_ = np.linalg.lstsq(D[:, cols], y, rcond=None)
    return float(np.sum((y - D[:, cols] @ c) ** 2))


def _swaps(D: np.ndarray, y: np.ndarray, chosen: list[int], passes: int = 2) -> list[int]:
    """Replace one chosen column at a time by the one that lowers the residual most (local search)."""
    best = _rss(D, y, chosen)
    for _ in range(passes):
        improved = False
        for i in range(len(chosen)):
            rest = chosen[:i] + chosen[i + 1:]
            Qr, _ = np.linalg.qr(D[:, rest]) if rest else (np.zeros((len(y), 0)), None)
            r = y - Qr @ (Qr.T @ y)
            P = D - Qr @ (Qr.T @ D)
            pn = np.linalg.norm(P, axis=0)
            gain = np.where(pn > 1e-8, (P.T @ r) ** 2 / np.maximum(pn, 1e-300) ** 2, 0.0)
            gain[rest] = 0.0
            j = int(np.argmax(gain))
            new = float(r @ r) - gain[j]
            if new < best * (1 - 1e-9) and j != chosen[i]:
                chosen = rest[:i] + [j] + rest[i:]
                best, improved = new, True
        if not improved:
            break
    return chosen


def next_atom(D: np.ndarray, Q: np.ndarray, r: np.ndarray, chosen: list[int]) -> int | None:
    """Orthogonal matching pursuit's step: the column whose part not yet explained by the chosen
    ones (``Q``: their orthonormal basis) is most correlated with the residual ``r``
    (|Pᵀr| / ‖P‖ with P = D − Q·Qᵀ·D); None when no column adds anything."""
    P = D - Q @ (Q.T @ D)
    pn = np.linalg.norm(P, axis=0)
    score = np.where(pn > 1e-8, np.abs(P.T @ r) / np.maximum(pn, 1e-300), 0.0)
    score[chosen] = 0.0
    j = int(np.argmax(score))
    return j if score[j] > 0 else None


def fit_dictionary(X: np.ndarray, y: np.ndarray, variables: list[sympy.Symbol], *, tol: float = 1e-7,
                   max_terms: int = 6, max_vars: int = 3) -> sympy.Expr | None:
    """The sparse sum of atom products fitting (X (N, n), y (N,)) within relative RMSE ``tol``, or
    None (also for more than ``max_vars`` variables: the dictionary grows as 8^n)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if not _applies(X, max_vars) or not np.all(np.isfinite(y)):
        return None
    return _fit_columns(columns(X, variables), y, tol, max_terms)


def _applies(X: np.ndarray, max_vars: int) -> bool:
    return X.shape[1] <= max_vars and X.shape[0] >= 10 and bool(np.all(np.isfinite(X)))


def _fit_columns(dictionary: tuple[np.ndarray, np.ndarray, list[sympy.Expr]], y: np.ndarray, tol: float,
                 max_terms: int) -> sympy.Expr | None:
    """:func:`fit_dictionary` on the dictionary ``(D, norms, forms)`` of :func:`columns`."""
    D, norms, forms = dictionary
    scale = float(np.sqrt(np.mean(y ** 2))) or 1.0
    ok = tol * scale * math.sqrt(len(y))  # the residual norm of an exact fit
    # first every law of up to three terms (interference-like laws, whose terms only help together,
    # are missed by greedy steps), screened through the Gram matrix, then greedy forward selection
    for cols in _small_supports(D, y, ok ** 2):
        if _rss(D, y, cols) <= ok ** 2:
            return _law(D, y, cols, norms, forms)
    chosen = _pursuit(D, y, max_terms, tol * scale)
    return None if chosen is None else _law(D, y, chosen, norms, forms)


def _small_supports(D: np.ndarray, y: np.ndarray, rss_ok: float, max_pairs: int = 12000,
                    chunk: int = 64, most: int = 20) -> Iterator[list[int]]:
    """Supports of one, two or three columns of D (unit norm) whose least-squares residual is
    within ``rss_ok``, the fewest terms first and then the best, at most ``most``, estimated from the
    Gram matrix ``G = DᵀD`` alone: for a pair S = {i, j}, ``RSS = yᵀy − c_Sᵀ G_SS⁻¹ c_S`` (``c = Dᵀy``),
    and the best third column k adds the gain ``q_k² / p_k`` (:func:`_third_columns`). The estimates
    only screen: each support is confirmed by a least-squares fit on the rows, so they are yielded one
    by one and the third columns, the costly part (every column for ``max_pairs`` pairs), are scored
    only once every single and pair was yielded and none confirmed."""
    G, c, yy = D.T @ D, D.T @ y, float(y @ y)
    K = len(c)
    margin = rss_ok + 1e-9 * yy  # the Gram identities lose digits: confirm generously
    single = yy - c ** 2
    found = [(float(single[k]), [int(k)]) for k in np.flatnonzero(single <= margin)]
    I, J = np.triu_indices(K, 1)
    g = G[I, J]
    den = 1 - g ** 2
    with np.errstate(all="ignore"):
        pair = np.where(den > 1e-10, yy - (c[I] ** 2 + c[J] ** 2 - 2 * g * c[I] * c[J]) / den, np.inf)
    found += [(float(pair[p]), [int(I[p]), int(J[p])]) for p in np.flatnonzero(pair <= margin)]
    found.sort(key=lambda t: (len(t[1]), t[0]))  # the fewest terms first
    yield from (cols for _, cols in found[:most])
    if len(found) >= most:
        return
    triples = _third_columns(G, c, pair, I, J, g, den, margin, max_pairs, chunk)
    triples.sort(key=lambda t: t[0])
    yield from (cols for _, cols in triples[:most - len(found)])


def _third_columns(G: np.ndarray, c: np.ndarray, pair: np.ndarray, I: np.ndarray, J: np.ndarray, g: np.ndarray,
                   den: np.ndarray, margin: float, max_pairs: int, chunk: int) -> list[tuple[float, list[int]]]:
    """The best third column k of each of the ``max_pairs`` best pairs S = {i, j}, kept when the
    estimated RSS is within ``margin``: the gain of k is ``q_k² / p_k`` with ``q_k = c_k − G_kSᵀ G_SS⁻¹ c_S``,
    ``p_k = 1 − G_kSᵀ G_SS⁻¹ G_kS``. Scored ``chunk`` pairs at a time (each pair's row on its own, so
    the result does not depend on it): 64 pairs × 512 columns stay in the cache, 2000 did not."""
    out: list[tuple[float, list[int]]] = []
    best = np.argsort(pair)[:max_pairs]
    for s in range(0, len(best), chunk):
        idx = best[s:s + chunk]
        i, j, gg = I[idx], J[idx], g[idx]
        inv = 1 / den[idx]
        ai, aj = (c[i] - gg * c[j]) * inv, (c[j] - gg * c[i]) * inv  # G_SS⁻¹ c_S
        Gi, Gj = G[i], G[j]  # (m, K): G_kS for every k
        q = c[None, :] - (Gi * ai[:, None] + Gj * aj[:, None])
        p = 1 - (Gi * (Gi - gg[:, None] * Gj) + Gj * (Gj - gg[:, None] * Gi)) * inv[:, None]
        gain = np.where(p > 1e-9, q ** 2 / np.maximum(p, 1e-300), 0.0)
        rows = np.arange(len(idx))
        gain[rows, i] = gain[rows, j] = 0.0
        k = np.argmax(gain, axis=1)
        rss = pair[idx] - gain[rows, k]
        out += [(float(rss[m]), [int(i[m]), int(j[m]), int(k[m])]) for m in np.flatnonzero(rss <= margin)]
    return out


def _pursuit(D: np.ndarray, y: np.ndarray, max_terms: int, tol: float) -> list[int] | None:
    """Greedy forward selection until the RMS residual is at most ``tol`` (then the terms not
    needed are dropped), or None after ``max_terms`` terms."""
    chosen: list[int] = []
    Q = np.zeros((len(y), 0))
    r = y
    while True:
        if math.sqrt(float(np.mean(r ** 2))) <= tol:
            return _prune(D, y, chosen, tol)
        if len(chosen) >= max_terms:
            return None
        j = next_atom(D, Q, r, chosen)
        if j is None:
            return None
        chosen.append(j)
        chosen = _swaps(D, y, chosen)  # greedy detours (√x·√y before x and y) are undone by swaps
        Q, _ = np.linalg.qr(D[:, chosen])
        r = y - Q @ (Q.T @ y)


def _prune(D: np.ndarray, y: np.ndarray, chosen: list[int], tol: float) -> list[int]:
    """Backward: drop the terms whose removal keeps the RMS residual within ``tol`` (greedy detours)."""
    coef, *_ = np.linalg.lstsq(D[:, chosen], y, rcond=None)
    for k in sorted(range(len(chosen)), key=lambda k: abs(coef[k])):
        trial = [c for i, c in enumerate(chosen) if i != k and c >= 0]
        if not trial:
            continue
        ct, *_ = np.linalg.lstsq(D[:, trial], y, rcond=None)
        if math.sqrt(float(np.mean((y - D[:, trial] @ ct) ** 2))) <= tol:
            chosen[k] = -1
    return [c for c in chosen if c >= 0]


def fit_dictionary_transformed(X: np.ndarray, y: np.ndarray, variables: list[sympy.Symbol], *, tol: float = 1e-7,
                               max_terms: int = 6, max_vars: int = 3) -> list[sympy.Expr]:
    """The sparse atom sums fitting ``y``, ``y²``, ``1/y`` or ``1/y²`` (the last three when y keeps
    one sign), composed back into formulas for y: the law of cosines ``√(a² + b² − 2ab·cos γ)`` is
    three terms of the dictionary in ``y²``, a Coulomb-like ``1/√(...)`` in ``1/y²``. ``tol`` is the
    relative error allowed on y (twice that on the squared transforms, whose relative error doubles)."""
    tasks = dictionary_tasks(X, y, variables, tol=tol, max_terms=max_terms, max_vars=max_vars)
    return [e for _, fit in tasks for e in fit()]


def dictionary_tasks(X: np.ndarray, y: np.ndarray, variables: list[sympy.Symbol], *, tol: float = 1e-7,
                     max_terms: int = 6, max_vars: int = 3) -> list[Task]:
    """:func:`fit_dictionary_transformed` as one task per target transform (:data:`~nnlab.symbolic.
    exchange.Task`: its name, and a function giving the formulas for y of that transform, [] or one):
    the shards of a decomposition split them. The tasks of one call build the dictionary once."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if not _applies(X, max_vars):
        return []
    s = fixed_sign(y)
    forms = [("y", lambda v: v, 1.0, lambda e: e)]
    if s != 0:
        forms += [("y^2", lambda v: v ** 2, 2.0, lambda e: s * sympy.sqrt(e)), ("1/y", lambda v: 1 / v, 1.0, lambda e: 1 / e),
                  ("1/y^2", lambda v: 1 / v ** 2, 2.0, lambda e: s / sympy.sqrt(e))]
    dictionary = functools.cache(lambda: columns(X, variables))  # built once, for the first transform that is finite

    def fit(T: Any, factor: float, inv: Any) -> list[sympy.Expr]:
        with np.errstate(all="ignore"):
            t = T(y)
            if not np.all(np.isfinite(t)):
                return []
            e = _fit_columns(dictionary(), t, factor * tol, max_terms)
        return [] if e is None else [inv(e)]
    return [(value_name("dictionary", X, y, transform=name, tol=tol, max_terms=max_terms, variables=str(variables)),
             functools.partial(fit, T, factor, inv)) for name, T, factor, inv in forms]


def _law(D: np.ndarray, y: np.ndarray, chosen: list[int], norms: np.ndarray, forms: list[sympy.Expr]) -> sympy.Expr:
    coef, *_ = np.linalg.lstsq(D[:, chosen], y, rcond=None)
    return sympy.Add(*[sympy.Float(float(c / norms[k])) * forms[k] for c, k in zip(coef, chosen)])


def run_dictionary(res, Xtr: np.ndarray, ytr: np.ndarray, Xva: np.ndarray, yva: np.ndarray,
                   variables: list[sympy.Symbol], *, snap_tol: float, deadline: float | None) -> None:
    """The ``dictionary`` candidate: fill ``res`` (a :class:`~nnlab.symbolic.search.CandidateResult`)
    with the sparse sum of atom products that fits the training rows within ``1e-6``, finished
    (polish, snap) like every candidate."""
    from .finish import fill_result, finish
    from .polish import evaluate, relative_rmse
    from .significance import SnapTest

    with np.errstate(all="ignore"):
        expr = fit_dictionary(Xtr, ytr, variables, tol=1e-6)
    noisy = expr is None
    if noisy:  # noisy data: the number of terms by F-tests and the residual (noisy_dictionary.py)
        from .noisy_dictionary import fit_dictionary_noisy

        with np.errstate(all="ignore"):
            expr = fit_dictionary_noisy(Xtr, ytr, variables, deadline=deadline)
    if expr is None:
        res.note = "no sparse sum of atom products fits the rows"
        return
    free = (relative_rmse(evaluate(expr, variables, Xtr), ytr), len(expr.atoms(sympy.Float)))
    expr, err = finish(expr, variables, Xtr, ytr, snap_tol=snap_tol, deadline=deadline)
    # within the noise a few terms approximate many smooth laws (m·c² + 0.59·m·v² for
    # m·c²/√(1 − v²/c²)): a law's coefficients are simple numbers, all of them (no float left),
    # and the data accept them together: one F-test of the snapped law against the free fit at
    # LAW_ALPHA (stricter than each snap's 10⁻³: 3·αn/π + α²n²/2 + 1 for 1 + αn/(1 − αn/3) fails it)
    if noisy and (expr.atoms(sympy.Float) or not SnapTest(len(ytr), free[1], free[0], floor=0.0,
                                                          alpha=LAW_ALPHA).accepts(err, free[1])):
        res.note = f"a sparse sum fits within the noise, but its coefficients are no simple numbers: {expr}"
        return
    fill_result(res, expr, variables, Xtr, ytr, Xva, yva, "y = Σ c·Π atoms(x), sparse least squares"
                + (" (terms chosen within the noise)" if noisy else ""))
