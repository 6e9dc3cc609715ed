"""Vanishing gradients (§2.10, §4) and their cures, measured with nl.diagnostics.gradient_norms."""
import pytest
import torch
from torch import nn

import nnlab as nl

torch.set_num_threads(1)  # tiny tensors: threads only contend on the shared 2-core machine

SIZES = [8] + [16] * 19 + [1]      # 20 nn.Linear layers


def _ratios(seed=0, **kw):
    torch.manual_seed(seed)
    x, y = torch.randn(64, 8), torch.randn(64, 1)
    model = nl.MLP(SIZES, **kw)
    g = list(nl.diagnostics.gradient_norms(model, x, y, "mse").values())
    return g[0] / g[-1], g[0] / g[-2]       # first / head, first / last hidden layer


@pytest.mark.parametrize("seed", [0, 1])
def test_sigmoid_vanishes_and_the_cures_close_the_gap(seed):
    base_head, base_hidden = _ratios(seed, activation="sigmoid", init="xavier")
    assert base_head < 1e-8 and base_hidden < 1e-8        # orders of magnitude below
    relu_head, relu_hidden = _ratios(seed, activation="relu", init="he")
    bn_head, bn_hidden = _ratios(seed, activation="sigmoid", init="xavier", batchnorm=True)
    res_head, res_hidden = _ratios(seed, activation="sigmoid", init="xavier", residual=True)
    assert relu_head > 0.05 and relu_hidden > 0.05
    assert bn_head > 0.05 and bn_hidden > 0.05
    # with residuals the sigmoid outputs pile up in the stream, so the head (reading a large
    # input) gets a larger gradient; between hidden blocks the gap is closed
    assert res_hidden > 1e-2 and res_head > 1e-3
    assert min(relu_head, bn_head, res_head) > 1e5 * base_head


def test_order_names_and_grads_untouched():
    torch.manual_seed(0)
    model = nl.MLP([3, 4, 4, 2], residual=True)
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    norms = nl.diagnostics.gradient_norms(model, x, y, "cross_entropy")
    assert list(norms) == ["0.block.0", "0.projection", "1.block.0", "2"]
    assert all(p.grad is None for p in model.parameters())
    # compare with autograd through .backward()
    nn.functional.cross_entropy(model(x), y).backward()
    assert abs(norms["2"] - model[2].weight.grad.norm().item()) < 1e-6
    withb = nl.diagnostics.gradient_norms(model, x, y, "cross_entropy", include_bias=True)
    expected = torch.cat([model[2].weight.grad.flatten(), model[2].bias.grad]).norm().item()
    assert abs(withb["2"] - expected) < 1e-6


def test_dense_layers_and_callable_loss():
    torch.manual_seed(0)
    net = nn.Sequential(nl.Dense(3, 4, "tanh"), nl.Dense(4, 1, "sigmoid"))
    x, y = torch.randn(6, 3), torch.rand(6, 1)
    norms = nl.diagnostics.gradient_norms(net, x, y, lambda out, t: ((out - t) ** 2).sum())
    assert list(norms) == ["0", "1"]
    ((net(x) - y) ** 2).sum().backward()
    assert abs(norms["0"] - net[0].A.grad.norm().item()) < 1e-6


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: nl.diagnostics.gradient_norms("m", 0, 0), TypeError, "nn.Module"),
    (lambda: nl.diagnostics.gradient_norms(nn.Linear(2, 1), torch.zeros(2, 2), torch.zeros(2, 1), "hinge"),
     ValueError, "unknown loss 'hinge'"),
    (lambda: nl.diagnostics.gradient_norms(nn.Linear(2, 1), torch.zeros(2, 2), torch.zeros(2, 1), 3),
     TypeError, "loss must be"),
    (lambda: nl.diagnostics.gradient_norms(nn.ReLU(), torch.zeros(2, 2), torch.zeros(2, 2)),
     ValueError, "no nn.Linear"),
    # were torch's own errors from inside the forward or the loss, or NaN norms:
    (lambda: nl.diagnostics.gradient_norms(nn.Linear(2, 3), torch.zeros(4, 5), torch.zeros(4, 3)),
     ValueError, r"cannot take data samples of shape \(5,\)"),
    (lambda: nl.diagnostics.gradient_norms(nn.Linear(2, 3), torch.zeros(4, 2), torch.zeros(4, 2)),
     ValueError, r"data y has shape \(2,\) per sample but the model outputs \(3,\)"),
    (lambda: nl.diagnostics.gradient_norms(nn.Linear(2, 3), torch.zeros(4, 2), torch.rand(4), "cross_entropy"),
     TypeError, "integer class labels"),
    (lambda: nl.diagnostics.gradient_norms(nn.Linear(2, 3), torch.zeros(4, 2), torch.full((4,), 9), "cross_entropy"),
     ValueError, r"labels must be in \[0, 2\]"),
    (lambda: nl.diagnostics.gradient_norms(nn.Linear(2, 3), torch.full((4, 2), float("nan")), torch.zeros(4, 3)),
     ValueError, "NaN/inf"),
    (lambda: nl.diagnostics.gradient_norms(nn.Linear(2, 3), torch.zeros(4, 2), torch.zeros(3, 3)),
     ValueError, "4 rows but data y has 3"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
