"""Does y depend on these inputs? Nearest-neighbour tests for input relevance and for the verdict.

Both questions are answered with the same non-parametric oracle, a leave-one-out
``k``-nearest-neighbour regression on standardised columns (no model to train, milliseconds):

* **Input relevance** (issue 11, item 3): backward elimination. A column is dropped when
  leaving it out does not make the k-NN prediction of ``y`` worse (an irrelevant column only
  adds distance noise, so leaving it out helps), its rank correlation with ``y`` is below
  ``4/√N`` (what independent samples give) *and* an F-test finds that its terms in a quadratic
  polynomial of the columns explain nothing (p > 10⁻⁴; a misfit residual makes the test
  somewhat liberal, junk columns measured 0.006–0.9, real ones < 10⁻⁷⁰). k-NN alone would drop a weak but real
  variable (``c`` in ``m₀v/√(1 − v²/c²)`` with c ≫ v); the polynomial test sees it. When the columns left, together, predict
  ``y`` no better than its mean and none of them correlates with it, ``y`` is noise.
* **Residual test** (item 6): the residual ``r = y − f(x)`` of a formula is noise when its k-NN
  prediction from ``x`` explains less than 10% of ``Σr²`` (white noise gives about ``−1/k``);
  a formula that only approximates the law leaves a residual that still depends on ``x``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from joblib import parallel_config
from scipy.stats import f as f_dist
from scipy.stats import spearmanr
from sklearn.neighbors import NearestNeighbors

#: a residual is noise when k-NN predicts less than this share of it
NOISE_STRUCTURE = 0.1

__all__ = ["NOISE_STRUCTURE", "knn_error", "poly_pvalue", "Relevance", "relevant_columns", "residual_structure"]


def _standardise(v: np.ndarray) -> np.ndarray:
    m = np.max(np.abs(v)) or 1.0
    v = v / m
    sd = v.std(axis=0)
    return (v - v.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def _knn_predict(Z: np.ndarray, t: np.ndarray, k: int) -> np.ndarray:
    """Leave-one-out mean of ``t`` over the ``k`` nearest rows of Z (N, d); d = 0: the LOO mean."""
    n = len(t)
    if Z.shape[1] == 0:
        return (t.sum() - t) / (n - 1)
    k = max(1, min(k, n - 1))
    # a query of milliseconds, made here: inside ``joblib.parallel_config(backend="dask")`` sklearn's
    # joblib call would go to the cluster even with n_jobs=1 (a round trip of about 35 ms per query)
    with parallel_config(backend="sequential"):
        idx = NearestNeighbors(n_neighbors=k + 1, n_jobs=1).fit(Z).kneighbors(Z, return_distance=False)
    others = np.array([row[row != i][:k] for i, row in enumerate(idx)])
    return t[others].mean(axis=1)


def knn_error(Z: np.ndarray, t: np.ndarray, k: int = 10) -> float:
    """Leave-one-out mean squared error of the k-NN regression of t on Z (N, d)."""
    return float(np.mean((_knn_predict(Z, t, k) - t) ** 2))


@dataclass(frozen=True)
class Relevance:
    """``keep``: indices of the relevant columns; ``dropped``: (index, k-NN error with, without,
    rank correlation) for each dropped column, in the order they were dropped."""

    keep: tuple[int, ...]
    dropped: tuple[tuple[int, float, float, float], ...]


def _poly_design(Z: np.ndarray, cols: list[int]) -> np.ndarray:
    """Columns 1, z_i, z_i·z_j (i <= j) of the quadratic polynomial in ``cols``."""
    feats = [np.ones(len(Z))] + [Z[:, i] for i in cols]
    feats += [Z[:, i] * Z[:, j] for a, i in enumerate(cols) for j in cols[a:]]
    return np.column_stack(feats)


def poly_pvalue(Z: np.ndarray, t: np.ndarray, cols: list[int], j: int) -> float:
    """p-value of the F-test "the quadratic terms of column j add nothing" (nested least squares)."""
    full = _poly_design(Z, cols)
    red = _poly_design(Z, [c for c in cols if c != j])
    n, pf = full.shape
    if n <= pf + 1:
        return 0.0  # too few rows to tell: keep the column
    rss = [float(np.sum((A @ np.linalg.lstsq(A, t, rcond=None)[0] - t) ** 2)) for A in (full, red)]
    tiny = 1e-20 * float(np.sum(t ** 2)) + 1e-300  # an exact fit (a monomial law in log space):
    if rss[0] <= tiny:  # round-off is no noise to test against; the column matters iff the fit breaks
        return 0.0 if rss[1] > tiny else 1.0
    F = (rss[1] - rss[0]) / (pf - red.shape[1]) / (rss[0] / (n - pf))
    return float(f_dist.sf(F, pf - red.shape[1], n - pf))


def _log_space(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(columns, target) with ``log|·|`` taken where the sign is fixed, standardised; None when y
    changes sign. Laws are mostly products: a variable whose effect a quadratic polynomial of
    the raw values misses (``h`` in Planck's ``hω³/(e^{hω/kT} − 1)``, nearly cancelling) shows
    in log space."""
    if not (np.all(y > 0) or np.all(y < 0)):
        return None
    with np.errstate(all="ignore"):
        L = np.column_stack([np.log(np.abs(c)) if (np.all(c > 0) or np.all(c < 0)) else c for c in X.T])
        ly = np.log(np.abs(y))
    if not (np.all(np.isfinite(L)) and np.all(np.isfinite(ly))):
        return None
    return _standardise(L), _standardise(ly.reshape(-1, 1))[:, 0]


