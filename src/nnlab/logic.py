"""Threshold neurons and Boolean functions (lecture §2.1–§2.3).

A threshold neuron computes y = [w·x + b > 0] on 0/1 inputs. With the lecture's weights (§2.3)::

    AND(x1, x2) = [x1 + x2 - 3/2 > 0]
    OR(x1, x2)  = [x1 + x2 - 1/2 > 0]
    NOT(x)      = [-x + 1/2 > 0]

XOR is not linearly separable (§2.1), but two layers compute it (§2.3):
x1 ⊕ x2 = (x1 ∨ x2) ∧ ¬(x1 ∧ x2), see :func:`xor_network`.

Truth tables are sequences of 2**n outputs (0/1) listed in the order of
``itertools.product([0, 1], repeat=n)``: for n = 2 the rows are (0,0), (0,1), (1,0), (1,1), so
AND is (0, 0, 0, 1) and XOR is (0, 1, 1, 0). A dict {input tuple: output} is accepted too.
:func:`linearly_separable` decides separability exactly by a linear program (margin form):
find w, b with s_j (w·x_j + b) >= 1 for all rows j, s_j = +1 if y_j = 1 else -1. Because there are
finitely many rows, such a margin exists iff some threshold neuron computes the table.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["ThresholdNeuron", "ThresholdNetwork", "threshold_neuron", "AND", "OR", "NOT",
           "xor_network", "inputs", "truth_table", "linearly_separable",
           "separable_boolean_functions"]


def _as_binary(x: Any, n_in: int, what: str = "x") -> np.ndarray:
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.shape[-1] != n_in or arr.ndim > 2:
        raise ValueError(f"{what} must have {n_in} input(s) per row (shape ({n_in},) or "
                         f"(batch, {n_in})), got shape {arr.shape}")
    if not np.isin(arr, (0.0, 1.0)).all():
        raise ValueError(f"{what} must contain only 0/1 values, got {np.unique(arr).tolist()}")
    return arr


@dataclass(frozen=True)
class ThresholdNeuron:
    """y = [w·x + b > 0] (§2.3). Call on one input (n,) -> int, or a batch (batch, n) -> int array."""

    weights: tuple[float, ...]
    bias: float

    def __call__(self, *x: Any) -> Any:
        # accept neuron(x1, x2), neuron([x1, x2]) or neuron(batch)
        arr = _as_binary(x if len(x) > 1 else x[0], len(self.weights))
        out = (arr @ np.asarray(self.weights) + self.bias > 0).astype(int)
        return int(out[()]) if out.ndim == 0 else out


def threshold_neuron(weights: Sequence[float], bias: float) -> ThresholdNeuron:
    """A neuron y = [w·x + b > 0] with the given weights (length n) and bias."""
    w = np.asarray(weights, dtype=float).reshape(-1)
    if w.size == 0 or not np.isfinite(w).all():
        raise ValueError(f"weights must be a non-empty list of finite numbers, got {weights!r}")
    if isinstance(bias, bool) or not np.isfinite(float(bias)):
        raise ValueError(f"bias must be a finite number, got {bias!r}")
    return ThresholdNeuron(tuple(float(v) for v in w), float(bias))


AND = threshold_neuron([1, 1], -1.5)   # [x1 + x2 - 3/2 > 0]
OR = threshold_neuron([1, 1], -0.5)    # [x1 + x2 - 1/2 > 0]
NOT = threshold_neuron([-1], 0.5)      # [-x + 1/2 > 0]


@dataclass(frozen=True)
class ThresholdNetwork:
    """Layers of threshold neurons: x_{l+1} = [W_l x_l + b_l > 0] (a multilayer perceptron, §2.4).

    ``layers`` is a tuple of (W (out, in), b (out,)) pairs as nested tuples.
    """

    layers: tuple[tuple[tuple[tuple[float, ...], ...], tuple[float, ...]], ...]

    def __call__(self, *x: Any) -> Any:
        n_in = len(self.layers[0][0][0])
        h = _as_binary(x if len(x) > 1 else x[0], n_in)
        single = h.ndim == 1
        h = np.atleast_2d(h)
        for W, b in self.layers:
            h = (h @ np.asarray(W).T + np.asarray(b) > 0).astype(float)
        out = h.astype(int)
        if out.shape[1] == 1:
            out = out[:, 0]
        return int(out[0]) if single and out.ndim == 1 else (out[0] if single else out)


def xor_network() -> ThresholdNetwork:
    """x1 ⊕ x2 = (x1 ∨ x2) ∧ ¬(x1 ∧ x2) with two layers of threshold neurons (§2.3).

    Hidden: h1 = OR = [x1 + x2 - 1/2 > 0], h2 = AND = [x1 + x2 - 3/2 > 0];
    output: h1 ∧ ¬h2 = [h1 - h2 - 1/2 > 0].
    """
    hidden = (((1.0, 1.0), (1.0, 1.0)), (-0.5, -1.5))
    out = (((1.0, -1.0),), (-0.5,))
    return ThresholdNetwork((hidden, out))


def inputs(n: int) -> np.ndarray:
    """All 2**n binary inputs (2**n, n) in ``itertools.product([0, 1], repeat=n)`` order."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return np.array(list(itertools.product([0, 1], repeat=int(n))), dtype=float)


