"""Exact rows for the parts of a split (nnlab.symbolic.exact_parts): once the other parts are known,
the rows give the last one exactly."""
import numpy as np
import sympy

from nnlab.symbolic.exact_parts import SplitPart, SplitRecord, complete_splits, expand
from nnlab.symbolic.polish import evaluate

x, w, t = sympy.symbols("x w t")
L0, L1, N0 = sympy.symbols("_L0 _L1 _N0")
V = [x, w, t]


def _rows(seed=0, n=300):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(1, 3, n), rng.uniform(0.5, 2, n), rng.uniform(1, 4, n)])


def _close(expr, truth, seed=1):
    Z = _rows(seed, 200)
    a, b = evaluate(expr, V, Z), evaluate(truth, V, Z)
    return float(np.max(np.abs(a - b) / np.abs(b))) < 1e-8


def _linear(b_alts, a_alts):
    """y = a(x, w) + b(w)·t with a = x²·w and b = 1 + w²; the parts carry only oracle-like fits."""
    X = _rows()
    a_true, b_true = X[:, 0] ** 2 * X[:, 1], 1 + X[:, 1] ** 2
    y = a_true + b_true * X[:, 2]
    noisy = np.random.default_rng(2).normal(0, 1e-3, (2, len(y)))
    rec = SplitRecord("linear", y, [SplitPart(L0, [x, w], X[:, :2], a_true * (1 + noisy[0]), 1e-3),
                                    SplitPart(L1, [w], X[:, 1:2], b_true * (1 + noisy[1]), 1e-3)],
                      composition=L0 + L1 * t, factor=t)
    return X, y, rec, {L0: a_alts, L1: b_alts}


def test_linear_split_gets_its_intercept_from_the_rows_once_the_slope_snaps():
    # the intercept's fit is wrong; the slope's is 0.1 % off, and snaps to 1 + w²
    X, y, rec, parts = _linear([1.0012 + 0.9991 * w ** 2], [2.9 * x * w - 1.7])
    law, done = complete_splits(N0, parts, {N0: rec}, [], X, V)
    assert N0 in done and not law.free_symbols - set(V)
    assert _close(law, x ** 2 * w + (1 + w ** 2) * t)


def test_a_later_alternative_of_the_known_part_is_tried():
    X, y, rec, parts = _linear([0.8 + 1.3 * w, 1.0012 + 0.9991 * w ** 2], [2.9 * x * w - 1.7])
    law, done = complete_splits(N0, parts, {N0: rec}, [], X, V)
    assert _close(law, x ** 2 * w + (1 + w ** 2) * t)


def test_no_completion_when_no_known_part_is_right():
    # neither part's fits are the law: the composition stays as it was (leaf symbols and all)
    X, y, rec, parts = _linear([0.8 + 1.3 * w], [2.9 * x * w - 1.7])
    law, done = complete_splits(N0, parts, {N0: rec}, [], X, V)
    assert done == {} and law == L0 + L1 * t
    assert expand(N0, {N0: rec}) == L0 + L1 * t


def test_multiplicative_split_and_new_variables():
    # y = x·w / (1 + t²·w²) as the product of f(x) = x and g(w, t) through u = w·t (a new variable)
    u = sympy.Symbol("_u1")
    X = _rows()
    g = X[:, 1] / (1 + (X[:, 1] * X[:, 2]) ** 2)
    y = X[:, 0] * g
    rec = SplitRecord("multiplicative", y, [SplitPart(L0, [x], X[:, :1], X[:, 0] * 1.0004, 1e-3),
                                            SplitPart(L1 / (1 + u ** 2), [w, t], X[:, 1:], g * 0.9997, 1e-3)],
                      composition=L0 * L1 / (1 + u ** 2), factor=None)
    parts = {L0: [1.3 * x - 0.2], L1: [1.0003 * w]}  # the first part is wrong, the second snaps to w/(1 + w²t²)
    law, done = complete_splits(N0, parts, {N0: rec}, [(u, w * t)], X, V)
    assert N0 in done
    assert _close(law, x * w / (1 + t ** 2 * w ** 2))


def test_a_factor_is_known_up_to_its_scale():
    # a product's parts carry arbitrary scales (the split's reference value): 0.79·x is x
    X = _rows()
    g = X[:, 1] / (1 + (X[:, 1] * X[:, 2]) ** 2)
    y = X[:, 0] * g
    rec = SplitRecord("multiplicative", y, [SplitPart(L0, [x], X[:, :1], 0.7926 * X[:, 0], 1e-3),
                                            SplitPart(L1, [w, t], X[:, 1:], 1.3 * g, 1e-3)],
                      composition=L0 * L1, factor=None)
    parts = {L0: [0.79258 * x + 0.00031], L1: [1.2 * w / (1 + 0.8 * w * t)]}
    law, done = complete_splits(N0, parts, {N0: rec}, [], X, V)
    assert N0 in done
    assert _close(law, x * w / (1 + t ** 2 * w ** 2))
