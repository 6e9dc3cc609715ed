import numpy as np
import pytest
import torch
from torch import nn

import nnlab as nl

torch.set_num_threads(1)  # tiny tensors: threads only contend on the shared 2-core machine


def test_layout_contract():
    m = nl.MLP([3, 8, 8, 2])
    assert isinstance(m, nn.Sequential) and len(m) == 3 and m.sizes == [3, 8, 8, 2]
    for block, (i, o) in zip(m[:-1], [(3, 8), (8, 8)]):
        assert isinstance(block, nn.Sequential) and len(block) == 2
        assert isinstance(block[0], nn.Linear) and (block[0].in_features, block[0].out_features) == (i, o)
        assert isinstance(block[1], nl.activations.Activation) and block[1].name == "relu"
    assert type(m[-1]) is nn.Linear and (m[-1].in_features, m[-1].out_features) == (8, 2)
    assert m(torch.randn(5, 3)).shape == (5, 2)
    assert m[:-1](torch.randn(5, 3)).shape == (5, 8)      # feature extractor
    # every weight lives in a plain nn.Linear
    linear_params = {id(p) for l in m.modules() if isinstance(l, nn.Linear) for p in l.parameters()}
    assert linear_params == {id(p) for p in m.parameters()}


def test_batchnorm_dropout_and_residual_layout():
    m = nl.MLP([3, 8, 8, 1], activation="tanh", batchnorm=True, residual=True, dropout=0.1)
    r0, r1 = m[0], m[1]
    assert isinstance(r0, nl.Residual) and isinstance(r1, nl.Residual)
    assert [type(c) for c in r0.block] == [nn.Linear, nn.BatchNorm1d, nl.activations.Activation, nn.Dropout]
    assert isinstance(r0.projection, nn.Linear) and r0.projection.bias is None
    assert (r0.projection.in_features, r0.projection.out_features) == (3, 8)
    assert r1.projection is None
    assert type(m[-1]) is nn.Linear
    m.eval()
    x = torch.randn(4, 3)
    h0 = r0.block(x) + r0.projection(x)
    torch.testing.assert_close(r0(x), h0)
    torch.testing.assert_close(r1(h0), r1.block(h0) + h0)    # H(x) = F(x) + x


def test_two_sizes_is_just_the_head_and_activation_factories():
    m = nl.MLP([4, 2])
    assert len(m) == 1 and type(m[0]) is nn.Linear
    m = nl.MLP(np.array([2, 5, 1]), activation=nn.GELU)
    assert isinstance(m[0][1], nn.GELU) and m.sizes == [2, 5, 1]
    p = nl.MLP([2, 4, 4, 1], activation="prelu")
    assert p[0][1].alpha is not p[1][1].alpha            # one learnable α per layer


@pytest.mark.parametrize("init,var", [("he", lambda fi, fo: 2 / fi), ("xavier", lambda fi, fo: 2 / (fi + fo))])
def test_init_schemes(init, var):
    torch.manual_seed(0)
    m = nl.MLP([300, 400, 10], init=init)
    w = m[0][0].weight
    assert abs(w.var().item() / var(300, 400) - 1) < 0.05
    assert torch.count_nonzero(m[0][0].bias) == 0
    torch.manual_seed(0)
    d = nl.MLP([300, 400, 10], init="default")
    ref = nn.Linear(300, 400)
    assert abs(d[0][0].weight.var().item() / ref.weight.var().item() - 1) < 0.05


def test_a_tiny_mlp_learns_xor():
    torch.manual_seed(0)
    X = torch.tensor([[0.0, 0], [0, 1], [1, 0], [1, 1]])
    y = torch.tensor([0, 1, 1, 0])
    m = nl.MLP([2, 8, 2], activation="tanh", init="xavier")
    opt = torch.optim.Adam(m.parameters(), lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        nn.functional.cross_entropy(m(X), y).backward()
        opt.step()
    assert torch.equal(m(X).argmax(1), y)


def test_residual_identity_gradient():
    block = nn.Sequential(nn.Linear(3, 3), nn.Tanh())
    nn.init.zeros_(block[0].weight)
    nn.init.zeros_(block[0].bias)
    r = nl.Residual(block)
    x = torch.randn(2, 3, requires_grad=True)
    r(x).sum().backward()
    torch.testing.assert_close(x.grad, torch.ones(2, 3))   # F ≡ 0: H is the identity


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: nl.MLP([3]), ValueError, "at least 2 widths"),
    (lambda: nl.MLP([3, 0, 1]), ValueError, ">= 1"),
    (lambda: nl.MLP([3, 2.5, 1]), TypeError, "must be an int"),
    (lambda: nl.MLP("3,4"), TypeError, "list of layer widths"),
    (lambda: nl.MLP([3, 4, 1], activation="gelu"), ValueError, "unknown activation 'gelu'"),
    (lambda: nl.MLP([3, 4, 1], activation=5), TypeError, "activation must be a name"),
    (lambda: nl.MLP([3, 4, 1], init="lecun"), ValueError, "unknown init scheme"),
    (lambda: nl.MLP([3, 4, 1], dropout=1.0), ValueError, r"probability in \[0, 1\)"),
    (lambda: nl.Residual("block"), TypeError, "nn.Module"),
    (lambda: nl.Residual(nn.Linear(3, 4))(torch.zeros(2, 3)), ValueError, r"projection=nn.Linear\(3, 4"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
