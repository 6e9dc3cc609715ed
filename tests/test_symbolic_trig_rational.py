"""Sparse rationals in trigonometric features (nnlab.symbolic.trig_rational), checked with sympy."""
import numpy as np
import pytest
import sympy

from nnlab.symbolic.trig_rational import fit_trig_rational, target_transforms

w, t, a = sympy.symbols("w t a", positive=True)


def _data(expr, syms, ranges, n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(lo, hi, n) for lo, hi in ranges])
    return X, np.asarray(sympy.lambdify(syms, expr, "numpy")(*X.T), dtype=np.float64)


def _same(found, truth, syms, X):
    """Equal on fresh points; with its float coefficients rounded to 6 digits, equal to 1e-12 (the
    law itself, not an approximation of it)."""
    f = sympy.lambdify(syms, found, "numpy")(*X.T)
    g = sympy.lambdify(syms, truth, "numpy")(*X.T)
    assert np.allclose(f, g, rtol=1e-6, atol=1e-9)
    rounded = found.xreplace({c: sympy.nsimplify(round(float(c), 6)) for c in found.atoms(sympy.Float)})
    r = sympy.lambdify(syms, rounded, "numpy")(*X.T)
    assert np.allclose(r, g, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("truth, ranges", [
    (sympy.acos((sympy.cos(t) - w) / (1 - w * sympy.cos(t))), [(1 / 6, 0.5), (1, 3)]),  # aberration
    ((1 - w ** 2) / (1 + w * sympy.cos(t)), [(0.1, 0.9), (0, 6)]),  # a conic in polar form
    (sympy.sqrt(1 - w ** 2) / (1 + w * sympy.cos(t)), [(0.1, 0.6), (0, 3)]),  # relativistic Doppler factor
    (w * sympy.sin(t) / (1 + w ** 2), [(0.5, 2), (0.2, 1.4)]),
])
def test_laws_with_angles_are_found_exactly(truth, ranges):
    X, y = _data(truth, [w, t], ranges)
    out = fit_trig_rational(X, y, [w, t], tol=3e-7)
    assert out, "no fit found"
    Xf, _ = _data(truth, [w, t], ranges, n=50, seed=1)
    _same(out[0], truth, [w, t], Xf)
    assert out[0].has(sympy.cos) or out[0].has(sympy.sin)


def test_three_variables():
    truth = a * (1 - w ** 2) / (1 + w * sympy.cos(t))
    X, y = _data(truth, [a, w, t], [(1, 3), (0.1, 0.8), (0, 6)])
    out = fit_trig_rational(X, y, [a, w, t], tol=3e-7)
    assert out
    Xf, _ = _data(truth, [a, w, t], [(1, 3), (0.1, 0.8), (0, 6)], n=50, seed=1)
    _same(out[0], truth, [a, w, t], Xf)


@pytest.mark.parametrize("truth", [sympy.exp(w * t), sympy.exp(-w) * sympy.cos(t) ** 2 + sympy.log(t + 2 * w)])
def test_other_laws_are_not_mimicked(truth):
    """A dense P/Q of degree 4 can imitate a smooth function to 1e-7: the term cap refuses it."""
    X, y = _data(truth, [w, t], [(0.2, 1.0), (1, 3)])
    assert fit_trig_rational(X, y, [w, t], tol=3e-7) == []


def test_target_transforms_only_where_invertible():
    names = lambda y: [n for n, *_ in target_transforms(y)]  # noqa: E731
    assert names(np.array([0.5, 1.0, 3.0])) == ["y", "y^2", "cos y"]
    assert names(np.array([-1.2, 0.3, 1.0])) == ["y", "sin y"]
    assert names(np.array([-5.0, 2.0])) == ["y"]
    assert names(np.array([0.2, 1.5])) == ["y", "y^2", "cos y", "sin y"]


def test_too_many_variables_or_bad_values_give_nothing():
    X = np.random.default_rng(0).uniform(1, 2, (50, 4))
    assert fit_trig_rational(X, X.sum(axis=1), list(sympy.symbols("a b c d"))) == []
    X2 = X[:, :2].copy()
    X2[0, 0] = np.nan
    assert fit_trig_rational(X2, X2[:, 1], [w, t]) == []


@pytest.mark.parametrize("truth, names, ranges", [
    ("sin(x/2)**2/(x/2)**2", "x", [(0.5, 6)]),  # sinc²: 2(1 − cos x)/x², x beside cos x
    ("sin(n*theta/2)**2/sin(theta/2)**2", "n theta", [(1, 4), (1, 3)]),  # n slits: (1 − cos nθ)/(1 − cos θ)
    ("t*sin(u*t/2)**2/(u*t/2)**2", "t u", [(1, 3), (-2, 2)]),  # a sinc² of a product
])
def test_joint_features_find_sinc_and_slit_laws(truth, names, ranges):
    syms = sympy.symbols(names, seq=True)
    t = sympy.sympify(truth, locals={s.name: s for s in syms})
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(a, b, 300) for a, b in ranges])
    y = np.asarray(sympy.lambdify(syms, t, "numpy")(*X.T), dtype=float)
    fits = fit_trig_rational(X, y, list(syms), tol=1e-7)
    assert fits, truth
    f = sympy.lambdify(syms, fits[0], "numpy")
    Xf = np.column_stack([rng.uniform(a, b, 200) for a, b in ranges])
    want = np.asarray(sympy.lambdify(syms, t, "numpy")(*Xf.T), dtype=float)
    assert np.allclose(f(*Xf.T), want, rtol=1e-8), fits[0]
