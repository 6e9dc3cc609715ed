"""Units (issue 11, item 7): parsing, dimensionless groups, and laws recovered through them."""
from fractions import Fraction

import numpy as np
import pytest
import sympy

import nnlab as nl
from nnlab.symbolic.units import BASE, dimensionless_groups, parse_unit, unit_vectors


def vec(**kw):
    return tuple(Fraction(kw.get(b, 0)) for b in BASE)


@pytest.mark.parametrize("text,expected", [
    ("kg*m^2/s^2", vec(kg=1, m=2, s=-2)),
    ("kg m**2 s**-2", vec(kg=1, m=2, s=-2)),
    ("J", vec(kg=1, m=2, s=-2)),
    ("N*m", vec(kg=1, m=2, s=-2)),
    ("m/s/s", vec(m=1, s=-2)),
    ("1/s", vec(s=-1)),
    ("Hz", vec(s=-1)),
    ("J/(kg*K)", vec(m=2, s=-2, K=-1)),
    ("m^(1/2)", vec(m=Fraction(1, 2))),
    ("m^0.5 s^-1", vec(m=Fraction(1, 2), s=-1)),
    ("V/Ohm", vec(A=1)),
    ("C/s", vec(A=1)),
    ("F*V", vec(s=1, A=1)),
    ("T*m^2", parse_unit("Wb")),
    ("Pa*m^3", parse_unit("J")),
    ("W*s", parse_unit("J")),
    ("1", vec()),
    ("", vec()),
])
def test_parse_unit(text, expected):
    assert parse_unit(text) == expected


def test_exponent_vectors():
    assert parse_unit([1, 0, -2]) == (1, 0, -2)
    assert parse_unit([0.5, -1]) == (Fraction(1, 2), -1)
    v = unit_vectors({"a": [1, 0], "b": [0, 1], "target": [1, 1]})
    assert v["target"] == (1, 1)


@pytest.mark.parametrize("units,match", [
    ({"a": "furlong"}, r"units of 'a'.*unknown unit 'furlong'"),
    ({"a": "km"}, r"unknown unit 'km'"),
    ({"a": "kg*/s"}, r"units of 'a'"),
    ({"a": "m^"}, r"units of 'a'.*end"),
    ({"a": "(m"}, r"units of 'a'.*'\)'"),
    ({"a": "3 m"}, r"units of 'a'"),
    ({"a": "m$"}, r"units of 'a'.*unexpected character"),
    ({"a": ["x", 1]}, r"units of 'a'.*sequence of numbers"),
    ({"a": [1, 0], "b": [1, 0, 0]}, r"same length.*a: 2, b: 3"),
    ({"a": [1, 0], "b": "m"}, r"same length"),
])
def test_bad_units(units, match):
    with pytest.raises(ValueError, match=match):
        unit_vectors(units)


def test_groups_of_relativistic_addition():
    """u (m/s), v (m/s), c (m/s) -> target m/s: two groups, monomial one velocity."""
    cols = [parse_unit("m/s")] * 3
    D = [[c[r] for c in cols] for r in range(len(BASE))]
    g = dimensionless_groups(D, parse_unit("m/s"), ["u", "v", "c"])
    E = sympy.Matrix(g.exponents)
    assert E.shape == (2, 3) and E.rank() == 2
    assert all(isinstance(e, int) for row in g.exponents for e in row)
    assert sympy.Matrix(D) * E.T == sympy.zeros(len(BASE), 2)
    assert sum(1 for p in g.monomial if p) == 1 and sorted(g.monomial) == [0, 0, 1]


def test_groups_pendulum_and_no_solution():
    D = [[parse_unit("m")[r], parse_unit("m/s^2")[r]] for r in range(len(BASE))]
    g = dimensionless_groups(D, parse_unit("s"), ["L", "g"])
    assert g.exponents == () and g.monomial == (Fraction(1, 2), Fraction(-1, 2))
    L, gg = sympy.symbols("L g")
    assert _same(g.symbols([L, gg])[1], sympy.sqrt(L / gg))
    with pytest.raises(ValueError, match=r"target's units cannot be made from the inputs' units.*kg"):
        dimensionless_groups(D, parse_unit("kg"), ["L", "g"])


