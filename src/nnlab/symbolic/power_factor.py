"""Power factors: ``y = Π_{k∈P} x_k^{p_k} · g(x_R)`` read from the rows, when the surrogate is too rough.

With many variables and a few hundred rows the decomposition's surrogate can be 5–20 % off (five
variables that only scale the law, two that shape it: ``α²h²/(m²c²)·F(ω₀/ω, β)``), and no
structure test can be trusted through it. Such a law is still simple in log space:

    ``log|y| = Σ_{k∈P} p_k·log|x_k| + h(x_R)``,

a partially linear model: a small MLP ``h`` of the few shaping variables ``R`` plus one free
coefficient per scaling variable, fitted jointly (L-BFGS, like the surrogate) on four fifths of the
rows, each row weighted by ``min(1, |y|/median|y|)`` (near a zero of ``y``, ``log|y| → −∞`` would pull
the fit; its error is judged in ``y``'s units on the rest). If the hypothesis holds, the fit is as
good as a surrogate of ``|R|`` variables, far better than one of all of them, and the coefficients
are the exponents; the rows divided by the snapped power law are then the exact values of ``g`` on
``R`` alone. ``R`` starts from the variables whose plain power-law slope is no simple exponent
(:func:`far_slopes`), takes in those still far after each fit, and otherwise comes from the rough
surrogate: ``∂log|f̂|/∂log|x_k|`` varies over the data unless ``x_k`` is a power factor
(:func:`shaping_order`). :func:`find_power_factors` runs that search.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from .exchange import value_name
from .tanh_mlp import fit_tanh_mlp

__all__ = ["shaping_order", "far_slopes", "fit_power_factors", "snap_exponents", "find_power_factors",
           "power_factor_tasks"]


def shaping_order(f: Callable[[np.ndarray], np.ndarray], X: np.ndarray, cols: list[int], rng: np.random.Generator,
                  m: int = 256) -> list[int]:
    """``cols`` (fixed-sign columns) ordered by how much ``∂log|f|/∂log|x_k|`` varies over rows of
    the data (standard deviation, by central differences), most first: a power factor's is constant."""
    P = X[rng.integers(0, len(X), m)]
    spread = []
    for k in cols:
        up, down = P.copy(), P.copy()
        up[:, k] *= np.exp(1e-3)
        down[:, k] *= np.exp(-1e-3)
        with np.errstate(all="ignore"):
            g = (np.log(np.abs(f(up))) - np.log(np.abs(f(down)))) / 2e-3
        g = g[np.isfinite(g)]
        spread.append(float(np.std(g)) if len(g) > 8 else np.inf)
    return [cols[i] for i in np.argsort(spread)[::-1]]


