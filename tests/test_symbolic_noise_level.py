"""Noise level of the data and the oracle's own error under noise (nnlab.symbolic.noise)."""
import math

import numpy as np
import pytest
import sympy
import torch

from nnlab.symbolic.noise import ORACLE_SHARE, noise_level, oracle_sigma

torch.set_num_threads(1)


def _box(ranges, n, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(a, b, n) for a, b in ranges])


LAWS = [
    (lambda X: X[:, 0] * X[:, 1] ** 2 / 2, [(1, 5), (1, 5)]),
    (lambda X: X[:, 0] / np.sqrt(1 - (X[:, 1] / X[:, 2]) ** 2), [(1, 5), (1, 2), (3, 10)]),
    (lambda X: (X[:, 0] + X[:, 1]) / (1 + X[:, 0] * X[:, 1] / X[:, 2] ** 2), [(1, 5)] * 3),
]


@pytest.mark.parametrize("law, ranges", LAWS)
@pytest.mark.parametrize("gamma", [1e-3, 1e-2])
def test_noise_level_estimates_the_noise_and_says_none_for_exact_data(law, ranges, gamma):
    X = _box(ranges, 400)
    y0 = law(X)
    assert noise_level(X, y0) is None  # exact rows: the polynomial keeps improving with the degree
    sd = gamma * float(np.sqrt(np.mean(y0 ** 2)))
    est = noise_level(X, y0 + np.random.default_rng(2).normal(0, sd, len(y0)))
    if est is None:  # a law the polynomial reference cannot follow to this noise: no claim, no harm
        assert gamma == 1e-3
        return
    assert abs(est / sd - 1) < 0.15, (est, sd)
    assert est.degree >= 2 and est.terms <= len(y0) // 4


def test_noise_level_refuses_a_misfit_that_is_not_noise():
    """A structured residual (an oscillation no low-degree polynomial follows) is no noise."""
    X = _box([(0, 6)], 400)
    assert noise_level(X, np.sin(3 * X[:, 0])) is None


def test_oracle_sigma_separates_noise_from_the_oracles_error():
    assert oracle_sigma(0.2, None) == 0.2  # exact data: the held-out error is the oracle's
    assert math.isclose(oracle_sigma(0.5, 0.3), 0.4)  # √(0.5² − 0.3²)
    assert math.isclose(oracle_sigma(0.5, 0.5), ORACLE_SHARE * 0.5)  # never below the share
    assert oracle_sigma(0.5, 0.8) == 0.5  # "noise" above the held-out error is misfit: unchanged
    assert oracle_sigma(0.0, 0.1) == 0.0


def test_decompose_judges_its_tests_by_the_oracle_error_under_noise():
    """With 1% noise the tree records the noise estimate and a tolerance below the held-out error."""
    import time

    from nnlab.symbolic.decompose import decompose

    syms = list(sympy.symbols("a b"))
    X = _box([(1, 5), (1, 5)], 300)
    y0 = X[:, 0] * X[:, 1] ** 2
    sd = 0.01 * float(np.sqrt(np.mean(y0 ** 2)))
    y = y0 + np.random.default_rng(2).normal(0, sd, len(y0))
    d = decompose(X, y, syms, seed=0, refit=False, deadline=time.monotonic() + 5)
    held_out = d.surrogate_error * float(np.sqrt(np.mean(y ** 2)))
    assert abs(d.tree["noise"] / sd - 1) < 0.15
    assert ORACLE_SHARE * held_out <= d.tree["sigma"] < held_out
