"""Symbolic regression building blocks (issue 4): library, affine fit, snap, polish, formula oracle."""
import math
import pickle

import numpy as np
import pytest
import sympy
import torch

import nnlab.symbolic as S
from nnlab.kan import KAN
from nnlab.symbolic.search import tidy

torch.set_num_threads(1)


# ---------------------------------------------------------------- library
@pytest.mark.parametrize("name", list(S.LIBRARY))
def test_library_torch_and_sympy_agree(name):
    f = S.LIBRARY[name]
    x = torch.linspace(-0.95, 0.95, 41, dtype=torch.float64) * 2
    y, ok = f.safe(x)
    s = sympy.Symbol("s")
    g = sympy.lambdify(s, f.sympy_fn(s), "numpy")
    with np.errstate(all="ignore"):
        ref = np.asarray(g(x.numpy()) * np.ones(len(x)), dtype=np.complex128)
    okn = ok.numpy()
    assert okn.any()
    np.testing.assert_allclose(y.numpy()[okn], ref.real[okn], rtol=1e-10, atol=1e-12)
    assert torch.isfinite(y).all()  # invalid inputs never produce NaN
    assert isinstance(f.complexity, int)


def test_library_register_subset_and_errors():
    lib = S.default_library()
    lib.register("cosh", torch.cosh, sympy.cosh, complexity=3)
    assert "cosh" in lib and "cosh" not in S.LIBRARY
    sub = lib.subset(["x", "cosh"])
    assert list(sub) == ["x", "cosh"]
    with pytest.raises(ValueError, match="unknown library function 'nope'"):
        lib.subset(["nope"])
    with pytest.raises(KeyError, match="valid names"):
        lib["nope"]
    with pytest.raises(TypeError):
        lib.register("bad", "not callable", sympy.cos)
    pickle.loads(pickle.dumps(S.LIBRARY))  # named functions: libraries pickle


# ---------------------------------------------------------------- affine fit
CASES = [  # fn, a, b, c, d on x in [-2, 2]
    ("sin", 2.0, 1.0, 3.0, -0.5), ("x^2", 1.0, 0.3, 0.5, 1.0), ("exp", -1.0, 0.0, 2.0, 0.1),
    ("log", 1.0, 3.0, 1.5, 0.0), ("1/x", 1.0, 2.5, -2.0, 0.3), ("arcsin", 1 / 3, 0.0, 1.0, 0.0),
    ("gaussian", 1.5, 0.2, 2.0, 0.0), ("tanh", 2.0, -1.0, 1.0, 0.5),
]


@pytest.mark.parametrize("fn,a,b,c,d", CASES)
def test_fit_affine_recovers_the_function(fn, a, b, c, d):
    x = torch.linspace(-2, 2, 128, dtype=torch.float64)
    f = S.LIBRARY[fn].torch_fn
    y = c * f(a * x + b) + d
    fit = S.fit_affine(x, y, fn)
    assert fit.r2 > 1 - 1e-9
    got = fit.c * f(fit.a * x + fit.b) + fit.d
    torch.testing.assert_close(got, y, rtol=1e-6, atol=1e-6)
    can = S.canonical(fn, fit)  # same function, identifiable parameters
    torch.testing.assert_close(can.c * f(can.a * x + can.b) + can.d, y, rtol=1e-6, atol=1e-6)


def test_fit_affine_never_crashes_on_domain_errors():
    x = torch.linspace(-3, 3, 64, dtype=torch.float64)  # log/sqrt/1/x undefined on part of it
    for fn in ("log", "1/x", "arcsin"):
        fit = S.fit_affine(x, x ** 2, fn)
        assert math.isnan(fit.r2) is False and fit.r2 <= 1.0
    with pytest.raises(ValueError, match="finite"):
        S.fit_affine([1.0, float("nan"), 2.0], [1.0, 2.0, 3.0], "x")
    with pytest.raises(ValueError, match="must match"):
        S.fit_affine([1.0, 2.0, 3.0], [1.0, 2.0], "x")
    with pytest.raises(ValueError, match="unknown library function"):
        S.fit_affine([1.0, 2.0], [1.0, 2.0], "nope")


def test_choose_prefers_the_simplest_near_best():
    x = torch.linspace(-1, 1, 100, dtype=torch.float64)
    lib = S.LIBRARY.subset(["x", "x^2", "x^4", "cos", "exp"])
    fits = S.suggest(x, 2 * x ** 2 - 1, lib)
    assert S.choose(fits, lib)[0] == "x^2"  # cos fits as well (r² ≈ 1) but is more complex
    assert S.choose(S.suggest(x, torch.sign(x) * x ** 2, lib), lib, r2_threshold=0.9999) is None


