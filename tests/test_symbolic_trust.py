"""Issue 11, items 3–6 and 9: answers to trust. Junk columns, extreme scales, noise, pure noise,
closed forms only, no over-snapping, one finish pipeline."""
import json

import numpy as np
import pytest
import sympy
import torch
from typer.testing import CliRunner

import nnlab.symbolic as S
from nnlab.cli import app
from nnlab.symbolic.dependence import relevant_columns, residual_structure
from nnlab.symbolic.finish import finish, gather_numbers
from nnlab.symbolic.length import description_length
from nnlab.symbolic.polish import evaluate, relative_rmse
from nnlab.symbolic.scale import Scale, decade
from nnlab.symbolic.snap import snap_candidates, snap_coefficients

torch.set_num_threads(1)
pi = sympy.pi


def _same(expr, truth):
    return sympy.simplify(expr - truth) == 0


# ---------------------------------------------------------------- input relevance (item 3)
def test_junk_columns_are_dropped_and_the_law_is_exact():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (300, 4))  # k, x, and two columns of noise
    y = 0.5 * X[:, 0] * X[:, 1] ** 2
    est = S.SymbolicRegressor(search=["loglog"], steps=30, time_limit=600, variables=["k", "x", "j1", "j2"]).fit(X, y)
    k, x = sympy.symbols("k x")
    assert _same(est.formula_, k * x ** 2 / 2) and not est.formula_.atoms(sympy.Float)
    assert sorted(d["variable"] for d in est.result_["dropped"]) == ["j1", "j2"]
    assert est.result_["used_variables"] == ["k", "x"] and est.complete_
    np.testing.assert_allclose(est.predict(X), y, rtol=1e-10)  # predict takes all four columns
    json.dumps(est.result_)


def test_a_dropped_column_with_named_variables_and_a_signed_target_does_not_crash():
    """Candidates that cannot apply (a target that changes sign) are named with the kept columns'
    names, not the user's full list (this once raised 'variables has 3 names but X has 2 columns')."""
    rng = np.random.default_rng(1)
    X = np.column_stack([rng.uniform(-2, 2, 200), rng.uniform(1, 3, 200), rng.uniform(1, 3, 200)])
    y = X[:, 0] * X[:, 1]
    est = S.SymbolicRegressor(search=["monomial", "rational"], steps=30, time_limit=600,
                              variables=["a", "b", "junk"]).fit(X, y)
    assert [d["variable"] for d in est.result_["dropped"]] == ["junk"]
    assert _same(est.formula_, sympy.Symbol("a") * sympy.Symbol("b"))


def test_a_weak_but_real_variable_is_kept():
    # c barely moves y (v/c <= 2/3) and correlates with it by only ~0.1; k-NN alone would drop it
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.uniform(1, 5, 300), rng.uniform(1, 2, 300), rng.uniform(3, 10, 300)])
    y = X[:, 0] * X[:, 1] / np.sqrt(1 - X[:, 1] ** 2 / X[:, 2] ** 2)
    assert relevant_columns(X, y).keep == (0, 1, 2)


def test_a_nearly_cancelling_variable_is_kept_and_junk_still_dropped():
    # Planck's form a·b³/((e^{ab/(5cd)} − 1)·e²) ≈ 5b²cd/e² where ab/(5cd) is small (the
    # Rayleigh–Jeans limit): a nearly cancels; neither rank correlation nor a quadratic polynomial
    # of the raw values sees it, the same polynomial in log space does
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (500, 5))
    a, b, c, d, e = X.T
    y = a * b ** 3 / ((np.exp(a * b / (5 * c * d)) - 1) * e ** 2)
    assert relevant_columns(X, y).keep == (0, 1, 2, 3, 4)
    # a monomial law is exact in log space: round-off is not read as a signal, junk still goes
    X = rng.uniform(1, 5, (300, 4))
    assert relevant_columns(X, 0.5 * X[:, 0] * X[:, 1] ** 2).keep == (0, 1)


def test_pure_noise_is_no_law():
    rng = np.random.default_rng(1)
    X = rng.uniform(1, 5, (300, 2))
    y = rng.standard_normal(300)
    est = S.SymbolicRegressor(search=["raw"], steps=10, variables=["a", "b"]).fit(X, y)
    assert est.result_["status"] == "no law found" and not est.complete_
    assert est.formula_.is_number and abs(float(est.formula_) - y.mean()) < 1e-9
    assert "no input carries information" in est.result_["reason"] or "no better than the mean" in est.result_["reason"]
    assert est.predict(X).shape == (300,)


def test_residual_structure_tells_noise_from_misfit():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (300, 2))
    assert residual_structure(X, rng.standard_normal(300)) < 0.05
    assert residual_structure(X, np.sin(X[:, 0]) + 0.1 * rng.standard_normal(300)) > 0.5


