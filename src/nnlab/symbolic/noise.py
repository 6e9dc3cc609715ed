"""How noisy are the data, and how far off is a surrogate fitted to them (issue 11, item 8)?

The decomposition (:mod:`~nnlab.symbolic.decompose`) judges every structure test against the
error ``σ`` of its surrogate ``f̂``, measured on held-out rows. With exact data that error *is* the
oracle's error. Under noise it is not: the held-out residual is ``y − f̂ = ε + (f − f̂)``, so

    σ_val² ≈ σ_n² + σ_f²

with ``σ_n`` the noise and ``σ_f`` the oracle's error against the law. A smooth surrogate averages
many noisy rows, so ``σ_f`` is a fraction of ``σ_val``: measured on nine Feynman laws at 1 % noise
(375 rows, the decomposition's MLP) ``σ_f`` was 0.3–0.65 ``σ_val`` at the points the tests probe.
Judged against ``σ_val`` the tests then accept structures the law does not have (``m₀/√(1 − v²/c²)``
became "additive in m₀, v, c", ``asin(n·sin θ)`` "a product"): the tolerance was the noise, not
the oracle's error (AI Feynman 2.0 and PySR likewise separate the noise floor from model error).

:func:`noise_level` estimates ``σ_n`` from the data alone: the flexible polynomial reference of
:func:`~nnlab.symbolic.noisy_rational.noise_reference` (full polynomial of the highest degree
with at most N/4 terms) whose error has stopped improving with the degree, whose residual a
k-NN regression cannot predict (it is noise, not misfit), and whose error is corrected for the
constants it fitted (``σ̂² = RSS/(N − p)``). Exact data keep improving with the degree (or leave
a structured residual): no estimate, and nothing changes.

:func:`oracle_sigma` then gives the tests' tolerance: ``√(σ_val² − σ̂_n²)``, but not below
:data:`ORACLE_SHARE` ``· σ_val`` (the difference of two estimates is itself noisy) and not above
``σ_val``. Leaves fitted to the data's own rows keep the noise ``σ_val`` as their tolerance.
"""
from __future__ import annotations

import math

import numpy as np

from .dependence import NOISE_STRUCTURE, residual_structure

__all__ = ["ORACLE_SHARE", "NoiseEstimate", "noise_level", "oracle_sigma"]

#: smallest share of the held-out error attributed to the oracle itself under noise
ORACLE_SHARE = 0.4


class NoiseEstimate(float):
    """The estimated noise standard deviation (absolute, in y's units) as a float; ``degree`` and
    ``terms`` describe the polynomial reference it came from."""

    degree: int
    terms: int

    def __new__(cls, value: float, degree: int, terms: int) -> "NoiseEstimate":
        obj = super().__new__(cls, value)
        obj.degree, obj.terms = degree, terms
        return obj


def noise_level(X: np.ndarray, y: np.ndarray, max_degree: int = 6) -> NoiseEstimate | None:
    """The noise standard deviation of (X (N, n), y (N,)), absolute; None when the data do not look
    noisy (a polynomial of growing degree keeps improving, or its residual still depends on x)."""
    from .noisy_rational import noise_reference
    from .rational import _design, monomials, scaled_rows

    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be (N, n) and y (N,); got {X.shape} and {y.shape}")
    rows = scaled_rows(X, y, min_rows=20)
    if rows is None:
        return None
    Xs, _, t, ys = rows
    ref = noise_reference(Xs, t, alpha=1e-3, max_degree=max_degree)
    if ref is None:
        return None
    degree = next(d for d in range(max_degree, 1, -1) if len(monomials(Xs.shape[1], d)) == ref.p)
    M = _design(Xs, monomials(Xs.shape[1], degree))
    coef, *_ = np.linalg.lstsq(M, t, rcond=None)
    if residual_structure(Xs, t - M @ coef) > NOISE_STRUCTURE:
        return None  # a misfit that stopped improving, not noise
    sigma = ref.sigma * ys
    return NoiseEstimate(sigma, degree, ref.p) if math.isfinite(sigma) and sigma > 0 else None


def oracle_sigma(sigma_val: float, noise: float | None, share: float = ORACLE_SHARE) -> float:
    """The error of a surrogate against the law: ``σ_val`` (its held-out error) for exact data
    (``noise`` None); under noise ``√(σ_val² − noise²)`` kept within ``[share·σ_val, σ_val]``.
    A noise estimate above ``1.1·σ_val`` is no noise (the surrogate fits the rows better than the
    polynomial reference: its residual was misfit, e.g. of a fast oscillation): ``σ_val``."""
    if noise is None or not (math.isfinite(sigma_val) and sigma_val > 0) or float(noise) > 1.1 * sigma_val:
        return sigma_val
    rest = sigma_val ** 2 - float(noise) ** 2
    return float(min(max(math.sqrt(max(rest, 0.0)), share * sigma_val), sigma_val))
