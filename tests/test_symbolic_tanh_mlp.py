"""The NumPy L-BFGS fit of the decomposition's tanh MLPs (nnlab.symbolic.tanh_mlp)."""
import time

import numpy as np
import pytest
import torch
from torch import nn

from nnlab.symbolic.power_factor import fit_power_factors
from nnlab.symbolic.surrogate import fit_surrogate
from nnlab.symbolic.tanh_mlp import _pack, _shapes, fit_tanh_mlp, mlp_loss_and_grad
from nnlab.symbolic.train import Interrupted


def _net(n, h=6, seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n, h), nn.Tanh(), nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1)).double()


@pytest.mark.parametrize("extras", [False, True])
def test_loss_and_gradient_equal_autograd(extras):
    """The §2.7 backward equals autograd's gradient of the same loss (and the loss equals torch's)."""
    rng = np.random.default_rng(1)
    U, T = rng.normal(size=(40, 3)), rng.normal(size=(40, 1))
    net = _net(3)
    lin = nn.Linear(2, 1, bias=False).double() if extras else None
    L = rng.normal(size=(40, 2)) if extras else None
    w = rng.uniform(0.2, 1.0, size=(40, 1)) if extras else None
    loss, grad = mlp_loss_and_grad(_pack(net, lin), _shapes(net, lin), U, T, L, w)
    pred = net(torch.from_numpy(U))
    if extras:
        pred = torch.from_numpy(w) * (pred + lin(torch.from_numpy(L)))
    ref = torch.mean((pred - torch.from_numpy(T)) ** 2)
    ref.backward()
    want = []
    for m in (net[0], net[2], net[4]):
        want += [m.weight.grad.numpy().T.ravel(), m.bias.grad.numpy()]
    if extras:
        want.append(lin.weight.grad.numpy().ravel())
    assert loss == pytest.approx(float(ref.detach()), rel=1e-12)
    np.testing.assert_allclose(grad, np.concatenate(want), rtol=1e-10, atol=1e-14)


def test_gradient_passes_finite_differences():
    """An oracle independent of torch: the gradient against central differences of the loss."""
    rng = np.random.default_rng(2)
    U, T = rng.normal(size=(30, 2)), rng.normal(size=(30, 1))
    net = _net(2, h=4)
    shapes, p = _shapes(net, None), _pack(net, None)
    h, eye = 1e-6, np.eye(len(p))
    numeric = [(mlp_loss_and_grad(p + h * e, shapes, U, T)[0] - mlp_loss_and_grad(p - h * e, shapes, U, T)[0]) / (2 * h)
               for e in eye]
    np.testing.assert_allclose(mlp_loss_and_grad(p, shapes, U, T)[1], numeric, rtol=1e-6, atol=1e-9)


def test_fit_learns_a_smooth_function_and_writes_the_weights_back():
    rng = np.random.default_rng(3)
    U = rng.uniform(-1, 1, size=(200, 2))
    T = (np.sin(2 * U[:, 0]) * U[:, 1])[:, None]
    net = _net(2, h=16)
    before = torch.mean((net(torch.from_numpy(U)) - torch.from_numpy(T)) ** 2).item()
    loss = fit_tanh_mlp(net, U, T, 300)
    after = torch.mean((net(torch.from_numpy(U)) - torch.from_numpy(T)) ** 2).item()
    assert after == pytest.approx(loss, rel=1e-9)  # the module now holds the fitted weights
    assert loss < 1e-4 < before


def test_fit_is_a_pure_function_of_its_inputs():
    rng = np.random.default_rng(4)
    U, T = rng.uniform(-1, 1, size=(80, 3)), rng.normal(size=(80, 1))
    a, b = _net(3, seed=5), _net(3, seed=5)
    assert fit_tanh_mlp(a, U, T, 60) == fit_tanh_mlp(b, U, T, 60)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_stop_interrupts_and_a_passed_deadline_ends_the_fit():
    rng = np.random.default_rng(6)
    U, T = rng.uniform(-1, 1, size=(80, 2)), rng.normal(size=(80, 1))
    asked = []
    with pytest.raises(Interrupted):
        fit_tanh_mlp(_net(2), U, T, 500, stop=lambda: asked.append(1) or True)
    assert len(asked) == 1  # asked once, at the 10th iteration
    net = _net(2)
    t0 = time.monotonic()
    loss = fit_tanh_mlp(net, U, T, 10 ** 6, deadline=time.monotonic() - 1.0)
    assert time.monotonic() - t0 < 1.0 and np.isfinite(loss)  # one iteration, not a million


def test_bad_arguments_are_named():
    U, T = np.zeros((10, 2)), np.zeros((10, 1))
    with pytest.raises(ValueError, match="Linear, Tanh"):
        fit_tanh_mlp(nn.Sequential(nn.Linear(2, 1)).double(), U, T, 5)
    with pytest.raises(ValueError, match="linear term"):
        fit_tanh_mlp(_net(2), U, T, 5, L=np.zeros((10, 1)))


def test_surrogate_and_power_factors_fit_with_it():
    """The decomposition's two users: a surrogate of a smooth law within 1 %, and the exponents of a
    product of powers times a function of one variable, read by the partly linear fit."""
    rng = np.random.default_rng(7)
    X = rng.uniform(1, 3, size=(300, 3))
    y = X[:, 0] ** 2 * X[:, 1] * np.sin(X[:, 2])
    sur = fit_surrogate(X, y, steps=400)
    assert sur.error < 1e-2
    p, err = fit_power_factors(X, y, rest=[2], steps=400)
    np.testing.assert_allclose(p, [2.0, 1.0], atol=0.02)
    assert err < 1e-2