# ---------------------------------------------------------------- scale invariance (item 5)
@pytest.mark.parametrize("x_scale,y_scale", [(1.0, 1e300), (1e-150, 1.0), (1e150, 1e-300)])
def test_extreme_scales_give_the_unit_scale_law(x_scale, y_scale):
    rng = np.random.default_rng(0)
    U = rng.uniform(1, 5, (200, 2))
    X = U * x_scale
    y = y_scale * U[:, 0] * U[:, 1]  # y = (y_scale / x_scale²)·a·b
    est = S.SymbolicRegressor(search=["loglog"], steps=30, time_limit=600, variables=["a", "b"]).fit(X, y)
    a, b = sympy.symbols("a b")
    c = sympy.Rational(10) ** (round(np.log10(y_scale)) - 2 * round(np.log10(x_scale)))
    assert _same(est.formula_, c * a * b), est.formula_
    assert est.complete_ and est.result_["status"] == "exact"
    pred = est.predict(X)
    assert np.all(np.isfinite(pred)) and relative_rmse(pred, y) < 1e-10


def test_scale_round_trip_is_exact():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 2, (50, 2)) * np.array([1e-200, 3.0])
    y = rng.uniform(1, 2, 50) * 1e250
    sc = Scale.fit(X, y)
    assert sc.x_exp == (-200, 0) and sc.y_exp == 250 and decade(np.array([0.0])) == 0
    np.testing.assert_allclose(sc.y_inverse(sc.y(y)) / y, 1.0, rtol=1e-15)
    a, b = sympy.symbols("a b")
    e = a * b ** 2 / 3
    assert sc.rescale(sc.unscale(e, [a, b]), [a, b]) == e


def test_relative_error_does_not_overflow():
    y = np.array([1e300, 2e300, -3e300])
    assert relative_rmse(y * (1 + 1e-12), y) < 1e-11
    from nnlab.symbolic.report import metrics

    assert metrics(y, y)["r2"] == 1.0


# ---------------------------------------------------------------- noise (items 4, 6)
def test_noise_1e_2_keeps_the_snapped_law():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (400, 2))
    y = X[:, 0] / (4 * np.pi * X[:, 1] ** 2)
    y = y + 1e-2 * np.sqrt(np.mean(y ** 2)) * rng.standard_normal(400)
    est = S.SymbolicRegressor(search=["loglog"], steps=30, time_limit=600, variables=["Pwr", "r"]).fit(X, y)
    P, r = sympy.symbols("Pwr r")
    assert _same(est.formula_, P / (4 * pi * r ** 2)), est.formula_
    assert est.complete_ and est.result_["status"] == "exact within noise"
    assert 0.005 < est.result_["error"] < 0.02


# ---------------------------------------------------------------- honest output (item 6)
def test_a_law_outside_the_library_gives_a_closed_form_and_says_why():
    rng = np.random.default_rng(0)
    X = rng.uniform(-2, 2, (200, 2))
    y = np.sinh(X[:, 0]) * X[:, 1] + X[:, 1] ** 3 * np.cos(X[:, 0])
    est = S.SymbolicRegressor(search=["raw"], steps=20, library=S.LIBRARY.subset(["0", "x", "x^2"]),
                              variables=["a", "b"]).fit(X, y)
    assert not est.formula_.atoms(sympy.core.function.AppliedUndef)
    assert est.formula_.free_symbols <= set(sympy.symbols("a b"))
    assert not est.complete_ and est.result_["status"] == "approximate"
    assert "target changes sign; log-space candidates skipped" in est.result_["reason"]
    assert "residual still depends on the inputs" in est.result_["reason"]
    err = relative_rmse(evaluate(est.formula_, sympy.symbols("a b"), X), y)
    assert abs(err - est.result_["error"]) < 0.2 and relative_rmse(est.predict(X), y) <= err + 1e-12


def test_cli_says_no_law_in_one_line(tmp_path):
    rng = np.random.default_rng(1)
    p = tmp_path / "noise.csv"
    rows = ["a,b,y"] + [f"{a:.17g},{b:.17g},{c:.17g}" for a, b, c in
                        zip(rng.uniform(1, 5, 200), rng.uniform(1, 5, 200), rng.standard_normal(200))]
    p.write_text("\n".join(rows) + "\n")
    res = CliRunner().invoke(app, ["discover", str(p), "--out", str(tmp_path / "r"), "--time-limit", "5"])
    assert res.exit_code == 0, res.output
    assert sum("no law found" in line for line in res.output.splitlines()) == 1, res.output


# ---------------------------------------------------------------- snapping guard (item 4)
def test_description_length_prefers_the_physicist_constant():
    x = sympy.Symbol("x")
    assert description_length(x / pi) < description_length(sympy.Float(0.3183) * x)
    assert description_length(x / (4 * pi)) < description_length(153 * x / (2 * pi ** 6))
    assert description_length(2 * x) < description_length(sympy.Rational(1908, 7) * x)


