"""Decomposition with a surrogate as oracle (nnlab.symbolic.decompose / separability).

The structure tests are checked first with the true law as an exact oracle (sympy-free, fast),
then the whole decomposition on synthetic laws whose structure is known: sign-changing factors
(where log-space candidates are blind) and sums inside products or functions."""
import math
import time

import numpy as np
import pytest
import sympy
import torch

import nnlab as nl
from nnlab.symbolic import separability as sep
from nnlab.symbolic.decompose import decompose
from nnlab.symbolic.polish import evaluate
from nnlab.symbolic.dictionary import fit_dictionary, fit_dictionary_transformed
from nnlab.symbolic.rational import fit_rational

torch.set_num_threads(1)
RNG = np.random.default_rng


def _box(ranges, n, seed=0):
    rng = RNG(seed)
    return np.column_stack([rng.uniform(a, b, n) for a, b in ranges])


# ------------------------------------------------------------------ the tests, exact oracle
@pytest.mark.parametrize("f, kind, separable", [
    (lambda X: X[:, 0] + np.sin(X[:, 1]), "additive", True),
    (lambda X: X[:, 0] * X[:, 1], "additive", False),
    (lambda X: 3 * np.sin(X[:, 0]) * X[:, 1] ** 2, "multiplicative", True),  # both factors change sign
    (lambda X: np.cos(X[:, 0]) * (X[:, 1] - 0.3), "multiplicative", True),
    (lambda X: X[:, 0] + X[:, 1], "multiplicative", False),
    (lambda X: np.sin(X[:, 0] * X[:, 1]), "multiplicative", False),
])
def test_separability_identities(f, kind, separable):
    X = _box([(-2, 2), (-2, 2)], 200)
    test = sep.additive_z if kind == "additive" else sep.multiplicative_z
    z = test(f, X, [0], [1], 1e-9, RNG(1))
    assert (z <= 4) == separable, z


@pytest.mark.parametrize("f, i, j, kind", [
    (lambda X: np.exp(-(X[:, 0] - X[:, 1]) ** 2) * X[:, 2], 0, 1, "minus"),
    (lambda X: np.sin(X[:, 0] + X[:, 2]) * X[:, 1], 0, 2, "plus"),
    (lambda X: np.log(X[:, 1] * X[:, 2]) + X[:, 0], 1, 2, "times"),
    (lambda X: X[:, 0] / (X[:, 1] + X[:, 0]) + X[:, 2], 0, 1, "divide"),
])
def test_symmetries_found_and_only_those(f, i, j, kind):
    X = _box([(1, 3)] * 3, 200)
    z, power = sep.symmetry_z(f, X, i, j, kind, 1e-9, RNG(2))
    assert z < 1e-3 and power > 1e3
    for other in sep.SYMMETRIES:
        if other != kind:
            assert sep.symmetry_z(f, X, i, j, other, 1e-9, RNG(2))[0] > 1e3


def test_linearity_relevance_and_modules():
    X = _box([(1, 3)] * 4, 200)
    f = lambda X: X[:, 0] * X[:, 1] + np.sin(X[:, 2])  # noqa: E731 (x3 is junk)
    assert sep.linear_z(f, X, 0, 1e-9, RNG(0))[0] < 1e-3
    assert sep.linear_z(f, X, 2, 1e-9, RNG(0))[0] > 1e3
    assert sep.relevance_z(f, X, 3, 1e-9, RNG(0)) == 0.0
    assert sep.relevance_z(f, X, 2, 1e-9, RNG(0)) > 1e3
    mods, _ = sep.modules(f, X, 1e-9, "additive", RNG(0), 4.0)
    assert mods == [[0, 1], [2], [3]]


