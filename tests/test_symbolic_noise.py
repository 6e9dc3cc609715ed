"""Snapping under noise (issue 11, item 8): the F-test against the free fit, confidence intervals,
joint snaps, spurious terms dropped; exact data keep the strict rule."""
import numpy as np
import pytest
import sympy
from scipy.stats import f as f_dist

import nnlab.symbolic as S
from nnlab.symbolic.finish import finish
from nnlab.symbolic.polish import evaluate, polish, relative_rmse
from nnlab.symbolic.significance import SnapTest, z_value
from nnlab.symbolic.snap import reference_test, snap

a, b, x = sympy.symbols("a b x")


def _noisy(y, gamma, seed):
    rng = np.random.default_rng(seed)
    return y + gamma * np.sqrt(np.mean(y ** 2)) * rng.standard_normal(y.shape)


# ---------------------------------------------------------------- the test itself
def test_snap_test_rejects_a_true_restriction_at_rate_alpha():
    """Monte Carlo oracle: y = 2x + N(0, σ²), free fit c·x, restriction c = 2 (q = 1). A level-α
    test refuses the true value in a fraction α of the data sets (exact for linear models)."""
    rng = np.random.default_rng(0)
    n, sims, alpha = 30, 4000, 0.05
    xs = np.linspace(1, 2, n)
    Y = 2 * xs + 0.1 * rng.standard_normal((sims, n))
    c = Y @ xs / (xs @ xs)
    rms = np.sqrt(np.mean(Y ** 2, axis=1))
    err_free = np.sqrt(np.mean((Y - c[:, None] * xs) ** 2, axis=1)) / rms
    err_true = np.sqrt(np.mean((Y - 2 * xs) ** 2, axis=1)) / rms
    refused = np.mean([not SnapTest(n, 1, ef, floor=0.0, alpha=alpha).accepts(et, 1)
                       for ef, et in zip(err_free, err_true)])
    assert abs(refused - alpha) < 0.015, refused


def test_snap_test_limits():
    t = SnapTest(400, 3, 0.01)
    crit = f_dist.isf(1e-3, 2, 397)
    assert t.limit(2) == pytest.approx(0.01 * np.sqrt(1 + 2 * crit / 397))
    assert t.limit(1) < t.limit(2) < t.limit(3)
    assert t.sigma == pytest.approx(0.01 * np.sqrt(400 / 397))
    # exact data: the noise estimate is round-off, the floor (snap_tol) is all that is allowed
    exact = SnapTest(400, 3, 1e-15, floor=1e-6)
    assert exact.limit(3) == pytest.approx(1e-15 + 1e-6)
    assert not exact.accepts(2e-6, 1) and not t.accepts(float("nan"), 1)
    assert z_value(400, 3) == pytest.approx(3.31, abs=0.01)


# ---------------------------------------------------------------- snapping under noise
def _fit(expr, variables, X, y):
    e, _ = polish(expr, variables, X, y)
    return e


def test_monomial_with_one_percent_noise_snaps_to_the_law():
    """C·a^p·b^q fitted on noisy k·x²/2-like data: each constant alone sits ~3 standard errors off
    its simple value (they are correlated); all at once they pass, and 1/2 is not 2√3/7."""
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (375, 2))
    y = _noisy(X[:, 0] * X[:, 1] ** 2 / 2, 1e-2, 2)
    start = sympy.Float(0.49) * a ** sympy.Float(1.01) * b ** sympy.Float(1.99)
    got, err = finish(start, [a, b], X, y, snap_tol=1e-6)
    assert got == a * b ** 2 / 2, got
    assert 0.005 < err < 0.02


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_spurious_constant_term_is_dropped(seed):
    rng = np.random.default_rng(seed)
    X = rng.uniform(1, 5, (375, 2))
    y = _noisy(X[:, 0] * X[:, 1], 1e-2, seed + 10)
    fitted = _fit(sympy.Float(1.01) * a * b + sympy.Float(-0.01), [a, b], X, y)
    assert snap(fitted, X, y, variables=[a, b]).expr == a * b


def test_noise_does_not_snap_what_the_data_refuse():
    """0.52·x under 1% noise: 1/2 is 4% off, dozens of standard errors, and 13/(8π) (0.1% off) costs
    more bits than the slope known to ±0.3%: the float stays; a real constant term (0.3, far
    outside its interval around 0) is not dropped."""
    xs = np.linspace(1, 3, 300)
    y = _noisy(0.52 * xs + 0.3, 1e-2, 0)
    fitted = _fit(sympy.Float(0.5) * x + sympy.Float(0.25), [x], xs[:, None], y)
    res = snap(fitted, xs, y, variables=[x])
    slope, const = res.expr.coeff(x), res.expr.subs(x, 0)
    assert isinstance(slope, sympy.Float) and abs(float(slope) - 0.52) < 0.01, res.expr
    assert abs(float(const) - 0.3) < 0.05, res.expr


