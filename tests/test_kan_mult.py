"""MultKAN: multiplication nodes make products of signed factors representable (KAN 2.0)."""
import numpy as np
import pytest
import sympy
import torch

import nnlab as nl
from nnlab.kan.mult import multiply_nodes
from nnlab.symbolic import SymbolicEdges, formula
from nnlab.symbolic.train import train_lbfgs

torch.set_num_threads(1)


def _data(n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = 4 * torch.rand(n, 2, generator=g, dtype=torch.float64) - 2  # [-2, 2]: both factors change sign
    return X, (3 * torch.sin(X[:, 0]) * X[:, 1] ** 2)[:, None]


def _symbolic_multkan(params):
    model = nl.MultKAN([2, 1, 1], mult=1, grid_range=(-2, 2)).double()
    plan = ([(0, 0, "sin", params[0]), (1, 1, "x^2", params[1])], [(0, 0, "x", params[2])])
    for layer, edges in zip(model.layers, plan):
        layer.symbolic = SymbolicEdges(layer.in_dim, layer.out_dim).double()
        for o, i, name, p in edges:
            layer.symbolic.set_edge(o, i, name, p)
        with torch.no_grad():
            layer.mask.zero_()
    return model


def test_multiply_nodes_pairs_the_last_sums():
    s = torch.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]])
    assert multiply_nodes(s, 2).tolist() == [[1.0, 6.0, 20.0]]
    assert multiply_nodes(s, 0) is s


def test_signed_product_is_representable_exactly_and_composes():
    model = _symbolic_multkan([(1.0, 0.0, 1.0, 0.0), (1.0, 0.0, 1.0, 0.0), (1.0, 0.0, 3.0, 0.0)])
    assert [(layer.in_dim, layer.out_dim) for layer in model.layers] == [(2, 2), (1, 1)]
    X, y = _data()
    model.update_grid(X)  # the splines are off; this only moves the grids to where the inputs are
    with torch.no_grad():
        torch.testing.assert_close(model(X), y, rtol=0, atol=1e-12)
    x1, x2 = sympy.symbols("x1 x2")
    assert sympy.simplify(sympy.nsimplify(formula(model, ["x1", "x2"])) - 3 * sympy.sin(x1) * x2 ** 2) == 0


def test_refit_through_a_multiplication_node_recovers_the_constants():
    """§6.3 step 4 (refit the affine parameters) works through the product: from perturbed
    constants, L-BFGS lands on the exact law again (an additive KAN [2, 1] cannot represent it)."""
    X, y = _data()
    model = _symbolic_multkan([(1.1, 0.1, 0.8, 0.05), (0.9, -0.1, 1.2, 0.1), (1.0, 0.0, 2.5, 0.2)])
    model.update_grid(X)
    train_lbfgs(model, X, y, steps=200)
    with torch.no_grad():
        rel = float(torch.sqrt(torch.mean((model(X) - y) ** 2) / torch.mean(y ** 2)))
    assert rel < 1e-8
    sym0 = model.layers[0].symbolic
    assert abs(abs(float(sym0.a[0, 0])) - 1) < 1e-6  # sin(a·x1 + b): a back to ±1


def test_mult_counts_are_checked():
    with pytest.raises(ValueError, match="mult"):
        nl.MultKAN([2, 1, 1], mult=[1, 1])
    with pytest.raises(ValueError, match="mult"):
        nl.MultKAN([2, 1, 1], mult=2)