class _PartlyLinear(nn.Module):
    def __init__(self, n_rest: int, n_lin: int, hidden: int, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.n_rest = n_rest
        self.net = nn.Sequential(nn.Linear(n_rest, hidden), nn.Tanh(), nn.Linear(hidden, hidden), nn.Tanh(),
                                 nn.Linear(hidden, 1)).double()
        self.lin = nn.Linear(n_lin, 1, bias=False).double()

    def forward(self, U: torch.Tensor) -> torch.Tensor:
        """``U``: the rest's inputs, the logs of the power factors, then each row's weight's root."""
        out = self.net(U[:, :self.n_rest]) + self.lin(U[:, self.n_rest:-1])
        return U[:, -1:] * out


def fit_power_factors(X: np.ndarray, y: np.ndarray, rest: list[int], seed: int = 0, steps: int = 1500,
                      hidden: int = 32, holdout: float = 0.2, stop: Callable[[], bool] | None = None
                      ) -> tuple[np.ndarray, float]:
    """Fit ``log|y| = Σ_{k∉R} p_k·log|x_k| + h(x_R)`` (every column outside ``rest`` of fixed sign,
    ``y`` of one sign). Returns (the exponents ``p`` of the columns outside ``rest``, in order; the
    held-out relative RMS error of ``y``). ``stop``: see :func:`~nnlab.symbolic.train.train_lbfgs`."""
    n = X.shape[1]
    lin = [k for k in range(n) if k not in rest]
    with np.errstate(all="ignore"):
        V = np.where((X.min(axis=0) > 0) | (X.max(axis=0) < 0), np.log(np.abs(X)), X)
    lo, hi = V.min(axis=0), V.max(axis=0)
    hi = np.where(hi > lo, hi, lo + 1.0)
    Ur = 2 * (V[:, rest] - lo[rest]) / (hi[rest] - lo[rest]) - 1
    L = np.log(np.abs(X[:, lin]))
    Lc = L.mean(axis=0)
    target = np.log(np.abs(y))
    perm = np.random.default_rng(seed).permutation(len(y))
    n_val = max(int(holdout * len(y)), 4)
    va, tr = perm[:n_val], perm[n_val:]
    mean, std = float(target[tr].mean()), float(target[tr].std()) or 1.0
    # a row near a zero of y (sin²(nθ/2)) has log|y| → −∞: weighted by |y| relative to the median, it
    # cannot pull the fit, whose error is judged in y's units anyway
    root_w = np.minimum(1.0, np.abs(y) / np.median(np.abs(y)))
    T = (root_w * (target - mean) / std)[:, None]
    model = _PartlyLinear(len(rest), len(lin), hidden, seed)
    fit_tanh_mlp(model.net, Ur[tr], T[tr], steps, linear=model.lin, L=(L - Lc)[tr], w=root_w[tr], stop=stop)
    with torch.no_grad():
        pred = model(torch.from_numpy(np.column_stack([Ur, L - Lc, np.ones(len(y))]))).numpy()[:, 0] * std + mean
    sign = np.sign(y[0])
    rms = float(np.sqrt(np.mean(y[va] ** 2))) or 1.0
    err = float(np.sqrt(np.mean((sign * np.exp(np.clip(pred[va], -745, 709)) - y[va]) ** 2))) / rms
    p = model.lin.weight.detach().numpy()[0] * std
    return p, err if np.isfinite(err) else float("inf")


def snap_exponents(p: np.ndarray, max_den: int = 2, tol: float = 0.02) -> list[Fraction] | None:
    """Each exponent as a rational with denominator ≤ ``max_den`` within ``tol``, none zero (a
    variable that does not scale the law was not a power factor), else None."""
    out = []
    for v in p:
        fr = Fraction(float(v)).limit_denominator(max_den)
        if fr == 0 or abs(float(fr) - v) > tol:
            return None
        out.append(fr)
    return out


def far_slopes(cols: list[int], slopes: np.ndarray, zero: float = 0.25, off: float = 0.1) -> list[int]:
    """The columns whose fitted log-slope is no power a law would have: near zero (below ``zero``)
    or more than ``off`` from a multiple of 1/2. Under a wrong split these are shaping variables."""
    return [k for k, v in zip(cols, slopes) if abs(v) < zero or abs(v - round(2 * v) / 2) > off]


def find_power_factors(X: np.ndarray, y: np.ndarray, cols: list[int], order: list[int], surrogate_error: float,
                       seed: int = 0, late: Callable[[], bool] = lambda: False, exchange: Any = None
                       ) -> tuple[list[int], list[Fraction], float] | None:
    """The split ``y = Π_{k∉R} x_k^{p_k}·g(x_R)`` (``cols``: the fixed-sign columns; ``order``: them by
    :func:`shaping_order`): (``R``, the exponents of the other columns, the partly linear fit's error),
    or None. ``R`` (at most 3 columns, every column of both signs among them, at least one power
    factor left) starts from the columns whose plain power-law slope is far from a simple exponent
    (:func:`far_slopes`) and takes in the slopes still far after each fit; when that finds nothing,
    ``R`` is the 1, 2, 3 first columns of ``order``. It is proposed when the fit is 4 times closer
    than the surrogate (and within 1 %) with exponents that snap, or at most twice as far with
    exponents within 0.01 of simple ones (a shaping part too rough for a few hundred rows, an
    interference pattern over R, still names the power law; the caller then checks that the rows
    divided by it are a function of ``R`` alone).

    ``exchange`` (parallel searches, :mod:`~nnlab.symbolic.exchange`): the fits are shared, and the
    fallback's hypotheses are fitted ahead of need by a job that would otherwise wait; those never
    asked for are dropped at the end. The same result either way."""
    m = X.shape[1]
    rest, fallback = _starts(X, y, cols, order)
    tried: list[list[int]] = []
    found = None
    try:
        while found is None and not late():
            if not _usable(rest, m) or rest in tried:
                rest = next((r for r in fallback if r not in tried and _usable(r, m)), None)
                if rest is None:
                    return None
            tried.append(rest)
            p, err = _fit(X, y, rest, seed, exchange, [r for r in fallback if r not in tried and _usable(r, m)])
            found = snap_exponents(p) if err <= min(1e-2, 0.25 * surrogate_error) else \
                snap_exponents(p, tol=0.01) if err < 2 * surrogate_error else None
            if found is None:
                far = far_slopes([k for k in range(m) if k not in rest], p)
                rest = sorted(rest + far) if far else []
    finally:
        if exchange is not None:
            exchange.drop(_name(X, y, r, seed) for r in fallback if r not in tried)
    return None if found is None else (rest, found, err)


def _usable(rest: list[int], m: int) -> bool:
    return 0 < len(rest) <= 3 and len(rest) < m


def _starts(X: np.ndarray, y: np.ndarray, cols: list[int], order: list[int]) -> tuple[list[int], list[list[int]]]:
    """:func:`find_power_factors`'s first ``R`` (the far slopes' columns, with every column of both
    signs) and its fallback hypotheses (the 1, 2, 3 first columns of ``order``)."""
    others = [k for k in range(X.shape[1]) if k not in cols]  # of both signs: never a power factor
    # zeros of y make the plain slopes noisy (a sinc²): then only the fallback finds R
    A = np.column_stack([np.log(np.abs(X[:, cols])), np.ones(len(y))])
    slopes = np.linalg.lstsq(A, np.log(np.abs(y)), rcond=None)[0][:-1]
    return sorted(others + far_slopes(cols, slopes)), [sorted(others + order[:j]) for j in range(0 if others else 1, 4)]


def power_factor_tasks(X: np.ndarray, y: np.ndarray, cols: list[int], order: list[int], seed: int = 0
                       ) -> list[tuple[str, Callable[[Callable[[], bool]], Any]]]:
    """The fits :func:`find_power_factors` asks for first, in order, as ``(name, compute(stop))`` for
    an exchange's ``meanwhile`` (:meth:`~nnlab.symbolic.exchange.Exchange.take`): its first ``R`` when
    usable, then its fallback hypotheses. A job waiting for the decomposition's last surrogate makes
    them ahead of need; a fit made for nothing is only time lost, never a different result."""
    m = X.shape[1]
    first, fallback = _starts(X, y, cols, order)
    rests = [r for r in [first] + fallback if _usable(r, m)]
    rests = [r for i, r in enumerate(rests) if r not in rests[:i]]
    return [(_name(X, y, r, seed), lambda stop, r=r: fit_power_factors(X, y, r, seed=seed, stop=stop)) for r in rests]


def _name(X: np.ndarray, y: np.ndarray, rest: list[int], seed: int) -> str:
    return value_name("power-factors", X, y, rest=rest, seed=seed)


def _fit(X: np.ndarray, y: np.ndarray, rest: list[int], seed: int, exchange: Any, ahead: list[list[int]]
         ) -> tuple[np.ndarray, float]:
    """:func:`fit_power_factors`, shared through ``exchange`` (when given) with ``ahead`` made meanwhile."""
    if exchange is None:
        return fit_power_factors(X, y, rest, seed=seed)
    later = [(_name(X, y, r, seed), lambda stop, r=r: fit_power_factors(X, y, r, seed=seed, stop=stop)) for r in ahead]
    return exchange.take(_name(X, y, rest, seed), lambda: fit_power_factors(X, y, rest, seed=seed), meanwhile=later)