def test_no_e_and_no_pi_in_exponents_and_no_towers():
    x = sympy.Symbol("x")
    xs = np.linspace(1, 3, 60)
    # exp(1/2) = 1.6487…: not a law constant, stays a float
    r = S.snap(sympy.Float(np.exp(0.5)) * x, xs, np.exp(0.5) * xs, variables=[x])
    assert r.expr.atoms(sympy.Float) and not r.expr.has(sympy.E)
    # x^(π/3) is not offered, x^1.0472 stays
    r = S.snap(x ** sympy.Float(np.pi / 3), xs, xs ** (np.pi / 3), variables=[x])
    assert not r.expr.has(pi)
    # 1908/7 is not a snap candidate; 272.5714·x is not snapped to 55π²/2 (0.4% away)
    assert all(abs(sympy.Rational(e.as_coeff_Mul()[0]).p) <= 64 for e in snap_candidates(1908 / 7))
    r = S.snap(sympy.Float(1908 / 7) * x, xs, 1908 / 7 * xs, variables=[x])
    assert r.expr.atoms(sympy.Float)


def test_a_constant_known_exactly_snaps_to_a_larger_denominator_and_a_noisy_one_does_not():
    # 3/5 · 1/(4π) = 3/(20π) (II.8.7): the denominator 20 is offered only to a constant known to 1e-9
    q, eps, d = sympy.symbols("q epsilon d")
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (300, 3))
    y = 3 * X[:, 0] ** 2 / (20 * np.pi * X[:, 1] * X[:, 2])
    c = sympy.Float(3 / (20 * np.pi))
    assert 3 / (20 * pi) in snap_candidates(float(c)) and 3 / (20 * pi) not in snap_candidates(float(c) * (1 + 1e-6))
    expr, err = finish(c * q ** 2 / (eps * d), [q, eps, d], X, y, snap_tol=1e-6)
    assert expr == 3 * q ** 2 / (20 * pi * eps * d) and err < 1e-12
    noisy = y * (1 + 1e-3 * rng.standard_normal(300))
    expr, _ = finish(c * q ** 2 / (eps * d), [q, eps, d], X, noisy, snap_tol=1e-6)
    assert expr.atoms(sympy.Float)  # ±0.1% leaves ~10 bits: 3/(20π) costs more than it explains
    # an arbitrary constant known exactly stays a float (no rational with denominator <= 60 within 1e-9)
    expr, _ = finish(sympy.Float(0.0463) * q ** 2 / (eps * d), [q, eps, d], X,
                       0.0463 * X[:, 0] ** 2 / (X[:, 1] * X[:, 2]), snap_tol=1e-6)
    assert expr.atoms(sympy.Float)


def test_a_coefficient_split_by_the_y_scale_is_gathered_and_snapped():
    # undoing y's scale leaves 10⁴·(−6.4e-4·m1 − 6.4e-4·m2): gathered, it is −6.4·(m1 + m2) = −32/5·(m1 + m2)
    m1, m2, r = sympy.symbols("m1 m2 r")
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (200, 3))
    y = -6.4 * X[:, 0] ** 2 * X[:, 1] ** 2 * (X[:, 0] + X[:, 1]) / X[:, 2] ** 5
    split = 10000 * m1 ** 2 * m2 ** 2 * (sympy.Float(-0.00064) * m1 + sympy.Float(-0.00064) * m2) / r ** 5
    gathered = gather_numbers(split)
    assert len(gathered.atoms(sympy.Float)) == 1 and abs(float(relative_rmse(
        evaluate(gathered, [m1, m2, r], X), y))) < 1e-12
    res = snap_coefficients(gathered, X, y, tol=1e-6, variables=[m1, m2, r])
    assert sympy.simplify(res.expr + sympy.Rational(32, 5) * m1 ** 2 * m2 ** 2 * (m1 + m2) / r ** 5) == 0


def test_whole_coefficients_are_resnapped():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (200, 2))
    y = X[:, 0] / (4 * np.pi * X[:, 1] ** 2)
    y = y + 1e-2 * np.sqrt(np.mean(y ** 2)) * rng.standard_normal(200)
    P, r = sympy.symbols("Pwr r")
    res = snap_coefficients(153 * P / (2 * pi ** 6 * r ** 2), X, y, tol=1e-4, variables=[P, r])
    assert res.expr == P / (4 * pi * r ** 2)


def test_one_finish_pipeline_for_every_candidate():
    import inspect

    from nnlab.symbolic import composite, search

    for mod in (composite, search):
        src = inspect.getsource(mod)
        assert "finish(" in src and "snap(" not in src and "polish(" not in src


def test_the_knn_oracle_never_goes_to_a_configured_joblib_backend():
    """Inside ``joblib.parallel_config(backend="dask")`` sklearn's neighbour query would be sent to the
    cluster (a round trip per query, even with n_jobs=1): the oracle runs here, whatever is configured."""
    import joblib
    from joblib._parallel_backends import SequentialBackend

    used = []

    class Counting(SequentialBackend):
        def configure(self, *args, **kwargs):
            used.append(1)
            return super().configure(*args, **kwargs)

    joblib.register_parallel_backend("nnlab-counting", Counting)
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (300, 4))
    y = 0.5 * X[:, 0] * X[:, 1] ** 2
    with joblib.parallel_config(backend="nnlab-counting"):
        keep = relevant_columns(X, y).keep
        residual_structure(X, y - y.mean())
    assert keep == relevant_columns(X, y).keep
    assert used == []