@pytest.mark.parametrize("f, group, degree", [
    (lambda X: (X[:, 1] + X[:, 2]) / (1 + X[:, 1] * X[:, 2] / X[:, 0] ** 2), [0, 1, 2], 1.0),  # u/c, v/c
    (lambda X: np.exp(-(X[:, 1] / X[:, 0]) ** 2 / 2) / X[:, 0], [0, 1], -1.0),  # x1 changes sign
    (lambda X: X[:, 0] ** 2 * np.sin(X[:, 1] / X[:, 2]), [1, 2], 0.0),
])
def test_homogeneity_finds_the_degree(f, group, degree):
    X = _box([(1, 5), (-2, 2), (1, 5)], 300)
    z, power, p = sep.homogeneity_z(f, X, group, 1e-9, RNG(3))
    assert p == degree and z < 1e-3 and power > 1e3
    # a group that is not homogeneous: the residual is large for every degree
    z, *_ = sep.homogeneity_z(lambda X: np.sin(X[:, 0]) + X[:, 2], X, [0, 2], 1e-9, RNG(3))
    assert z > 1e3


@pytest.mark.parametrize("truth, names, ranges, polynomial", [
    ("(u + v)/(1 + u*v/c**2)", "c v u", [(1, 5)] * 3, False),
    ("(m1*r1 + m2*r2)/(m1 + m2)", "m1 m2 r1 r2", [(1, 5)] * 4, False),
    ("x*y - 3*z**2", "x y z", [(-2, 2)] * 3, True),
])
def test_fit_rational_recovers_sparse_ratios(truth, names, ranges, polynomial):
    syms = sympy.symbols(names)
    t = sympy.sympify(truth, locals={s.name: s for s in syms})
    X = _box(ranges, 200)
    expr = fit_rational(X, evaluate(t, syms, X), list(syms), polynomial=polynomial)
    assert expr is not None and len(sympy.nsimplify(expr, rational=True, tolerance=1e-8).atoms(sympy.Float)) == 0
    assert sympy.simplify(sympy.nsimplify(expr, rational=True, tolerance=1e-8) - t) == 0, expr


def test_fit_rational_says_none_when_no_ratio_fits():
    X = _box([(0.5, 3)] * 2, 200)
    assert fit_rational(X, np.exp(X[:, 0]) * X[:, 1], list(sympy.symbols("a b"))) is None
    assert fit_rational(X, X[:, 0] * X[:, 1], list(sympy.symbols("a b"))) is None  # a polynomial: not asked for


@pytest.mark.parametrize("truth, names", [
    ("I1 + I2 + 2*sqrt(I1*I2)*cos(delta)", "I1 I2 delta"),  # terms that only help together
    ("b*(1 + a*cos(t))", "b a t"),
    ("x**2 + x*sin(t)", "x t"),
])
def test_fit_dictionary_recovers_sparse_sums_of_atom_products(truth, names):
    syms = sympy.symbols(names, positive=True)  # sqrt(I1)*sqrt(I2) == sqrt(I1*I2)
    t = sympy.sympify(truth, locals={s.name: s for s in syms})
    X = _box([(1, 5)] * len(syms), 300)
    expr = fit_dictionary(X, evaluate(t, syms, X), list(syms))
    assert expr is not None
    assert sympy.simplify(sympy.nsimplify(expr, rational=True, tolerance=1e-8) - t) == 0, expr


def test_small_supports_do_not_depend_on_how_many_pairs_are_scored_at_once():
    """The third columns are scored a chunk of pairs at a time, each pair on its own row: the supports
    (and their order) are the same whatever the chunk."""
    from nnlab.symbolic.dictionary import _small_supports, columns

    syms = list(sympy.symbols("a b t", positive=True))
    X = _box([(1, 5)] * 3, 300)
    D, _, _ = columns(X, syms)
    y = X[:, 0] + 2 * np.sqrt(X[:, 0] * X[:, 1]) * np.cos(X[:, 2]) + X[:, 1]
    y = y / np.linalg.norm(y)
    ref = list(_small_supports(D, y, 1e-6, chunk=10 ** 6))
    assert ref and all(list(_small_supports(D, y, 1e-6, chunk=c)) == ref for c in (7, 64, 2000))