def test_groups_small_integers_and_few_variables():
    """Kinetic energy: m (kg), v (m/s), h (m), g (m/s^2) -> J: two candidate monomials, the
    particular solution uses the fewest variables with the smallest exponents."""
    names = ["m", "v", "h", "g"]
    cols = [parse_unit(u) for u in ("kg", "m/s", "m", "m/s^2")]
    D = [[c[r] for c in cols] for r in range(len(BASE))]
    g = dimensionless_groups(D, parse_unit("J"), names)
    assert g.monomial == (1, 2, 0, 0)
    assert len(g.exponents) == 1
    e = g.exponents[0]
    assert e[0] == 0 and sympy.Matrix(D) * sympy.Matrix(e) == sympy.zeros(len(BASE), 1)
    assert max(abs(x) for x in e) <= 2


def _same(a, b):
    """Equal as functions of positive variables (sqrt(L/g) = sqrt(L)/sqrt(g) needs L, g > 0)."""
    pos = {s: sympy.Symbol(s.name, positive=True) for s in (a - b).free_symbols}
    return sympy.simplify((a - b).xreplace(pos)) == 0


def test_pendulum_through_units():
    rng = np.random.default_rng(0)
    L, g = rng.uniform(0.5, 2, 60), rng.uniform(5, 15, 60)
    X, y = np.c_[L, g], 2 * np.pi * np.sqrt(L / g)
    est = nl.SymbolicRegressor(variables=["L", "g"], units={"L": "m", "g": "m/s^2", "target": "s"},
                               time_limit=5).fit(X, y)
    Ls, gs = sympy.symbols("L g")
    assert _same(est.formula_, 2 * sympy.pi * sympy.sqrt(Ls / gs))
    assert est.complete_ and est.result_["status"] == "exact"
    assert est.result_["units"]["groups"] == {} and est.inner_ is None
    Xt = np.c_[rng.uniform(0.1, 5, 20), rng.uniform(1, 20, 20)]
    np.testing.assert_allclose(est.predict(Xt), 2 * np.pi * np.sqrt(Xt[:, 0] / Xt[:, 1]), rtol=1e-12)
    np.testing.assert_allclose(est.predict(Xt), est.to_numpy()(Xt), rtol=1e-12)


def test_relativistic_mass_through_units():
    rng = np.random.default_rng(1)
    m0, v, c = rng.uniform(1, 3, 100), rng.uniform(0.1, 2, 100), rng.uniform(3, 5, 100)
    X, y = np.c_[m0, v, c], m0 / np.sqrt(1 - v ** 2 / c ** 2)
    units = {"m0": "kg", "v": "m/s", "c": [1, 0, -1, 0, 0, 0, 0], "target": "kg"}
    est = nl.SymbolicRegressor(variables=["m0", "v", "c"], units=units, search=["composite"], time_limit=20)
    est.fit(X, y)
    assert est.units is units  # stored as given
    M0, V, C = sympy.symbols("m0 v c")
    assert _same(est.formula_, M0 / sympy.sqrt(1 - V ** 2 / C ** 2))
    groups = est.result_["units"]["groups"]
    assert len(groups) == 1 and _same(sympy.sympify(groups["pi1"]) ** 2, V ** 2 / C ** 2)
    assert est.result_["units"]["monomial"] == "m0"
    Xt = np.c_[rng.uniform(1, 3, 30), rng.uniform(0.1, 2, 30), rng.uniform(3, 5, 30)]
    np.testing.assert_allclose(est.predict(Xt), est.to_numpy()(Xt), rtol=1e-10)
    np.testing.assert_allclose(est.predict(Xt), Xt[:, 0] / np.sqrt(1 - (Xt[:, 1] / Xt[:, 2]) ** 2), rtol=1e-10)
    assert all(r.formula.free_symbols <= {M0, V, C} for r in est.equations_)