def truth_table(f: Any, n: int) -> tuple[int, ...]:
    """The truth table of a callable ``f(x1, ..., xn) -> 0/1`` (e.g. a neuron or network)."""
    return tuple(int(f(*row.astype(int))) for row in inputs(n))


def _parse_table(table: Sequence[int] | Mapping[tuple[int, ...], int]) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(table, Mapping):
        keys = list(table)
        n = len(keys[0]) if keys else 0
        X = inputs(n) if n else np.zeros((0, 0))
        missing = [tuple(int(v) for v in r) for r in X if tuple(int(v) for v in r) not in table]
        if not keys or missing or len(keys) != len(X):
            raise ValueError(f"a truth-table dict needs exactly the 2**n binary input tuples as keys; "
                             f"missing {missing[:3]}" if missing else
                             "a truth-table dict needs the 2**n binary input tuples as keys")
        y = np.array([table[tuple(int(v) for v in r)] for r in X], dtype=float)
    else:
        y = np.asarray(table, dtype=float).reshape(-1)
        n = int(np.log2(y.size)) if y.size else 0
        if y.size < 2 or 2 ** n != y.size:
            raise ValueError(f"a truth table must list 2**n outputs (2, 4, 8, ...), got {y.size}")
        X = inputs(n)
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError(f"truth-table outputs must be 0/1, got {np.unique(y).tolist()}")
    return X, y


def linearly_separable(table: Sequence[int] | Mapping[tuple[int, ...], int],
                       return_weights: bool = False) -> Any:
    """Whether one threshold neuron computes ``table`` (exact LP feasibility, scipy HiGHS).

    Solves: find (w, b) with s_j (w·x_j + b) >= 1, s_j = 2 y_j - 1. With ``return_weights=True``
    returns ``(separable, neuron_or_None)`` where the neuron computes the table.
    """
    from scipy.optimize import linprog  # lazy: keeps `import nnlab` fast

    X, y = _parse_table(table)
    s = 2 * y - 1
    A_ub = -s[:, None] * np.hstack([X, np.ones((len(X), 1))])
    res = linprog(np.zeros(X.shape[1] + 1), A_ub=A_ub, b_ub=-np.ones(len(X)),
                  bounds=[(None, None)] * (X.shape[1] + 1), method="highs")
    if res.status not in (0, 2):
        raise RuntimeError(f"linprog failed unexpectedly: {res.message}")
    ok = res.status == 0
    if not return_weights:
        return ok
    return ok, (threshold_neuron(res.x[:-1], res.x[-1]) if ok else None)


def separable_boolean_functions(n: int) -> list[tuple[int, ...]]:
    """All truth tables of n inputs that one threshold neuron computes (§2.2).

    n = 1: 4 of 4; n = 2: 14 of 16 (all but XOR and XNOR); n = 3: 104 of 256; n = 4: 1882 of 65536
    (65536 LPs: minutes). n > 4 is refused (2**(2**n) tables).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= 4:
        raise ValueError(f"n must be an integer from 1 to 4 (there are 2**(2**n) tables), got {n!r}")
    tables = itertools.product([0, 1], repeat=2 ** int(n))
    return [t for t in tables if linearly_separable(t)]