# ---------------------------------------------------------------- polish and snap
def test_snap_to_pi_and_halves_with_refit():
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 3, (200, 2))
    y = np.exp(-X[:, 0] ** 2 / 2) / np.sqrt(2 * np.pi) * X[:, 1] ** 1.5
    x0, x1 = sympy.symbols("x0 x1")
    rough = sympy.Float(0.401) * sympy.exp(sympy.Float(-0.4999) * x0 ** sympy.Float(2.0001)) * x1 ** sympy.Float(1.49)
    polished, err = S.polish(rough, [x0, x1], X, y)
    assert err < 1e-10
    res = S.snap(polished, X, y, variables=[x0, x1])
    assert not res.expr.atoms(sympy.Float)
    truth = sympy.exp(-x0 ** 2 / 2) / sympy.sqrt(2 * sympy.pi) * x1 ** sympy.Rational(3, 2)
    assert sympy.simplify(res.expr - truth) == 0
    assert res.error < 1e-12


def test_snap_refuses_when_the_data_disagrees():
    x = np.linspace(1, 2, 50)
    y = 3.13 * x  # not pi: 3.13/pi is 0.4% off
    s = sympy.Symbol("x")
    res = S.snap(sympy.Float(3.13) * s, x, y, tol=1e-6, variables=[s])
    assert res.expr.atoms(sympy.Float) and res.error < 1e-12
    assert S.snap(sympy.Float(3.1415926) * s, x, np.pi * x, variables=[s]).expr == sympy.pi * s


def test_snap_bad_input():
    s = sympy.Symbol("x")
    with pytest.raises(TypeError, match="sympy expression"):
        S.snap("x", [1.0, 2.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="rows"):
        S.snap(s, [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="tol"):
        S.snap(s, [1.0, 2.0], [1.0, 2.0], tol=-1)
    with pytest.raises(ValueError, match="variables"):
        S.snap(s, np.ones((3, 2)), [1.0, 2.0, 3.0], variables=["x"])


def test_tidy_turns_log_space_sums_into_monomials():
    x, y = sympy.symbols("x y", positive=True)
    e = sympy.exp(sympy.Float(2.0) * sympy.log(x) - sympy.Float(1.5) * sympy.log(y) + sympy.Float(0.5))
    t = tidy(e)
    assert not t.atoms(sympy.exp) and not t.atoms(sympy.log)
    f = sympy.lambdify([x, y], t - sympy.exp(0.5) * x ** 2 / y ** 1.5)
    assert abs(f(1.7, 2.3)) < 1e-12


# ---------------------------------------------------------------- symbolic edges and formula (oracle)
def _all_symbolic_kan(seed=0):
    torch.manual_seed(seed)
    model = KAN(width=[3, 2, 1], grid=3, k=3, seed=seed).double()
    rng = np.random.default_rng(seed)
    names = ["sin", "x^2", "exp", "tanh", "x", "cos", "gaussian", "arctan"]
    for layer in model.layers:
        n_out, n_in = layer.mask.shape
        layer.symbolic = S.SymbolicEdges(n_in, n_out).double()
        for o in range(n_out):
            for i in range(n_in):
                a, b, c, d = rng.uniform(-1, 1, 4)
                layer.symbolic.set_edge(o, i, names[rng.integers(len(names))], (a, b, c, d))
        with torch.no_grad():
            layer.mask.zero_()
    return model


def test_formula_oracle_lambdify_equals_forward():
    model = _all_symbolic_kan()
    expr = S.formula(model, ["a", "b", "c"])
    assert not expr.atoms(sympy.core.function.AppliedUndef) and S.spline_edges(model) == []
    X = torch.rand(64, 3, dtype=torch.float64) * 2 - 1
    f = sympy.lambdify(sympy.symbols("a b c"), expr, "numpy")
    with torch.no_grad():
        ref = model(X)[:, 0].numpy()
    np.testing.assert_allclose(f(*X.numpy().T), ref, rtol=1e-10, atol=1e-12)


def test_symbolic_edges_shapes_and_errors():
    e = S.SymbolicEdges(3, 2).double()
    e.set_edge(1, 2, "sin", (1.0, 0.0, 2.0, 0.5))
    x = torch.randn(5, 3, dtype=torch.float64)
    acts = e.edge_activations(x)
    assert acts.shape == (5, 2, 3) and e(x).shape == (5, 2)
    torch.testing.assert_close(acts[:, 1, 2], 2 * torch.sin(x[:, 2]) + 0.5)
    assert float(acts[:, 0].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="unknown library function"):
        e.set_edge(0, 0, "nope", (1, 0, 1, 0))
    with pytest.raises(ValueError, match=r"\(batch, 3\)"):
        e(torch.randn(5, 2))
    pickle.loads(pickle.dumps(e))


def test_formula_bad_input():
    model = KAN(width=[2, 1], grid=3, seed=0)
    with pytest.raises(ValueError, match="2 inputs"):
        S.formula(model, ["a"])
    with pytest.raises(TypeError, match="KAN"):
        S.formula(torch.nn.Linear(2, 1))
