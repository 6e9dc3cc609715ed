"""Sparse sums of products of one-variable atoms, ``y = Σ_k c_k·Π_j a_{kj}(x_j)`` (few variables).

Each term multiplies, per variable, either nothing or one atom (``x``, ``√x``, ``1/x``, ``x²``,
``sin x``, ``cos x``); the coefficients enter linearly, so the law is a sparse solution of a
linear least-squares problem (SINDy, Brunton et al. 2016; AI Feynman's polynomial fit step).
Greedy forward selection (each step adds the term whose part orthogonal to the chosen ones best
explains the residual; terms that turn out unneeded are removed at the end) adds terms until the fit is exact within ``tol``; laws such
as ``I1 + I2 + 2·√(I1·I2)·cos δ`` (interference) are three terms of this dictionary, where no
separability test splits them.
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import sympy

__all__ = ["LAW_ALPHA", "atoms", "columns", "fit_dictionary", "run_dictionary"]

#: level of the one test of a noisy law's snapped coefficients against its free fit
LAW_ALPHA = 0.01


def atoms(x: np.ndarray, sym: sympy.Symbol) -> list[tuple[np.ndarray, sympy.Expr]]:
    """The atoms of one column that are defined on all its values: (values, sympy form)."""
    out = [(x, sym), (x ** 2, sym ** 2), (np.sin(x), sympy.sin(sym)), (np.cos(x), sympy.cos(sym))]
    if np.all(x > 0):
        out.append((np.sqrt(x), sympy.sqrt(sym)))
    if np.all(x > 0) or np.all(x < 0):
        out.append((1 / x, 1 / sym))
    return out


def columns(X: np.ndarray, variables: list[sympy.Symbol]) -> tuple[np.ndarray, np.ndarray, list[sympy.Expr]]:
    """The dictionary of (X (N, n)): every product of one atom (or nothing) per variable, as
    (columns scaled to unit norm (N, K), their norms (K,), their sympy forms)."""
    N = X.shape[0]
    per = [[(np.ones(N), sympy.Integer(1))] + atoms(X[:, j], s) for j, s in enumerate(variables)]
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
    None (also for more than ``max_vars`` variables: the dictionary grows as 7^n)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    N, n = X.shape
    if n > max_vars or N < 10 or not np.all(np.isfinite(X)) or not np.all(np.isfinite(y)):
        return None
    D, norms, forms = columns(X, variables)
    scale = float(np.sqrt(np.mean(y ** 2))) or 1.0
    ok = tol * scale * math.sqrt(N)  # the residual norm of an exact fit
    # first every subset of up to three among the columns closest to y (interference-like laws,
    # whose terms only help together, are missed by greedy steps), then greedy forward selection
    top = list(np.argsort(-np.abs(D.T @ y))[:30])
    for size in (0, 1, 2):  # `size` columns among the top ones, plus the best completion among all
        for sub in itertools.combinations(top, size):
            Q, _ = np.linalg.qr(D[:, list(sub)]) if sub else (np.zeros((N, 0)), None)
            r = y - Q @ (Q.T @ y)
            P = D - Q @ (Q.T @ D)
            pn = np.linalg.norm(P, axis=0)
            gain = np.where(pn > 1e-8, (P.T @ r) ** 2 / np.maximum(pn, 1e-300) ** 2, 0.0)
            j = int(np.argmax(gain))
            if float(r @ r) - gain[j] <= ok ** 2 and j not in sub:
                cols = list(sub) + [j]
                if _rss(D, y, cols) <= ok ** 2:
                    return _law(D, y, cols, norms, forms)
    chosen: list[int] = []
    Q = np.zeros((N, 0))
    r = y.copy()
    for _ in range(max_terms):
        j = next_atom(D, Q, r, chosen)
        if j is None:
            break
        chosen.append(j)
        chosen = _swaps(D, y, chosen)  # greedy detours (√x·√y before x and y) are undone by swaps
        Q, _ = np.linalg.qr(D[:, chosen])
        r = y - Q @ (Q.T @ y)
        if math.sqrt(float(np.mean(r ** 2))) <= tol * scale:
            coef, *_ = np.linalg.lstsq(D[:, chosen], y, rcond=None)
            # backward: terms whose removal keeps the fit exact were picked on the way (greedy detours)
            for k in sorted(range(len(chosen)), key=lambda k: abs(coef[k])):
                trial = [c for i, c in enumerate(chosen) if i != k and c >= 0]
                if not trial:
                    continue
                ct, *_ = np.linalg.lstsq(D[:, trial], y, rcond=None)
                if math.sqrt(float(np.mean((y - D[:, trial] @ ct) ** 2))) <= tol * scale:
                    chosen[k] = -1
            chosen = [c for c in chosen if c >= 0]
            return _law(D, y, chosen, norms, forms)
    return None


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
