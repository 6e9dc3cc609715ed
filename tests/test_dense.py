import pytest
import torch

import nnlab as nl

torch.set_num_threads(1)  # tiny tensors: threads only contend on the shared 2-core machine
from nnlab.activations import get, names
from nnlab.layers.dense import DenseFunction, dense_backward, dense_forward

DIFFERENTIABLE = [n for n in names() if get(n).differentiable]


def _layer(act, n_in=4, n_out=3, seed=0, **kw):
    torch.manual_seed(seed)
    return nl.Dense(n_in, n_out, activation=act, **kw).double()


@pytest.mark.parametrize("act", DIFFERENTIABLE)
def test_gradcheck_every_differentiable_activation(act):
    layer = _layer(act)
    torch.manual_seed(1)
    X = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    a = layer.activation
    inputs = (X, layer.A, layer.b, a.spec, a.static, *a.learnable_params())
    assert torch.autograd.gradcheck(DenseFunction.apply, inputs, eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("act", DIFFERENTIABLE)
def test_matches_autograd_of_the_plain_formula(act):
    layer = _layer(act)
    X = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    dY = torch.randn(6, 3, dtype=torch.float64)
    Y = layer(X)
    params = [X, *layer.parameters()]
    g_explicit = torch.autograd.grad(Y, params, dY)
    ref = layer.activation(X @ layer.A + layer.b)  # autograd through the activation module
    g_auto = torch.autograd.grad(ref, params, dY)
    torch.testing.assert_close(Y, ref)
    for a, b in zip(g_explicit, g_auto):
        torch.testing.assert_close(a, b)


def test_pure_backward_formulas_of_section_2_7():
    torch.manual_seed(0)
    X, A, b = torch.randn(5, 4), torch.randn(4, 3), torch.randn(3)
    spec = get("tanh")
    Y, S = dense_forward(X, A, b, spec, {})
    torch.testing.assert_close(S, X @ A + b)
    dY = torch.randn(5, 3)
    dX, dA, db, dS = dense_backward(dY, X, A, S, spec, {})
    torch.testing.assert_close(dS, dY * (1 - torch.tanh(S) ** 2))
    torch.testing.assert_close(db, dS.sum(0))
    torch.testing.assert_close(dA, X.T @ dS)
    torch.testing.assert_close(dX, dS @ A.T)


def test_prelu_alpha_trains_in_the_explicit_backward():
    layer = _layer("prelu", activation_params={"alpha": 0.2})
    X = torch.randn(8, 4, dtype=torch.float64)
    layer(X).sum().backward()
    S = (X @ layer.A + layer.b).detach()
    torch.testing.assert_close(layer.activation.alpha.grad, torch.clamp(S, max=0).sum())


def test_step_layer_passes_no_gradient():
    layer = _layer("step")
    X = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    Y = layer(X)
    assert set(Y.unique().tolist()) <= {0.0, 1.0}
    Y.sum().backward()
    assert torch.count_nonzero(X.grad) == 0 and torch.count_nonzero(layer.A.grad) == 0


def test_no_bias_and_init_variances():
    layer = nl.Dense(3, 2, bias=False)
    assert layer.b is None and [n for n, _ in layer.named_parameters()] == ["A"]
    X = torch.randn(4, 3, requires_grad=True)
    layer(X).sum().backward()
    assert layer.A.grad.shape == (3, 2) and X.grad.shape == (4, 3)
    torch.manual_seed(0)
    he = nl.Dense(400, 300, init="he")
    xa = nl.Dense(400, 300, init="xavier")
    assert abs(he.A.var().item() / (2 / 400) - 1) < 0.05
    assert abs(xa.A.var().item() / (2 / 700) - 1) < 0.05
    assert torch.count_nonzero(he.b) == 0


def test_a_dense_network_learns_xor():
    torch.manual_seed(0)
    X = torch.tensor([[0.0, 0], [0, 1], [1, 0], [1, 1]])
    y = torch.tensor([[0.0], [1], [1], [0]])
    net = torch.nn.Sequential(nl.Dense(2, 8, "tanh", init="xavier"), nl.Dense(8, 1, "sigmoid", init="xavier"))
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.binary_cross_entropy(net(X), y).backward()
        opt.step()
    assert torch.equal((net(X) > 0.5).float(), y)


@pytest.mark.parametrize("args,exc,msg", [
    ((0, 3), ValueError, "n_in must be a positive integer"),
    ((3, 2.5), ValueError, "n_out must be a positive integer"),
    ((3, 2, "gelu"), ValueError, "unknown activation"),
    ((3, 2, "relu", "lecun"), ValueError, "unknown init scheme"),
])
def test_bad_construction(args, exc, msg):
    with pytest.raises(exc, match=msg):
        nl.Dense(*args)


def test_bad_input():
    layer = nl.Dense(3, 2)
    with pytest.raises(ValueError, match=r"shape \(batch, 3\) but got \(4, 5\)"):
        layer(torch.zeros(4, 5))
    with pytest.raises(ValueError, match="reshape"):
        layer(torch.zeros(3))
    with pytest.raises(TypeError, match="dtype"):
        layer(torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(TypeError, match="torch.Tensor"):
        layer([[0.0, 1.0, 2.0]])
