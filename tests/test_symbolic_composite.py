"""Composite candidate y = M1(x)·g(M2(x)) (nnlab.symbolic.composite) on synthetic laws."""
import numpy as np
import pytest
import sympy
import torch

import nnlab.symbolic as S
from nnlab.symbolic.composite import directions, find_direction

torch.set_num_threads(1)


def _exact(est, truth, X):
    syms = [sympy.Symbol(v) for v in est.variables_]
    want = sympy.lambdify(syms, truth, "numpy")(*X.T)
    rel = np.sqrt(np.mean((est.predict(X) - want) ** 2) / np.mean(want ** 2))
    return rel < 1e-9


def test_directions_are_unique_up_to_sign_and_scale():
    d = directions(3, max_power=2, max_support=2)
    keys = {tuple(v) for v in d}
    assert len(keys) == len(d)
    assert (1.0, -1.0, 0.0) in keys and (-1.0, 1.0, 0.0) not in keys and (2.0, -2.0, 0.0) not in keys


def test_find_direction_recovers_the_inner_monomial():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (200, 3))
    ly = np.log(X[:, 0] ** 2) + np.log1p((X[:, 1] * X[:, 2] / 9) ** 2)  # M2 = q·r: direction (0, 1, 1)
    r, beta, alpha = find_direction(np.log(X), ly)[0]
    assert r < 1e-6 and tuple(beta) == (0.0, 1.0, 1.0)
    a = alpha - alpha[1] / beta[1] * beta  # representative without q
    np.testing.assert_allclose(a, [2.0, 0.0, -0.0], atol=1e-4)


@pytest.mark.parametrize("truth, names, ranges", [
    ("p/(1 - (q/r)**2)", "p q r", [(1, 3), (0.5, 1.5), (2, 4)]),
    ("x*exp(-(y/z)**2)", "x y z", [(0.5, 2), (0.5, 2), (1, 3)]),
    ("w*atan(3*u/v)", "u v w", [(0.2, 2), (1, 4), (1, 2)]),
    ("p*(1 + cos(q/r))", "p q r", [(1, 2), (1, 6), (0.5, 1.5)]),  # g has zeros: raw-space search
])
def test_composite_laws_recovered_exactly(truth, names, ranges):
    rng = np.random.default_rng(1)
    names = names.split()
    X = np.column_stack([rng.uniform(lo, hi, 300) for lo, hi in ranges])
    syms = sympy.symbols(names)
    f = sympy.parse_expr(truth, local_dict=dict(zip(names, syms)))
    y = sympy.lambdify(syms, f, "numpy")(*X.T)
    est = S.SymbolicRegressor(search=["composite"], variables=names, time_limit=20).fit(X, y)
    assert est.complete_ and est.result_["chosen"]["candidate"] == "composite"
    Xn = np.column_stack([rng.uniform(lo, hi, 100) for lo, hi in ranges])
    assert _exact(est, f, Xn), est.formula_
    assert est.model_.width == [1, 1, 1]  # the g chain: edge φ(t) then edge f
    assert not S.spline_edges(est.model_)


def test_composite_on_signed_data_fails_softly():
    from nnlab.symbolic.search import Candidate, run_candidate

    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (60, 2))
    y = X[:, 0] + 2
    res = run_candidate(Candidate("composite", log_x=True, log_y=True), X, y, X, y, list(sympy.symbols("a b")),
                        S.LIBRARY, grid=3, k=3, steps=4, lamb=0.0, r2_threshold=0.99, snap_tol=1e-6, deadline=None)
    assert res.expr is None and "fixed sign" in res.note


def _noisy(truth, names, ranges, gamma, seed=3, n=400):
    rng = np.random.default_rng(seed)
    names = names.split()
    X = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in ranges])
    syms = sympy.symbols(names)
    f = sympy.parse_expr(truth, local_dict=dict(zip(names, syms)))
    y = sympy.lambdify(syms, f, "numpy")(*X.T) * np.ones(n)
    return X, y + gamma * np.sqrt(np.mean(y ** 2)) * rng.standard_normal(n), f, names


def test_a_law_with_zeros_under_one_percent_noise():
    """``g ≥ 0`` with zeros (``1 − cos``): 1% noise makes y dip below 0 near the zeros, so y looks
    signed; the raw-space search still runs and the phase of ``cos`` is kept in [−π, π] so it snaps."""
    X, y, f, names = _noisy("q*(1 - cos(3*p*r))", "p q r", [(0.5, 2), (1, 2), (0.5, 2)], 1e-2)
    assert y.min() < 0 < y.max()
    est = S.SymbolicRegressor(search=["composite"], variables=names, time_limit=20).fit(X, y)
    assert sympy.simplify(est.formula_ - f) == 0, est.formula_
    assert est.result_["status"] == "exact within noise"


def test_signed_pure_noise_is_no_composite_law():
    rng = np.random.default_rng(4)
    X = rng.uniform(0.5, 2, (300, 3))
    y = rng.standard_normal(300)
    est = S.SymbolicRegressor(search=["composite"], time_limit=20).fit(X, y)
    assert not est.complete_ and est.result_["status"] in ("no law found", "approximate")
