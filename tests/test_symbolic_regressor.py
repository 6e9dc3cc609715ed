"""SymbolicRegressor (issue 4): exact recovery, sklearn contract, bad input, CLI."""
import json
import warnings

import numpy as np
import pytest
import sympy
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks
from typer.testing import CliRunner

import nnlab.symbolic as S
from nnlab.cli import app
from nnlab.data import read_csv
from nnlab.symbolic.polish import evaluate

torch.set_num_threads(1)


def _fast(**kw):
    """Fast mode: one small additive KAN, few steps, a 3-function library."""
    base = dict(search=["raw"], steps=4, grid=3, library=S.LIBRARY.subset(["0", "x", "x^2"]), time_limit=30)
    base.update(kw)
    return S.SymbolicRegressor(**base)


@parametrize_with_checks([_fast()])
def test_sklearn_contract(estimator, check):
    # No check is skipped by us; sklearn itself skips the pandas and array-API checks here
    # (pandas is not installed and SCIPY_ARRAY_API is unset).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)


def test_recovers_a_monomial_exactly():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 5, (200, 2))
    y = 0.5 * X[:, 0] * X[:, 1] ** 2
    est = S.SymbolicRegressor(search=["loglog"], steps=30, variables=["k", "x"]).fit(X, y)
    k, x = sympy.symbols("k x")
    assert sympy.simplify(est.formula_ - k * x ** 2 / 2) == 0
    assert est.complete_ and est.model_ is not None and est.model_.width == [2, 1]
    assert "frac" in est.latex_
    Xn = rng.uniform(1, 5, (50, 2))
    np.testing.assert_allclose(est.predict(Xn), 0.5 * Xn[:, 0] * Xn[:, 1] ** 2, rtol=1e-10)
    assert est.score(Xn, 0.5 * Xn[:, 0] * Xn[:, 1] ** 2) > 1 - 1e-12
    edges = est.result_["chosen"]["edges"]
    assert [e["function"] for e in edges] == ["x", "x"]  # linear in log space: exponents 1 and 2
    json.dumps(est.result_)  # JSON-able


def test_failed_match_keeps_the_spline_for_predict_and_gives_a_closed_form():
    rng = np.random.default_rng(1)
    X = rng.uniform(-1, 1, (120, 1))
    y = np.sign(X[:, 0]) * X[:, 0] ** 2 + 0.3 * X[:, 0]
    est = _fast(library=S.LIBRARY.subset(["x"]), r2_threshold=0.9999, steps=20).fit(X, y)
    assert not est.complete_ and est.result_["status"] == "approximate"
    assert not est.formula_.atoms(sympy.core.function.AppliedUndef)  # closed form, never phi_…
    assert est.formula_.free_symbols == {sympy.Symbol("x0")}
    assert "target changes sign" in est.result_["reason"]
    bad = est.result_["unmatched_edges"]
    assert bad and "spline kept" in bad[0]["reason"]
    assert est.result_["predict_with"] == "kan"  # the KAN with its spline beats the linear formula
    pred = est.predict(X)
    formula_err = np.sqrt(np.mean((evaluate(est.formula_, [sympy.Symbol("x0")], X) - y) ** 2))
    assert np.sqrt(np.mean((pred - y) ** 2)) < formula_err


@pytest.mark.parametrize("kind,match", [
    ("nan", r"NaN or inf in 2 row\(s\).*column 'b'"),
    ("const_y", "y is constant"),
    ("const_x", "feature 'b' \\(column 1\\) is constant"),
    ("few", "needs at least"),
    ("width", "width must look like"),
    ("nan_policy", "nan_policy"),
    ("search", "unknown candidate"),
    ("search_empty", "search is an empty list"),
    ("seeds", "seeds must be an int >= 1"),
    ("lamb", "lamb must be a finite number >= 0"),
    ("snap_tol", "snap_tol must be a finite number >= 0"),  # -1 returned a constant formula
])
def test_bad_input(kind, match):
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 2, (40, 2))
    y = X[:, 0] + X[:, 1]
    est = _fast(variables=["a", "b"])
    if kind == "nan":
        X[3, 1] = np.nan
        X[7, 1] = np.inf
    elif kind == "const_y":
        y = np.full(40, 2.0)
    elif kind == "const_x":
        X[:, 1] = 1.5
    elif kind == "few":
        X, y = X[:4], y[:4]
    elif kind == "width":
        est.set_params(width=[3, 1])
    elif kind == "nan_policy":
        est.set_params(nan_policy="ignore")
    elif kind == "search":
        est.set_params(search=["nope"])
    elif kind == "search_empty":
        est.set_params(search=[])
    elif kind in ("seeds", "lamb", "snap_tol"):
        est.set_params(**{kind: 0 if kind == "seeds" else -1.0})
    with pytest.raises(ValueError, match=match):
        est.fit(X, y)


