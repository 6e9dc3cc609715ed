"""Sparse sums of atom products under SRBench noise (issue 11, item 8): terms by the residual and F-tests."""
import numpy as np
import pytest
import sympy
import torch

import nnlab.symbolic as S
from nnlab.symbolic.noisy_dictionary import fit_dictionary_noisy

torch.set_num_threads(1)
a, b, c = sympy.symbols("a b c")


def _data(f, ranges, gamma, n=400, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in ranges])
    y = f(*X.T)
    return X, y + gamma * np.sqrt(np.mean(y ** 2)) * np.random.default_rng(seed + 1).normal(size=n)


@pytest.mark.parametrize("law, f, ranges", [
    # terms that only help together (no separability split): the interference-like form
    (a + 2 * sympy.sqrt(a * b) * sympy.sin(c), lambda x, y, z: x + 2 * np.sqrt(x * y) * np.sin(z),
     [(1, 4), (1, 4), (0, 6)]),
    # a signed factor: y changes sign, no log-space candidate can see it
    (a * b ** 2 * sympy.cos(c) / 2, lambda x, y, z: x * y ** 2 * np.cos(z) / 2, [(1, 3), (1, 2), (0, 5)]),
])
def test_dictionary_candidate_recovers_the_law_under_one_percent_noise(law, f, ranges):
    X, y = _data(f, ranges, 1e-2)
    est = S.SymbolicRegressor(search=["dictionary"], variables=["a", "b", "c"], time_limit=20).fit(X, y)
    assert sympy.simplify(est.formula_ - law) == 0, est.formula_
    assert est.result_["status"] == "exact within noise"
    assert "within the noise" in est.result_["chosen"]["note"]


def test_pure_noise_and_exact_data_give_no_noisy_law():
    rng = np.random.default_rng(2)
    X = rng.uniform(1, 3, (300, 3))
    assert fit_dictionary_noisy(X, 1.0 + 0.01 * rng.normal(size=300), [a, b, c]) is None
    assert fit_dictionary_noisy(X, rng.normal(size=300), [a, b, c]) is None
    assert fit_dictionary_noisy(X, X[:, 0] * np.cos(X[:, 2]), [a, b, c]) is None  # exact: not this path's case


def test_an_approximating_sum_is_not_snapped_into_a_law():
    """``1 + x/(1 − x/3)`` (x = a·b) is no sparse sum; a few terms come near it, but with x up to 2.4
    the lack-of-fit test against the flexible reference and the residual test see the misfit.
    (On x ∈ [0, 1] ``1 + 3x/π + x²/2`` is within 1% noise of it: no test on these data can tell.)"""
    X, y = _data(lambda p, q, r: 1 + p * q / (1 - p * q / 3), [(0, 1.55), (0, 1.55), (1, 2)], 1e-2, seed=3)
    est = S.SymbolicRegressor(search=["dictionary"], variables=["a", "b", "c"], time_limit=20).fit(X, y)
    f = est.formula_
    assert not (f.free_symbols and not f.atoms(sympy.Float) and est.result_["chosen"]["candidate"] == "dictionary"
                and est.complete_), f
