"""Sparse P/Q under SRBench noise (issue 11, item 8): output-error fits, degree and terms by F-tests."""
import numpy as np
import pytest
import sympy

from nnlab.symbolic.noisy_rational import fit_rational_noisy
from nnlab.symbolic.finish import finish

a, b, c = sympy.symbols("a b c")


def _data(f, ranges, gamma, n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in ranges])
    y = f(*X.T)
    return X, y + gamma * np.sqrt(np.mean(y ** 2)) * np.random.default_rng(seed + 1).normal(size=n)


@pytest.mark.parametrize("law, f, ranges", [
    (a * b / (b - c), lambda x, y, z: x * y / (y - z), [(1, 3), (4, 8), (0.5, 2)]),
    (a / (b - 1), lambda x, y: x / (y - 1), [(1, 4), (2.5, 5)]),
])
def test_noisy_rational_recovers_the_law_after_snapping(law, f, ranges):
    X, y = _data(f, ranges, 1e-2)
    syms = [a, b, c][:X.shape[1]]
    expr = fit_rational_noisy(X, y, syms)
    assert expr is not None
    snapped, err = finish(expr, syms, X, y, snap_tol=1e-6)
    assert sympy.simplify(snapped - law) == 0, snapped
    assert err < 0.02


def test_exact_and_polynomial_data_are_left_to_the_other_paths():
    X, y = _data(lambda x, y: x * y / (y - 0.5), [(1, 3), (1, 3)], 0.0)
    assert fit_rational_noisy(X, y, [a, b]) is None  # exact data: the noise-free path's case
    X, y = _data(lambda x, y: x * y, [(1, 3), (1, 3)], 1e-2)
    assert fit_rational_noisy(X, y, [a, b]) is None  # a monomial, not P/Q with a common factor


def test_noise_alone_gives_no_rational():
    rng = np.random.default_rng(3)
    X = rng.uniform(1, 2, (300, 2))
    assert fit_rational_noisy(X, 1.0 + 0.01 * rng.normal(size=300), [a, b]) is None


@pytest.mark.parametrize("gamma", [0.0, 1e-3, 1e-2])
def test_snap_fixes_the_free_common_scale_of_a_ratio(gamma):
    # k·a·b/(k·b − k·c) has a flat direction (k): each constant has an infinite standard error;
    # snap offers ±1 to such a constant and refits the rest, whatever the noise
    X, y = _data(lambda x, y, z: x * y / (y - z), [(1, 5), (3, 10), (1, 2)], gamma, n=375)
    expr = sympy.Float(609.345) * a * b / (sympy.Float(609.384) * b - sympy.Float(609.36) * c)
    snapped, _ = finish(expr, [a, b, c], X, y, snap_tol=1e-6)
    assert sympy.simplify(snapped - a * b / (b - c)) == 0, snapped