@pytest.mark.parametrize("units,match", [
    ({"a": "m", "b": "s"}, r"units lacks 'target'"),
    ({"a": "m", "target": "m"}, r"units lacks 'b'"),
    ({"a": "m", "b": "s", "c": "kg", "target": "m"}, r"unknown variable\(s\) 'c'"),
    ({"a": "m", "b": "s", "target": "kg"}, r"target's units cannot be made"),
    ({"a": "m", "b": "parsec", "target": "m"}, r"units of 'b'.*unknown unit 'parsec'"),
    ({"a": [1, 0], "b": [0, 1, 0], "target": [1, 0]}, r"same length"),
    (["m", "s"], r"units must be a dict"),
])
def test_bad_units_in_fit(units, match):
    rng = np.random.default_rng(2)
    X = rng.uniform(1, 2, (20, 2))
    with pytest.raises(ValueError, match=match):
        nl.SymbolicRegressor(variables=["a", "b"], units=units, time_limit=1).fit(X, X[:, 0] * X[:, 1])


def test_units_need_positive_data_under_roots():
    rng = np.random.default_rng(3)
    X = np.c_[rng.uniform(-2, 2, 30), rng.uniform(1, 2, 30)]
    units = {"L": "m", "g": "m/s^2", "target": "s"}
    with pytest.raises(ValueError, match=r"L must be non-zero \(and positive under a fractional power\)"):
        nl.SymbolicRegressor(variables=["L", "g"], units=units, time_limit=1).fit(X, np.abs(X[:, 0]) + 1)


def test_several_targets_each_with_its_units():
    rng = np.random.default_rng(4)
    X = rng.uniform([0.5, 5], [2, 15], (40, 2))
    Y = np.c_[2 * np.pi * np.sqrt(X[:, 0] / X[:, 1]), np.sqrt(X[:, 0] * X[:, 1])]
    units = {"L": "m", "g": "m/s^2", "target": ["s", "m/s"]}
    est = nl.SymbolicRegressor(variables=["L", "g"], units=units, time_limit=5).fit(X, Y)
    L, g = sympy.symbols("L g")
    assert _same(est.formula_[0], 2 * sympy.pi * sympy.sqrt(L / g)) and _same(est.formula_[1], sympy.sqrt(L * g))
    assert est.units is units and est.estimators_[1].units["target"] == "m/s"
    np.testing.assert_allclose(est.predict(X), Y, rtol=1e-10)
    with pytest.raises(ValueError, match=r"lists 3 unit\(s\) but Y has 2 target\(s\)"):
        est.set_params(units={**units, "target": ["s", "m/s", "m"]}).fit(X, Y)
    with pytest.raises(ValueError, match=r"target 0: the target's units cannot be made"):
        est.set_params(units={**units, "target": "kg"}).fit(X, Y)