def test_small_supports_score_third_columns_only_when_no_single_or_pair_confirms(monkeypatch):
    """The third columns (every column for thousands of pairs) are scored only when the fit has tried
    every single column and pair: a two-term law never pays for them, a three-term one does."""
    from nnlab.symbolic import dictionary

    syms = list(sympy.symbols("a b t", positive=True))
    X = _box([(1, 5)] * 3, 300)
    scored = []
    third = dictionary._third_columns
    monkeypatch.setattr(dictionary, "_third_columns", lambda *a: scored.append(1) or third(*a))
    assert fit_dictionary(X, X[:, 0] * X[:, 1] + 3 * X[:, 2], syms) is not None and scored == []
    assert fit_dictionary(X, X[:, 0] + 2 * X[:, 1] + X[:, 2] ** 2, syms) is not None and scored == [1]


def test_fit_dictionary_says_none_outside_the_dictionary():
    X = _box([(0.5, 3)] * 2, 200)
    assert fit_dictionary(X, np.exp(X[:, 0]) * X[:, 1], list(sympy.symbols("a b"))) is None
    assert fit_dictionary(_box([(1, 2)] * 4, 50), np.ones(50), list(sympy.symbols("a b c d"))) is None  # > 3 variables


def test_regressor_rational_candidate_gives_relativistic_addition():
    X = _box([(1, 5)] * 3, 300)
    y = (X[:, 2] + X[:, 1]) / (1 + X[:, 1] * X[:, 2] / X[:, 0] ** 2)
    est = nl.SymbolicRegressor(search=["rational"], variables=["c", "v", "u"], time_limit=30).fit(X, y)
    c, v, u = sympy.symbols("c v u")
    assert est.complete_ and sympy.simplify(est.formula_ - (u + v) / (1 + u * v / c ** 2)) == 0, est.formula_


def test_regressor_rational_candidate_takes_a_cubic_numerator_beyond_three_variables():
    """G·m1·m2 / (distance²) has a degree-3 numerator in 6 variables (I.9.18's shape)."""
    X = _box([(1, 2)] * 3 + [(1, 2), (3, 4), (1, 2)], 300)
    y = X[:, 0] * X[:, 1] * X[:, 2] / ((X[:, 4] - X[:, 3]) ** 2 + X[:, 5] ** 2)
    names = ["G", "m1", "m2", "x1", "x2", "y"]
    est = nl.SymbolicRegressor(search=["rational"], variables=names, time_limit=60).fit(X, y)
    G, m1, m2, x1, x2, yy = sympy.symbols(names)
    truth = G * m1 * m2 / ((x2 - x1) ** 2 + yy ** 2)
    assert est.complete_ and sympy.simplify(est.formula_ - truth) == 0, est.formula_


@pytest.mark.parametrize("truth, names", [
    ("sqrt(a**2 + b**2 - a*b*cos(t))", "a b t"),  # a law of cosines: three terms in y²
    ("-1/sqrt(a**2 + 3*b)", "a b"),  # negative, two terms in 1/y²
    ("a/b**2 + 2", "a b"),  # the 1/x² atom
])
def test_fit_dictionary_transformed_finds_laws_whose_square_or_inverse_is_a_sparse_sum(truth, names):
    syms = sympy.symbols(names, positive=True)
    t = sympy.sympify(truth, locals={s.name: s for s in syms})
    X = _box([(1, 3)] * len(syms), 300)
    found = fit_dictionary_transformed(X, evaluate(t, syms, X), list(syms), tol=1e-7)
    assert found, truth
    assert any(sympy.simplify(sympy.nsimplify(e, rational=True, tolerance=1e-8) - t) == 0 for e in found), found


def test_fit_dictionary_transformed_finds_nothing_for_a_law_outside_it():
    X = _box([(1, 3)] * 2, 300)
    assert fit_dictionary_transformed(X, np.exp(X[:, 0]) + np.log(X[:, 1]), list(sympy.symbols("a b"))) == []


