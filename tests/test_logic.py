import itertools

import numpy as np
import pytest

import nnlab as nl

from nnlab import logic

ROWS = [(0, 0), (0, 1), (1, 0), (1, 1)]

def test_lecture_gates():
    assert (logic.AND.weights, logic.AND.bias) == ((1.0, 1.0), -1.5)
    assert (logic.OR.weights, logic.OR.bias) == ((1.0, 1.0), -0.5)
    assert (logic.NOT.weights, logic.NOT.bias) == ((-1.0,), 0.5)
    assert [logic.AND(a, b) for a, b in ROWS] == [0, 0, 0, 1]
    assert [logic.OR(a, b) for a, b in ROWS] == [0, 1, 1, 1]
    assert [logic.NOT(a) for a in (0, 1)] == [1, 0]
    assert logic.AND(np.array(ROWS)).tolist() == [0, 0, 0, 1]     # a batch

def test_threshold_neuron_is_strict():
    n = logic.threshold_neuron([1, 1], -1)   # [x1 + x2 - 1 > 0]: z = 0 gives 0
    assert logic.truth_table(n, 2) == (0, 0, 0, 1)

def test_xor_network_is_exact_and_xor_is_not_one_neuron():
    net = logic.xor_network()
    assert [net(a, b) for a, b in ROWS] == [0, 1, 1, 0]
    assert net(np.array(ROWS)).tolist() == [0, 1, 1, 0]
    assert len(net.layers) == 2
    assert not logic.linearly_separable([0, 1, 1, 0])
    assert not logic.linearly_separable([1, 0, 0, 1])           # XNOR
    # the lecture's one-line variant [x1 + x2 - 2 x1 x2 - 1/2 > 0]
    assert [int(a + b - 2 * a * b - 0.5 > 0) for a, b in ROWS] == [0, 1, 1, 0]

def test_linearly_separable_returns_a_working_neuron():
    for table in [(0, 0, 0, 1), (0, 1, 1, 1), (1, 1, 0, 1), (0, 0, 0, 0, 0, 0, 0, 1)]:
        ok, neuron = logic.linearly_separable(table, return_weights=True)
        assert ok and logic.truth_table(neuron, int(np.log2(len(table)))) == table
    assert logic.linearly_separable({(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 1})
    assert logic.linearly_separable([0, 1, 1, 0], return_weights=True) == (False, None)

def _brute_force(n, w_range=range(-2, 3)):
    """Independent oracle: every table some integer-weight neuron computes."""
    X = logic.inputs(n)
    found = set()
    for w in itertools.product(w_range, repeat=n):
        for b2 in range(-2 * 2 * n - 1, 2 * 2 * n + 2, 2):   # half-integer biases b = b2 / 2
            found.add(tuple((X @ np.array(w) + b2 / 2 > 0).astype(int).tolist()))
    return found

@pytest.mark.parametrize("n,count", [(1, 4), (2, 14), (3, 104)])
def test_counts_of_separable_functions(n, count):
    sep = logic.separable_boolean_functions(n)
    assert len(sep) == count == len(set(sep))
    assert set(sep) == _brute_force(n)
    if n == 2:
        assert set(itertools.product([0, 1], repeat=4)) - set(sep) == {(0, 1, 1, 0), (1, 0, 0, 1)}

@pytest.mark.parametrize("call,exc,msg", [
    (lambda: logic.linearly_separable([0, 1, 1]), ValueError, "2\\*\\*n outputs"),
    (lambda: logic.linearly_separable([0, 2, 1, 0]), ValueError, "0/1"),
    (lambda: logic.linearly_separable({(0, 0): 1}), ValueError, "2\\*\\*n binary input"),
    (lambda: logic.separable_boolean_functions(5), ValueError, "from 1 to 4"),
    (lambda: logic.AND(1, 0, 1), ValueError, "2 input"),
    (lambda: logic.AND(2, 0), ValueError, "only 0/1"),
    (lambda: logic.threshold_neuron([], 0.0), ValueError, "non-empty"),
    (lambda: logic.threshold_neuron([1], float("nan")), ValueError, "bias must be a finite"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()

def test_public_name():
    assert nl.logic is logic