def relevant_columns(X: np.ndarray, y: np.ndarray, k: int = 10, max_rows: int = 1000, seed: int = 0) -> Relevance:
    """Backward elimination of columns that carry nothing about y (see the module doc)."""
    n = len(y)
    rng = np.random.default_rng(seed)
    rows = rng.choice(n, size=max_rows, replace=False) if n > max_rows else np.arange(n)
    Z, t = _standardise(X[rows]), _standardise(y[rows].reshape(-1, 1))[:, 0]
    if not (np.all(np.isfinite(Z)) and np.all(np.isfinite(t))):
        return Relevance(tuple(range(X.shape[1])), ())
    with np.errstate(all="ignore"):
        rho = [abs(float(spearmanr(Z[:, j], t).statistic)) for j in range(Z.shape[1])]
    rho = [r if math.isfinite(r) else 0.0 for r in rho]
    quiet = 4.0 / math.sqrt(len(t))
    logs = _log_space(X[rows], y[rows])
    keep = list(range(X.shape[1]))
    err = knn_error(Z[:, keep], t, k)
    dropped = []

    def silent(j: int) -> bool:  # no rank correlation and no quadratic term, in raw or log space
        return rho[j] < quiet and poly_pvalue(Z, t, keep, j) > 1e-4 and \
            (logs is None or poly_pvalue(*logs, keep, j) > 1e-4)

    while keep:
        trials = [(knn_error(Z[:, [c for c in keep if c != j]], t, k), j) for j in keep if silent(j)]
        if not trials:
            break
        e, j = min(trials)
        if e >= err:
            break
        dropped.append((j, err, e, rho[j]))
        keep.remove(j)
        err = e
    if keep and all(rho[j] < quiet for j in keep):  # jointly no better than the mean: y is noise
        e = knn_error(Z[:, :0], t, k)
        if e <= err:
            dropped += [(j, err, e, rho[j]) for j in keep]
            keep = []
    return Relevance(tuple(keep), tuple(dropped))


def residual_structure(X: np.ndarray, r: np.ndarray, k: int = 10, max_rows: int = 1000, seed: int = 0) -> float:
    """Share of ``Σr²`` that a k-NN regression on X predicts (leave-one-out): about ``−1/k`` for
    white noise, near 1 for a residual that is a smooth function of x."""
    n = len(r)
    rng = np.random.default_rng(seed)
    rows = rng.choice(n, size=max_rows, replace=False) if n > max_rows else np.arange(n)
    m = float(np.max(np.abs(r[rows])))
    if not (m > 0 and math.isfinite(m)):
        return 0.0
    rr = r[rows] / m
    pred = _knn_predict(_standardise(X[rows]), rr, k)
    return float(1.0 - np.mean((rr - pred) ** 2) / np.mean(rr ** 2))