# ------------------------------------------------------------------ whole decompositions
LAWS = [  # truth, variables, ranges, the first split expected
    ("r*F*sin(theta)", "r F theta", [(1, 5), (1, 5), (0, 5)], {"symmetry", "multiplicative"}),
    ("3*sin(x1)*x2**2", "x1 x2", [(-2, 2), (-2, 2)], {"multiplicative"}),
    ("beta*(1 + alpha*cos(theta))", "beta alpha theta", [(1, 5), (1, 5), (0, 5)], {"multiplicative"}),
    ("(m1*r1 + m2*r2)/(m1 + m2)", "m1 m2 r1 r2", [(1, 5)] * 4, {"symmetry"}),
    ("kappa*(T2 - T1)*A/d", "kappa T1 T2 A d", [(1, 5)] * 5, {"symmetry"}),
    # a law in x_i - x_j whose rest is homogeneous of degree -1: (theta - theta1)/sigma is found
    ("exp(-((theta - theta1)/sigma)**2/2)/sigma", "sigma theta theta1", [(1, 3)] * 3, {"symmetry"}),
    ("(u + v)/(1 + u*v/c**2)", "c v u", [(1, 5)] * 3, {"homogeneous"}),  # relativistic addition
    ("sqrt((x2 - x1)**2 + (y2 - y1)**2)", "x1 x2 y1 y2", [(1, 5)] * 4, {"symmetry"}),  # sqrt of a separable sum
    # leaves that are sparse atom sums of a transformed target: √ of a law of cosines in (u, φ − ψ),
    # 1 + sin(t)/u after the symmetries, and 1/y = 1/E + sin(t)/(m c²) after the homogeneity
    ("sqrt(a**2 + b**2 - a*b*cos(phi - psi))", "a b phi psi", [(1, 5), (1, 5), (0, 3), (0, 3)], {"symmetry"}),
    ("n*(1 + p*sin(t)/(k*T))", "n p t k T", [(1, 3)] * 5, {"symmetry", "multiplicative"}),
    ("E/(1 + E*sin(t)/(m*c**2))", "E m c t", [(1, 3)] * 4, {"homogeneous", "symmetry"}),
    # a leaf that is rational in (w, cos t) once v/c is one variable w: (1 − w²)/(1 + w·cos t)
    ("(1 - (v/c)**2)/(1 + v/c*cos(t))", "v c t", [(1, 2), (3, 5), (0, 3)], {"symmetry", "homogeneous"}),
]


@pytest.mark.parametrize("truth, names, ranges, first", LAWS, ids=[law[0] for law in LAWS])
def test_decompose_recovers_the_law(truth, names, ranges, first):
    syms = sympy.symbols(names)
    t = sympy.sympify(truth, locals={s.name: s for s in syms})
    X = _box(ranges, 300)
    y = evaluate(t, syms, X)
    d = decompose(X, y, list(syms), seed=0)
    assert d.expr is not None and d.tree["split"] in first
    assert d.tree["z_max"] > 0 and d.tree["sigma"] > 0 and d.tree["children"]
    expr = d.expr
    Xf = _box(ranges, 1000, seed=7)
    want = evaluate(t, syms, Xf)
    rel = np.sqrt(np.mean((evaluate(expr, syms, Xf) - want) ** 2) / np.mean(want ** 2))
    assert rel < 1e-9, (expr, rel)
    pos = {s: sympy.Symbol(s.name, positive=True) for s, (lo, _) in zip(syms, ranges) if lo > 0}
    assert sympy.simplify((expr - t).xreplace(pos)) == 0, expr  # a·√(1 + (b/a)²) = √(a² + b²) for a > 0


def test_regressor_uses_the_decomposition_and_reports_the_tree():
    X = _box([(1, 5), (1, 5), (0, 5)], 200)
    y = -X[:, 0] * X[:, 1] * np.cos(X[:, 2])  # changes sign: log-space candidates cannot see it
    est = nl.SymbolicRegressor(search=["raw", "decompose"], variables=["p", "E", "theta"], time_limit=600).fit(X, y)
    p, E, theta = sympy.symbols("p E theta")
    assert sympy.simplify(est.formula_ + p * E * sympy.cos(theta)) == 0, est.formula_
    tree = est.result_["chosen"]["tree"]
    assert est.result_["chosen"]["candidate"] == "decompose"

    def kinds(node):
        return [node["split"]] + [k for c in node.get("children", []) for k in kinds(c)]
    # p·E (a product symmetry) then the exact part u·cos θ as one closed form, or p × E × cos θ
    assert kinds(tree)[0] in ("multiplicative", "symmetry") and "leaf" in kinds(tree)