def test_exact_data_keep_the_strict_rule():
    """Without noise the estimated noise is round-off: a small real constant stays, and a value
    0.2% from a simple one is not snapped (the looser tolerance is only for noisy data)."""
    xs = np.linspace(1, 3, 300)
    y = 2 * xs + 0.003
    fitted = _fit(sympy.Float(2.0) * x + sympy.Float(0.001), [x], xs[:, None], y)
    assert reference_test(fitted, xs, y, [x]).sigma < 1e-12
    res = snap(fitted, xs, y, variables=[x])
    assert res.expr.atoms(sympy.Float) and abs(float(res.expr.subs(x, 0)) - 0.003) < 1e-12
    got = snap(sympy.Float(0.501) * x ** 2, xs, 0.501 * xs ** 2, variables=[x]).expr
    assert got.atoms(sympy.Float), got


def test_one_test_for_every_pass_of_finish():
    """The passes of finish share the reference fit: the result's error stays within the F-limit
    of the free fit (cumulative q), never drifting by several accepted small steps."""
    rng = np.random.default_rng(3)
    X = rng.uniform(1, 5, (375, 3))
    y = _noisy(X[:, 0] * X[:, 1] / (4 * np.pi * X[:, 2] ** 2), 1e-2, 4)
    c, d = sympy.symbols("c d")
    start = sympy.Float(0.08) * a ** sympy.Float(0.99) * b ** sympy.Float(1.01) * c ** sympy.Float(-2.02)
    free, err0 = polish(start, [a, b, c], X, y)
    got, err = finish(start, [a, b, c], X, y, snap_tol=1e-6)
    assert sympy.simplify(got - a * b / (4 * sympy.pi * c ** 2)) == 0, got
    assert err <= SnapTest(375, 4, err0).limit(4)


# ---------------------------------------------------------------- the estimator
def test_regressor_monomial_under_noise_and_pure_noise():
    rng = np.random.default_rng(5)
    X = rng.uniform(1, 5, (400, 2))
    y = _noisy(X[:, 0] * X[:, 1], 1e-2, 6)
    est = S.SymbolicRegressor(search=["monomial"], variables=["mu", "Nn"]).fit(X, y)
    mu, Nn = sympy.symbols("mu Nn")
    assert est.formula_ == mu * Nn and est.result_["status"] == "exact within noise"
    noise = rng.standard_normal(400)
    est = S.SymbolicRegressor(search=["raw"], steps=10, variables=["mu", "Nn"]).fit(X, noise)
    assert est.result_["status"] == "no law found" and not est.complete_
    # exact data: exact, not "within noise"
    est = S.SymbolicRegressor(search=["monomial"], variables=["mu", "Nn"]).fit(X, X[:, 0] * X[:, 1])
    assert est.formula_ == mu * Nn and est.result_["status"] == "exact"
    assert relative_rmse(evaluate(est.formula_, [mu, Nn], X), X[:, 0] * X[:, 1]) == 0


def test_docs_noise_block_runs(capsys):
    """The snapping-under-noise example of docs/symbolic.md, run as written."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "symbolic.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, flags=re.S) if "finish(" in b)
    ns: dict = {}
    exec(compile(block, "docs/symbolic.md[noise]", "exec"), ns)
    assert ns["law"] == sympy.Symbol("k") * sympy.Symbol("x") ** 2 / 2
    assert capsys.readouterr().out.startswith("k*x**2/2")


def test_an_approximation_is_not_licensed_by_its_misfit():
    """A wrong shape (a line for a parabola) leaves a structured residual: it is not noise, so the
    F-test does not widen the tolerance and the constants are not snapped into inventions."""
    xs = np.linspace(1, 3, 300)
    y = xs ** 2
    fitted = _fit(sympy.Float(4.0) * x + sympy.Float(-3.0), [x], xs[:, None], y)
    t = reference_test(fitted, xs, y, [x])
    assert t.alpha == 0 and t.limit(2) == pytest.approx(t.error + 1e-6)
    res = snap(fitted, xs, y, variables=[x])  # the slope is 4 exactly (least squares of x² on [1, 3])
    assert res.error <= t.error + 1e-6 and res.expr.atoms(sympy.Float), res.expr
