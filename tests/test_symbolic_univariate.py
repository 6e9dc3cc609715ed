"""One-variable laws g(t): rational functions of t, √ of them, rational functions of e^{a·t}
(symbolic/univariate.py), and the composite candidate M₁(x)·g(M₂(x)) that uses them."""
import numpy as np
import pytest
import sympy

from nnlab.symbolic.univariate import exp_rate, fit_univariate

T = sympy.Symbol("T")

# (name, law in numpy, the same law in sympy, t range): none of these is a library function of an
# affine map of t, each is a small rational function of t, of √ or of e^{a·t}
CASES = [
    ("lorentzian", lambda t: 1 / (1 + (t - 2) ** 2), lambda t: 1 / (1 + (t - 2) ** 2), (0.0, 4.0), "P(t)/Q(t)"),
    ("resonance^3", lambda t: t ** 3 / (t ** 2 - 4), lambda t: t ** 3 / (t ** 2 - 4), (0.1, 1.5), "P(t)/Q(t)"),
    ("sqrt ratio", lambda t: np.sqrt((2 - t) / (2 + t)), lambda t: sympy.sqrt((2 - t) / (2 + t)), (-1.5, 1.5),
     "sqrt(P(t)/Q(t))"),
    ("negative sqrt", lambda t: -np.sqrt(t / (1 + t ** 2)), lambda t: -sympy.sqrt(t / (1 + t ** 2)), (0.2, 3.0),
     "sqrt(P(t)/Q(t))"),
    ("logistic", lambda t: 3 / (1 + np.exp(-1.5 * t)), lambda t: 3 / (1 + sympy.exp(-1.5 * t)), (-3.0, 3.0),
     "exp"),
    ("planck-like", lambda t: 1 / (np.exp(0.7 * t) - 1), lambda t: 1 / (sympy.exp(0.7 * t) - 1), (0.3, 8.0), "exp"),
    ("sech", lambda t: 2 / (np.exp(0.5 * t) + np.exp(-0.5 * t)), lambda t: 1 / sympy.cosh(0.5 * t), (-6.0, 6.0),
     "exp"),
]


@pytest.mark.parametrize("name, f, fs, rng_, form", CASES, ids=[c[0] for c in CASES])
def test_fit_univariate_recovers_the_law(name, f, fs, rng_, form):
    rng = np.random.default_rng(3)
    t = rng.uniform(*rng_, 300)
    fits = fit_univariate(t, f(t), tol=1e-7)
    assert fits, f"{name}: nothing fitted"
    best = fits[0]
    assert form in best.label
    # the oracle: sympy's own law on fresh points, inside and slightly beyond the sampled range
    tf = np.linspace(rng_[0] + 0.01, rng_[1] - 0.01, 97)
    got = sympy.lambdify(T, best.build(T), "numpy")(tf)
    want = sympy.lambdify(T, fs(T), "numpy")(tf)
    assert np.allclose(got, want, rtol=1e-6, atol=1e-9)


def test_exp_rate_prefers_the_smallest_degree():
    t = np.linspace(0.5, 6.0, 200)
    a, r, degrees = exp_rate(t, 1 / (np.exp(1.3 * t) - 1), tol=1e-8)
    # 1/(w² − 1) at rate 0.65 fits as well; the smaller degree pair names the law
    assert abs(a - 1.3) < 1e-6 and r < 1e-8 and degrees == (0, 1)


def test_smooth_non_rational_curves_are_not_called_exact():
    t = np.linspace(-2.0, 2.0, 200)
    assert fit_univariate(t, np.exp(-t ** 2 / 2), tol=1e-9) == []
    assert fit_univariate(t, np.sin(3 * t) + 0.1 * t ** 5, tol=1e-9) == []


def test_fit_univariate_input_checks():
    with pytest.raises(ValueError, match="must match"):
        fit_univariate(np.arange(10.0), np.arange(9.0))
    assert fit_univariate(np.ones(20), np.arange(20.0)) == []  # t constant: nothing to fit
    assert fit_univariate(np.arange(5.0), np.arange(5.0)) == []  # too few points


@pytest.mark.parametrize("law", ["resonance", "doppler", "bose"])
def test_composite_finds_monomial_times_rational_of_a_group(law):
    """M₁(x)·g(M₂(x)) with g rational in the group, in its square root or in e^{a·group}."""
    from nnlab.symbolic.composite import run_composite
    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.polish import evaluate
    from nnlab.symbolic.search import Candidate, CandidateResult

    rng = np.random.default_rng(0)
    a, b, c = sympy.symbols("a b c", positive=True)
    truth = {"resonance": a ** 2 * b ** 2 / (b ** 2 - 4 * c ** 2),
             "doppler": a * sympy.sqrt((c + 2 * b) / (c - b)),
             "bose": a ** 2 / (sympy.exp(2 * b / c) + 1)}[law]
    X = np.column_stack([rng.uniform(1, 2, 240), rng.uniform(0.5, 1.5, 240), rng.uniform(2, 4, 240)])
    y = sympy.lambdify([a, b, c], truth, "numpy")(*X.T)
    res = CandidateResult(Candidate("composite", True, True))
    lib = LIBRARY.subset(["x", "exp", "sin"])  # none of them is g: the law must come from univariate.py
    run_composite(res, X[:180], y[:180], X[180:], y[180:], [a, b, c], lib, grid=5, k=3, snap_tol=1e-6,
                  deadline=None)
    assert res.complete and res.expr is not None
    Xf = np.column_stack([rng.uniform(1, 2, 100), rng.uniform(0.5, 1.5, 100), rng.uniform(2, 4, 100)])
    yf = sympy.lambdify([a, b, c], truth, "numpy")(*Xf.T)
    assert np.allclose(evaluate(res.expr, [a, b, c], Xf), yf, rtol=1e-7)


def test_composite_on_a_target_that_changes_sign():
    """y = a^(3/2)·sin(b)·cos(b)/c²: M₁ = a^(3/2)/c², g = sin·cos changes sign; α is fitted in raw space."""
    from nnlab.symbolic.composite import find_signed, run_composite
    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.polish import evaluate
    from nnlab.symbolic.search import Candidate, CandidateResult

    rng = np.random.default_rng(1)
    a, b, c = sympy.symbols("a b c", positive=True)
    truth = a ** sympy.Rational(3, 2) * sympy.sin(b) * sympy.cos(b) / c ** 2
    X = np.column_stack([rng.uniform(1, 3, 240), rng.uniform(0.3, 3, 240), rng.uniform(1, 2, 240)])
    y = sympy.lambdify([a, b, c], truth, "numpy")(*X.T)
    assert np.any(y > 0) and np.any(y < 0)
    r, beta, alpha = find_signed(np.log(X), y)[0]
    assert r < 1e-6 and list(beta) == [0, 1, 0] and np.allclose(alpha, [1.5, 0, -2], atol=1e-6)
    res = CandidateResult(Candidate("composite", True, False))
    run_composite(res, X[:180], y[:180], X[180:], y[180:], [a, b, c], LIBRARY.subset(["x", "sin", "exp"]),
                  grid=5, k=3, snap_tol=1e-6, deadline=None)
    assert res.complete and sympy.simplify(res.expr - truth) == 0, res.expr