def test_a_part_whose_rows_name_it_exactly_is_not_split():
    """After θ1 − θ2 → u the part d·(1 − α²)/(1 + α·cos u) still has the law's exact rows; through a
    surrogate 0.2% off it looks separable in α and u (z 2.9 of 4), its rows give the law exactly."""
    X = _box([(1, 3), (2, 4), (4, 5), (4, 5)], 375)
    y = X[:, 0] * (1 - X[:, 1] ** 2) / (1 + X[:, 1] * np.cos(X[:, 2] - X[:, 3]))
    d, a, t1, t2 = sympy.symbols("d alpha theta1 theta2")
    res = decompose(X, y, [d, a, t1, t2], deadline=time.monotonic() + 600)
    assert sympy.simplify(res.expr - d * (1 - a ** 2) / (1 + a * sympy.cos(t1 - t2))) == 0, res.expr
    child = res.tree["children"][0]
    assert res.tree["split"] == "symmetry" and child["exact_rows"] and child["candidate"] == "exact closed form"


def test_decompose_rejects_bad_input():
    X = _box([(1, 2)] * 2, 50)
    with pytest.raises(ValueError, match="variables"):
        decompose(X, X[:, 0], [sympy.Symbol("a")])
    with pytest.raises(ValueError, match="rows"):
        decompose(X, X[:10, 0], list(sympy.symbols("a b")))


def test_docs_decomposition_example_runs(capsys):
    """The worked example of docs/symbolic.md (section "Decomposition"), run as written."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "symbolic.md").read_text()
    code = text.split("### Decomposition", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    ns: dict = {}
    exec(compile(code, "docs/symbolic.md[decomposition]", "exec"), ns)
    r, F, theta = sympy.symbols("r F theta")
    assert sympy.simplify(ns["d"].expr - r * F * sympy.sin(theta)) == 0
    out = capsys.readouterr().out
    assert "symmetry" in out and "exact closed form" in out
    # the second example (exact rows for a split's last part) runs in the same namespace
    code = text.split("### Decomposition", 1)[1].split("```python\n")[2].split("```", 1)[0]
    exec(compile(code, "docs/symbolic.md[exact parts]", "exec"), ns)
    x, w, t = sympy.symbols("x w t")
    law = sympy.nsimplify(ns["law"], rational=True)
    assert ns["done"] and sympy.simplify(law - (x ** 2 * w + (1 + w ** 2) * t)) == 0
    capsys.readouterr()
    # the third (one index), after them
    code = text.split("### Decomposition", 1)[1].split("```python\n")[3].split("```", 1)[0]
    exec(compile(code, "docs/symbolic.md[one index]", "exec"), ns)
    a, b, c, d, e = sympy.symbols("a b c d e")
    assert sympy.simplify(ns["d"].expr - sympy.sqrt(1 + 2 * a ** 2 * b * e / (c * d ** 2))) == 0
    out = capsys.readouterr().out
    assert out.startswith("sqrt(") and "index: ['a', 'b', 'c', 'd', 'e'] one index" in out


def test_decomposition_shards_fit_each_leaf_once_and_merge_into_the_unsharded_law():
    """Each of the K shards takes the same decisions (same oracle, same random stream) and fits only
    its round-robin share of the leaves; merged, the law, its error and the tree are the unsharded run's."""
    import time

    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.search import SHARDS, Candidate, merge_shards, run_candidate

    syms = sympy.symbols("m u v w")
    X = _box([(1, 5)] * 4, 240)
    y = 0.5 * X[:, 0] * (X[:, 1] ** 2 + X[:, 2] ** 2 + X[:, 3] ** 2)  # a product, a sum of three leaves
    args = (Candidate("decompose"), X[:180], y[:180], X[180:], y[180:], list(syms), LIBRARY)
    opts = dict(grid=5, k=3, steps=20, lamb=0.0, r2_threshold=0.99, snap_tol=1e-6, deadline=time.monotonic() + 3600)
    whole = run_candidate(*args, **opts)
    K = SHARDS.get("decompose", 2)
    parts = [run_candidate(*args, **opts, shard=(j, K)) for j in range(K)]
    fits = [p.partial["decomposition"].parts for p in parts]
    assert len(fits[0]) >= 2 and all(sum(f[L] is not None for f in fits) == 1 for L in fits[0])
    assert all(p.expr is None for p in parts)
    merged = merge_shards(parts, *args[1:], **opts)
    assert whole.complete and sympy.srepr(merged.expr) == sympy.srepr(whole.expr)
    assert (merged.val_error, merged.note, merged.tree) == (whole.val_error, whole.note, whole.tree)
    with pytest.raises(ValueError, match="cannot refit"):
        decompose(X, y, list(syms), shard=(0, 2))


