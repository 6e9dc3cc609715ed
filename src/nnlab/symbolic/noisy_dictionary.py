"""Sparse sums of atom products from noisy data (issue 11, item 8).

The exact path (:func:`~nnlab.symbolic.dictionary.fit_dictionary`) adds terms of
``y = Σ_k c_k·Π_j a_{kj}(x_j)`` until the fit is within ``1e-6``: under noise no support gets
there, and a law such as ``I1 + I2 + 2·√(I1·I2)·cos δ`` is lost. Here the number of terms is
decided by the residual, as in :mod:`~nnlab.symbolic.noisy_rational`:

1. **Noise level.** The flexible reference of :func:`~nnlab.symbolic.noisy_rational.noise_reference`
   (the full polynomial of the highest degree with at most N/4 terms) estimates ``σ`` when its
   error reaches a plateau with the degree; when it does not (small noise: the polynomial's own
   misfit still dominates) only the residual test of step 3 judges a support.
2. **Best support of each size** ``k = 1 … max_terms``: every subset of up to two columns among
   the 30 closest to y plus the best completion (as the exact path, so that terms which only
   help together are found), then greedy steps with swaps.
3. **The smallest k whose residual is noise**: the F-test of
   :mod:`~nnlab.symbolic.significance` against the reference finds no lack of fit (``q`` = the
   reference's constants minus ``k``, level :data:`FIT_ALPHA`) *and* a k-NN regression of the residual on x explains less
   than ``NOISE_STRUCTURE`` of it (:func:`~nnlab.symbolic.dependence.residual_structure`). A
   support that only approximates the law leaves a residual that is still a function of x.
4. **Every term significant**: a term whose removal the F-test against the k-term fit accepts
   was noise's, not the law's, and the mean of y alone must be refused; else there is no
   sparse law (the smaller supports were tried already). Exact data (a support within 10⁻⁶)
   are left to the exact path.
"""
from __future__ import annotations

import itertools
import math
import time

import numpy as np
import sympy

from .dependence import NOISE_STRUCTURE, residual_structure
from .dictionary import _law, _swaps, columns, next_atom
from .noisy_rational import noise_reference
from .rational import scaled_rows
from .significance import ALPHA, SnapTest

__all__ = ["fit_dictionary_noisy"]

_TOP = 30
#: level of the lack-of-fit test against the flexible reference. Stricter than a snap's 10⁻³: the
#: best of hundreds of supports fits the noise a little, and a sum of three atoms approximates
#: many smooth laws within 1% noise (measured: true laws p = 0.09–0.67, approximations 0.004–0.03)
FIT_ALPHA = 0.05
_BUDGET = 4.0  # seconds


def _best_supports(D: np.ndarray, t: np.ndarray, max_terms: int, deadline: float) -> dict[int, tuple[float, list[int]]]:
    """``{k: (RSS, columns)}``: the best support of each size found (see the module doc, step 2)."""
    N = len(t)
    best: dict[int, tuple[float, list[int]]] = {}

    def offer(cols: list[int]) -> None:
        c, *_ = np.linalg.lstsq(D[:, cols], t, rcond=None)
        rss = float(np.sum((t - D[:, cols] @ c) ** 2))
        k = len(cols)
        if k not in best or rss < best[k][0]:
            best[k] = (rss, sorted(cols))

    top = list(np.argsort(-np.abs(D.T @ t))[:_TOP])
    for size in (0, 1, 2):
        for sub in itertools.combinations(top, size):
            if time.monotonic() > deadline:
                return best
            Q, _ = np.linalg.qr(D[:, list(sub)]) if sub else (np.zeros((N, 0)), None)
            r = t - Q @ (Q.T @ t)
            P = D - Q @ (Q.T @ D)
            pn = np.linalg.norm(P, axis=0)
            gain = np.where(pn > 1e-8, (P.T @ r) ** 2 / np.maximum(pn, 1e-300) ** 2, 0.0)
            gain[list(sub)] = 0.0
            offer(list(sub) + [int(np.argmax(gain))])
    chosen = list(best[min(best, key=lambda k: abs(k - 3))][1]) if best else []
    while len(chosen) < max_terms and time.monotonic() <= deadline:
        Q, _ = np.linalg.qr(D[:, chosen]) if chosen else (np.zeros((N, 0)), None)
        r = t - Q @ (Q.T @ t)
        j = next_atom(D, Q, r, chosen)
        if j is None:
            break
        chosen = _swaps(D, t, chosen + [j])
        offer(chosen)
    return best


def fit_dictionary_noisy(X: np.ndarray, y: np.ndarray, variables: list[sympy.Symbol], *, max_terms: int = 3,
                         max_vars: int = 3, alpha: float = ALPHA,
                         deadline: float | None = None) -> sympy.Expr | None:
    """The sparsest sum of atom products whose residual on (X (N, n), y (N,)) is noise (see the
    module doc), or None: exact data (the exact path's case), more than ``max_vars`` variables,
    or no support of at most ``max_terms`` terms that leaves only noise."""
    X = np.asarray(X, dtype=np.float64)
    rows = scaled_rows(X, y, min_rows=20)
    if rows is None or X.shape[1] > max_vars:
        return None
    Xs, _, t, _ = rows
    N = len(t)
    # None: exact data, or a law no polynomial follows yet; the lack-of-fit test is at FIT_ALPHA
    reference = noise_reference(Xs, t, FIT_ALPHA)
    stop = time.monotonic() + _BUDGET
    stop = stop if deadline is None else min(stop, deadline)
    with np.errstate(all="ignore"):
        # without 1/x²: under noise every extra column is one more way to fit the noise
        D, norms, forms = columns(X, variables, inverse_square=False)
        best = _best_supports(D, t, max_terms, stop)
    mean_err = float(np.std(t))  # relative RMSE of the mean alone (t has RMS 1)
    for k in sorted(best):
        rss, cols = best[k]
        err = math.sqrt(rss / N)  # t has RMS 1: the relative RMSE
        if err < 1e-6:
            return None  # exact: the exact path's case (it refused this support's terms)
        if reference is not None and (k >= reference.p or not reference.accepts(err, reference.p - k)):
            continue  # the flexible reference explains significantly more: a lack of fit
        coef, *_ = np.linalg.lstsq(D[:, cols], t, rcond=None)
        if residual_structure(X, t - D[:, cols] @ coef) > NOISE_STRUCTURE:
            continue  # the residual is still a function of x: not the law
        own = SnapTest(N, k, err, floor=0.0, alpha=alpha)
        if own.accepts(mean_err, k) or \
                any(own.accepts(math.sqrt(_rss_without(D, t, cols, i) / N), 1) for i in range(k) if k > 1):
            return None  # a term that carries nothing (or y is its mean and noise): no sparse law here
        return _law(D, np.asarray(y, dtype=np.float64).reshape(-1), cols, norms, forms)
    return None


def _rss_without(D: np.ndarray, t: np.ndarray, cols: list[int], i: int) -> float:
    rest = cols[:i] + cols[i + 1:]
    c, *_ = np.linalg.lstsq(D[:, rest], t, rcond=None)
    return float(np.sum((t - D[:, rest] @ c) ** 2))