def test_library_of_the_wrong_type_is_named():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 2, (40, 2))
    with pytest.raises(TypeError, match="library must be an nl.symbolic.Library"):
        _fast(library="x^2").fit(X, X[:, 0] + X[:, 1])


def test_torch_export_refuses_the_wrong_number_of_columns():
    # to_numpy() refused it; to_torch() silently read the first columns of a (n, 3) input
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 2, (40, 2))
    est = _fast(variables=["a", "b"]).fit(X, X[:, 0] + X[:, 1])
    f = est.to_torch()
    with pytest.raises(ValueError, match=r"X must have shape \(n, 2\) \(columns a, b\)"):
        f(torch.ones(3, 3))
    with pytest.raises(ValueError, match=r"X must have shape \(n, 2\)"):
        f(torch.ones(3))


def test_nan_rows_dropped_on_request():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 2, (40, 2))
    y = X[:, 0] + X[:, 1]
    y[5] = np.nan
    with pytest.warns(UserWarning, match="dropped 1 row"):
        est = _fast(nan_policy="drop").fit(X, y)
    assert est.n_features_in_ == 2


def test_cli_discovers_the_bundled_law(tmp_path):
    res = CliRunner().invoke(app, ["discover", "--out", str(tmp_path / "rep"), "--time-limit", "20"])
    assert res.exit_code == 0, res.output
    assert "T = 2*pi*sqrt(L)/sqrt(g)" in res.output
    assert "R² = 1" in res.output
    for f in ("result.json", "formula.txt", "edges.png"):
        assert (tmp_path / "rep" / f).is_file()
    assert json.loads((tmp_path / "rep" / "result.json").read_text())["held_out"]["rmse"] < 1e-9


@pytest.mark.parametrize("content,args,match", [
    ("a,b\n1,2\n3,4\n", ["--target", "y"], "target column 'y' is not in .*columns: a, b"),
    ("a,y\n1,2\nfoo,4\n", ["--target", "y"], "column 'a' of d.csv is not numeric: line 3 holds 'foo'"),
    ("a,y\n1,2\n3,4\n", ["--target", "y", "--features", "z"], "feature column\\(s\\) 'z' not in d.csv; columns: a, y$"),
])
def test_cli_bad_csv(tmp_path, content, args, match):
    p = tmp_path / "d.csv"
    p.write_text(content)
    with pytest.raises(ValueError, match=match):
        read_csv(p, args[1], args[3].split(",") if len(args) > 2 else None)
    res = CliRunner().invoke(app, ["discover", str(p), *args, "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "Error:" in res.output


def test_cli_nan_rows_refused_or_dropped(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.uniform(1, 2, 60)
    lines = ["a,y"] + [f"{float(v)!r},{float(3 * v)!r}" for v in a] + ["1.5,"]
    p = tmp_path / "d.csv"
    p.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(app, ["discover", str(p), "--out", str(tmp_path / "r")])
    assert res.exit_code == 2 and "1 row(s) hold NaN" in res.output
    res = CliRunner().invoke(app, ["discover", str(p), "--drop-nan", "--time-limit", "5", "--out", str(tmp_path / "r")])
    assert res.exit_code == 0 and "y = 3*a" in res.output, res.output


def test_docs_example_runs():
    """The Python example of docs/symbolic.md, executed so the docs cannot rot."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "symbolic.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    ns: dict = {}
    exec(compile(code, "docs/symbolic.md", "exec"), ns)
    k, x = sympy.symbols("k x")
    assert sympy.simplify(ns["est"].formula_ - k * x ** 2 / 2) == 0