def test_docs_units_example_runs(capsys):
    """The example of docs/symbolic.md (section "Units"), run as written."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "symbolic.md").read_text(encoding="utf-8")
    code = text.split("### Units", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    ns: dict = {}
    exec(compile(code, "docs/symbolic.md[units]", "exec"), ns)
    L, g = sympy.symbols("L g")
    assert _same(ns["est"].formula_, 2 * sympy.pi * sympy.sqrt(L / g))
    assert "sqrt(L)/sqrt(g)" in capsys.readouterr().out


def test_energy_sum_through_one_group_and_pick():
    """E = m·v²/2 + m·g·h: monomial m·v², one group v²/(g·h), g(π) = 1/2 + 1/π."""
    rng = np.random.default_rng(5)
    X = rng.uniform([1, 1, 1, 5], [3, 4, 3, 15], (80, 4))
    m, v, h, g = X.T
    y = m * v ** 2 / 2 + m * g * h
    units = {"m": "kg", "v": "m/s", "h": "m", "g": "m/s^2", "target": "J"}
    est = nl.SymbolicRegressor(variables=["m", "v", "h", "g"], units=units, search=["monomial", "dictionary"],
                               time_limit=10).fit(X, y)
    M, V, H, G = sympy.symbols("m v h g")
    truth = M * V ** 2 / 2 + M * G * H
    assert _same(est.formula_, truth) and est.complete_
    assert est.result_["units"]["monomial"] == "m*v**2"
    assert _same(sympy.sympify(est.result_["units"]["groups"]["pi1"]), V ** 2 / (G * H))
    assert est.inner_.variables_ == ["pi1"]
    rows = list(est.equations_)
    assert len(rows) >= 2 and all(r.formula.free_symbols <= {M, V, H, G} for r in rows)
    assert rows[est.best_index_].formula == est.formula_
    other = next(r.index for r in rows if r.index != est.best_index_)
    est.pick(other)  # another row of the front, composed the same way
    assert _same(est.formula_, rows[other].formula)
    np.testing.assert_allclose(est.predict(X), est.to_numpy()(X), rtol=1e-9)
    est.pick(est.best_index_)
    assert _same(est.formula_, truth)
    np.testing.assert_allclose(est.predict(X), y, rtol=1e-10)


def test_units_param_is_plain_and_refit_without_units():
    """``units`` is an ordinary parameter: cloned, set_params-able; a refit without it is the usual search."""
    from sklearn.base import clone

    rng = np.random.default_rng(6)
    X = rng.uniform(1, 2, (40, 2))
    y = X[:, 0] * X[:, 1]
    est = nl.SymbolicRegressor(units={"x0": "m", "x1": "m", "target": "m^2"}, time_limit=5)
    assert clone(est).get_params()["units"] == est.units
    est.fit(X, y)
    x0, x1 = sympy.symbols("x0 x1")
    assert _same(est.formula_, x0 * x1) and est.result_["units"]["groups"] == {"pi1": "x0/x1"}
    assert est.result_["units"]["monomial"] == "x0**2"  # y = x0²·g(x0/x1), g(π) = 1/π
    est.set_params(units=None).fit(X, y)
    assert _same(est.formula_, x0 * x1) and "units" not in est.result_
    np.testing.assert_allclose(est.predict(X), y, rtol=1e-10)


def test_constant_group_is_refused():
    rng = np.random.default_rng(7)
    a = rng.uniform(1, 2, 30)
    X = np.c_[a, 2 * a]
    with pytest.raises(ValueError, match=r"group pi1 = a/b is constant on these rows \(0.5\)"):
        nl.SymbolicRegressor(variables=["a", "b"], units={"a": "m", "b": "m", "target": "m"},
                             time_limit=1).fit(X, a + rng.uniform(0, 1, 30))
    assert nl.symbolic.units.parse_unit("N") == vec(kg=1, m=1, s=-2)


def test_no_group_with_noise_is_approximate_and_predicts_the_constant():
    """Free fall distance d = g·t²/2 with 1% noise: no group; c fitted by least squares."""
    rng = np.random.default_rng(8)
    t, g = rng.uniform(1, 3, 200), rng.uniform(5, 15, 200)
    X = np.c_[t, g]
    y = g * t ** 2 / 2 * (1 + 0.01 * rng.standard_normal(200))
    est = nl.SymbolicRegressor(variables=["t", "g"], units={"t": "s", "g": "m/s^2", "target": "m"}).fit(X, y)
    T, G = sympy.symbols("t g")
    ratio = sympy.simplify(est.formula_ / (G * T ** 2))
    assert ratio.is_number and abs(float(ratio) - 0.5) < 0.01
    assert 0.005 < est.result_["error"] < 0.02
    np.testing.assert_allclose(est.predict(X), est.to_numpy()(X), rtol=1e-12)