def test_a_derived_oracle_without_structure_is_refit_on_the_nodes_rows():
    """A derived oracle (the root's surrogate through a change of variables) that shows no
    structure is replaced by a surrogate of the node's own exact rows, which finds the split."""
    import math

    from nnlab.symbolic.decompose import _Decomposer, _Node
    from nnlab.symbolic.library import LIBRARY

    syms = list(sympy.symbols("a b c"))
    X = _box([(1, 3)] * 3, 300)
    y = X[:, 0] ** 2 * np.exp(X[:, 1] / 2) * np.sin(X[:, 2])

    def wrong(Z):  # no product, sum, symmetry or linearity anywhere
        return 10 * np.sin(Z[:, 0] * Z[:, 1] + Z[:, 2] ** 2) * np.cos(Z[:, 0] - Z[:, 1] * Z[:, 2])

    dec = _Decomposer(LIBRARY, math.inf, 4.0, 0)
    with np.errstate(all="ignore"):  # decompose() runs its tests with warnings off too
        assert dec.first_split(_Node(syms, X, y, wrong, 0.01 * float(np.std(y)), True)) is None
        node = _Node(syms, X, y, wrong, 0.01 * float(np.std(y)), True, derived=True)
        _, tree = dec.solve(node)
    assert tree["oracle"] == "refit on the node's rows"
    assert tree["split"] == "multiplicative" and len(tree["modules"]) == 3


# ------------------------------------------------------------------ one index, log-space surrogate
def test_index_direction_finds_the_monomial_and_only_one():
    X = _box([(1, 3)] * 3, 300)
    rng = RNG(0)

    def f(Z):
        return np.sqrt(1 + Z[:, 0] ** 2 * Z[:, 1] / Z[:, 2] ** 4)
    assert sep.index_direction(f, X, rng).tolist() == [2, 1, -4]
    assert sep.index_direction(lambda Z: -f(-Z), -X, rng).tolist() == [2, 1, -4]  # fixed negative signs
    assert sep.index_direction(lambda Z: Z[:, 0] + Z[:, 1] * Z[:, 2], X, rng) is None  # two directions
    Xs = X.copy()
    Xs[:, 0] -= 2  # a column of both signs has no log
    assert sep.index_direction(f, Xs, rng) is None


def test_index_residual_tells_a_function_of_t_from_one_of_more():
    X = _box([(1, 3)] * 3, 300)
    t = X[:, 0] ** 2 / X[:, 1]
    assert sep.index_residual(t, np.sqrt(1 + t), RNG(0)) < 1e-8
    assert sep.index_residual(t, np.sqrt(1 + t) * X[:, 2], RNG(0)) > 0.1


def test_decompose_reduces_a_function_of_one_monomial_to_one_variable():
    """Five variables that enter only through t = a²·b·e/(c·d²): the first split makes t the one
    variable of a part whose rows are still exact, and √(1 + 2t) is a one-variable leaf."""
    a, b, c, d, e = syms = sympy.symbols("a b c d e")
    truth = sympy.sqrt(1 + 2 * a ** 2 * b * e / (c * d ** 2))
    X = _box([(1, 3)] * 5, 375)
    res = decompose(X, evaluate(truth, list(syms), X), list(syms), deadline=time.monotonic() + 600)
    assert res.tree["split"] == "index" and res.tree["children"][0]["exact_rows"]
    assert sympy.simplify(res.expr - truth) == 0, res.expr


