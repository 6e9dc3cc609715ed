import pytest
import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

import nnlab as nl
from nnlab.prune import hessian as H


def tiny(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 3))


def data(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randint(0, 3, (n,), generator=g)


def autograd_diag(model, X, y, name, loss=F.cross_entropy):
    p = {k: v.detach() for k, v in model.named_parameters()}

    def f(w):
        return loss(functional_call(model, {**p, name: w}, (X,)), y)

    h = torch.autograd.functional.hessian(f, p[name])
    n = p[name].numel()
    return h.reshape(n, n).diagonal().view_as(p[name])


def test_exact_diagonal_equals_autograd_hessian():
    m, (X, y) = tiny(), data()
    d = H.exact(m, X, y, "cross_entropy")
    for layer in ("0", "2"):
        assert torch.allclose(d[layer], autograd_diag(m, X, y, f"{layer}.weight"), atol=1e-6)


@pytest.mark.parametrize("loss", ["cross_entropy", "mse"])
def test_gauss_newton_equals_hessian_for_a_linear_model(loss):
    torch.manual_seed(1)
    m = nn.Sequential(nn.Linear(3, 3))
    X, y = data()
    if loss == "mse":
        y = torch.randn(len(X), 3)
    gn = H.gauss_newton(m, X, y, loss)["0"]
    lf = F.cross_entropy if loss == "cross_entropy" else F.mse_loss
    assert torch.allclose(gn, autograd_diag(m, X, y, "0.weight", lf), atol=1e-6)


def test_fisher_equals_mean_squared_per_sample_gradient():
    m, (X, y) = tiny(), data(10)
    fi = H.fisher(m, X, y, "cross_entropy", batch_size=4)
    acc = [torch.zeros_like(m[0].weight), torch.zeros_like(m[2].weight)]
    for i in range(len(X)):
        m.zero_grad()
        F.cross_entropy(m(X[i:i + 1]), y[i:i + 1]).backward()
        acc[0] += m[0].weight.grad ** 2
        acc[1] += m[2].weight.grad ** 2
    assert torch.allclose(fi["0"], acc[0] / len(X), atol=1e-7)
    assert torch.allclose(fi["2"], acc[1] / len(X), atol=1e-7)


def test_hutchinson_converges_to_exact():
    m, (X, y) = tiny(), data()
    ex = H.exact(m, X, y)
    hu = H.hutchinson(m, X, y, n_samples=3000, seed=0, chunk=1000)
    for k in ex:
        err = (hu[k] - ex[k]).abs().max()
        assert err < 0.15 * ex[k].abs().max() + 2e-3


def test_estimators_on_masked_model_use_effective_weights():
    m, (X, y) = tiny(), data()
    nl.prune.magnitude(m, 0.5)
    d = H.exact(m, X, y)
    ref = tiny()
    ref.load_state_dict({k.replace("_orig", ""): v for k, v in m.state_dict().items() if "mask" not in k})
    with torch.no_grad():
        ref[0].weight.copy_(m[0].weight)
        ref[2].weight.copy_(m[2].weight)
    assert torch.allclose(d["0"], autograd_diag(ref, X, y, "0.weight"), atol=1e-6)
    assert hasattr(m[0], "weight_mask")  # the model itself is untouched


def test_obd_prunes_lowest_saliency():
    m, (X, y) = tiny(), data()
    w = {k: m[int(k)].weight.detach().clone() for k in ("0", "2")}
    ex = H.exact(m, X, y)
    sal = torch.cat([(w[k] ** 2 * ex[k] / 2).reshape(-1) for k in ("0", "2")])
    nl.prune.obd(m, (X, y), "cross_entropy", 0.4, hessian="exact")
    got = torch.cat([m[0].weight_mask.reshape(-1), m[2].weight_mask.reshape(-1)])
    expect = torch.ones_like(sal)
    expect[torch.topk(sal, round(0.4 * len(sal)), largest=False).indices] = 0
    assert torch.equal(got, expect)


@pytest.mark.parametrize("hess", ["gauss_newton", "fisher", "hutchinson"])
def test_obd_estimators_reach_target(hess):
    m, (X, y) = tiny(), data()
    nl.prune.obd(m, (X, y), "cross_entropy", 0.5, hessian=hess, scope="layer")
    assert nl.prune.sparsity(m).overall == pytest.approx(0.5, abs=0.02)


def test_obd_bad_input():
    m, (X, y) = tiny(), data()
    with pytest.raises(ValueError, match="unknown hessian"):
        nl.prune.obd(m, (X, y), "cross_entropy", 0.5, hessian="full")
    with pytest.raises(ValueError, match="columns but the model"):
        nl.prune.obd(m, (torch.randn(16, 5), y), "cross_entropy", 0.5)
    with pytest.raises(ValueError, match="rows"):
        nl.prune.obd(m, (X, y[:5]), "cross_entropy", 0.5)
    with pytest.raises(ValueError, match="unknown loss"):
        nl.prune.obd(m, (X, y), "hinge", 0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        nl.prune.obd(m, (X, y), "cross_entropy", 1.0)
    with pytest.raises(ValueError, match="max_weights"):
        H.exact(m, X, y, max_weights=10)
    with pytest.raises(ValueError, match="n_samples"):
        H.hutchinson(m, X, y, n_samples=0)