def test_log_target_surrogate_fits_a_product_of_powers_over_orders_of_magnitude():
    from nnlab.symbolic.surrogate import fit_surrogate
    X = _box([(1, 2)] * 5 + [(1, 3)], 375)
    y = np.prod(X[:, :5] ** 3, axis=1) / np.sin(X[:, 5] / 2) ** 4  # spans ~6 orders of magnitude
    plain = fit_surrogate(X, y, steps=300)
    logged = fit_surrogate(X, y, steps=300, log_target=True)
    assert logged.y_sign == 1 and logged.error < plain.error / 5, (logged.error, plain.error)
    assert np.all(logged(X) > 0)
    neg = fit_surrogate(X, -y, steps=300, log_target=True)
    assert neg.y_sign == -1 and np.all(neg(X) < 0) and neg.error == pytest.approx(logged.error, rel=1e-6)
    signed = fit_surrogate(X, y * np.cos(X[:, 5] * 2), steps=100, log_target=True)
    assert signed.y_sign == 0  # y of both signs has no log: the plain fit


def test_power_factors_are_read_from_the_rows_when_the_surrogate_is_rough():
    """y = a²·b/c³ · g(w, β): a partly linear fit of log|y| (an MLP of w, β plus one slope per
    other variable) gives the exponents; the rows divided by the power law are g's exact values."""
    from nnlab.symbolic.decompose import _Decomposer, _power_factors
    from nnlab.symbolic.surrogate import best_surrogate
    from nnlab.symbolic.library import LIBRARY
    from nnlab.symbolic.power_factor import far_slopes, fit_power_factors, snap_exponents
    a, b, c, w, beta = syms = sympy.symbols("a b c w beta")
    g = (w ** 3 + w - w ** 2 * sympy.sin(beta) ** 2) / (4 * sympy.pi)
    truth = a ** 2 * b / c ** 3 * g
    X = _box([(1, 5)] * 4 + [(0.1, 6)], 375)
    y = evaluate(truth, list(syms), X)
    p, err = fit_power_factors(X, y, [3, 4])
    assert [str(f) for f in snap_exponents(p)] == ["2", "1", "-3"] and err < 0.05, (p, err)
    _, wrong = fit_power_factors(X, y, [0, 1])
    assert wrong > 5 * err
    assert far_slopes([0, 1, 2], np.array([2.01, 0.05, 1.3])) == [1, 2]
    sur = best_surrogate(X, y, 0)
    sur.error = max(sur.error, 0.2)  # as rough as a 7-variable law's: the tests are not trusted
    dec = _Decomposer(LIBRARY, math.inf, 4.0, 0)
    kind, detail, build = _power_factors(dec, X, y, list(syms), sur, 0)
    assert kind == "power factors" and detail["factors"] == str(a ** 2 * b / c ** 3)
    expr, children = build(0)
    assert children[0]["exact_rows"] and children[0]["variables"] == ["w", "beta"]
    got = dec.resolve(expr).xreplace({L: alts[0] for L, alts in dec.leaves.items()})
    Xf = _box([(1, 5)] * 4 + [(0.1, 6)], 200, seed=3)
    assert np.allclose(evaluate(got, list(syms), Xf), evaluate(truth, list(syms), Xf), rtol=1e-6)


def test_looks_noisy_tells_the_noise_from_a_fooled_estimate():
    from nnlab.symbolic.noise import noise_level
    from nnlab.symbolic.surrogate import fit_surrogate, looks_noisy
    X = _box([(1, 3)] * 3, 375)
    y = X[:, 0] * X[:, 1] / X[:, 2]
    noisy = y + RNG(2).normal(0, 0.01 * np.sqrt(np.mean(y ** 2)), len(y))
    sur = fit_surrogate(X, noisy, steps=300)
    level = noise_level(X, noisy)
    assert level is not None and looks_noisy(level, sur)
    exact = fit_surrogate(X, y, steps=300)
    assert not looks_noisy(noise_level(X, y), exact)
    assert not looks_noisy(100 * exact.sigma, exact)  # an estimate no fit could beat: the estimator was fooled
