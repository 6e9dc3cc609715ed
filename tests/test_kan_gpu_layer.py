"""The KAN layer's Triton route (nnlab.kan.gpu_layer), run on CPU tensors in Triton's interpreter:
the same values and gradients as the eager code, gradcheck in float64, the packed weight and its
chain rule, and the grid-range / NaN flag word of the features kernel."""
import pytest
import torch

from nnlab.kan import KANLayer, gpu, gpu_layer, kernel, native, routes, spline  # Triton: test extra


@pytest.fixture
def interpret(monkeypatch):
    monkeypatch.setenv("NNLAB_TRITON", "interpret")
    yield
    native._reset()


def _layer(base, recompute=False, seed=0, shape=(4, 3, 5)):
    torch.manual_seed(seed)
    L = KANLayer(shape[0], shape[1], grid=shape[2], k=3, base=base, recompute=recompute).double()
    with torch.no_grad():
        L.mask[1, -1] = 0.0
        L.scale_spline.mul_(1.3)
        L.coef.normal_()
    return L


@pytest.mark.parametrize("base, recompute", [("silu", False), (None, False), ("tanh", True)])
def test_triton_route_equals_eager(interpret, monkeypatch, base, recompute):
    L = _layer(base, recompute)
    x = (torch.rand(30, 4, dtype=torch.float64) * 2 - 1).requires_grad_()
    assert routes.describe(x, L.knots, 3, True).startswith("Triton")
    assert gpu_layer.layer_forward(L, x) is not None  # the route is taken, not the fallback
    y = L(x)
    gy = torch.randn_like(y)
    y.backward(gy)
    monkeypatch.setenv("NNLAB_TRITON", "")
    monkeypatch.setenv("NNLAB_NATIVE", "0")
    native._reset()
    R = _layer(base)
    xr = x.detach().clone().requires_grad_()
    yr = R(xr)
    yr.backward(gy)
    assert torch.allclose(y, yr, atol=1e-13)
    assert torch.allclose(x.grad, xr.grad, atol=1e-12)
    for name in ("coef", "scale_base", "scale_spline"):
        assert torch.allclose(getattr(L, name).grad, getattr(R, name).grad, atol=1e-12), name
    with torch.no_grad():  # the forward-only branch
        monkeypatch.setenv("NNLAB_TRITON", "interpret")
        assert torch.allclose(L(x), yr, atol=1e-13)


@pytest.mark.parametrize("base", ["silu", "tanh"])
def test_triton_route_gradcheck(interpret, base):
    L = _layer(base, shape=(2, 2, 3))
    x = torch.rand(4, 2, dtype=torch.float64) * 2.4 - 1.2  # some points beyond the grid

    def f(x, c, sb, ss):
        fast = routes.setup(x.detach().contiguous(), L.knots, 3, True)
        assert fast.kind == "triton"
        return gpu_layer._TritonKAN.apply(x, c, sb, ss, L.mask, fast, 3, base, None, True)
    args = [t.detach().clone().requires_grad_() for t in (x, L.coef, L.scale_base, L.scale_spline)]
    assert torch.autograd.gradcheck(f, args)


def test_pack_and_unpack_are_layer_weights_and_its_chain_rule(interpret):
    L = _layer("silu")
    O, I, K = L.coef.shape
    W = torch.empty(O, K + 1, I, dtype=torch.float64)
    gpu.pack_weights(L.coef, L.scale_base, L.scale_spline, L.mask, W)
    ref = kernel.layer_weights(L.coef, L.scale_base, L.scale_spline, L.mask)
    assert torch.equal(W, ref)
    gW = torch.randn(O, K + 1, I, dtype=torch.float64)
    ps = [p.detach().clone().requires_grad_() for p in (L.coef, L.scale_base, L.scale_spline)]
    torch.autograd.backward(kernel.layer_weights(*ps, L.mask), gW)
    gc, gsb, gss = (torch.empty_like(p) for p in ps)
    gpu.unpack_grads(gW, L.coef, L.scale_spline, L.mask, gc, gsb, gss)
    for got, p in zip((gc, gsb, gss), ps):
        assert torch.allclose(got, p.grad, atol=1e-13)
    only = torch.empty_like(gsb)
    gpu.unpack_grads(gW, L.coef, L.scale_spline, L.mask, None, only, None)  # one of the three
    assert torch.allclose(only, ps[1].grad, atol=1e-13)


def test_features_flag_word_marks_outside_and_nonfinite(interpret):
    G, k, I = 5, 3, 3
    K = G + k
    knots = spline.uniform_knots(-1, 1, G, k).expand(I, -1).contiguous()
    fast = routes.setup(torch.zeros(2, I), knots, k, True)
    out = torch.empty(8, K + 1, I)

    def bits(x):
        flag = torch.zeros(1, dtype=torch.int32)
        gpu.features(x.contiguous(), fast.t0, fast.inv_h, fast.M, k, K, "silu", out, flag)
        return int(flag)
    inside = torch.rand(8, I) * 2 - 1
    inside[0] = 1.0  # the grid's ends count as inside
    inside[1] = -1.0
    assert bits(inside) == 0
    outside = inside.clone()
    outside[3, 1] = 1.01
    assert bits(outside) == 1
    nan = inside.clone()
    nan[5, 2] = float("nan")
    assert bits(nan) == 2
    both = outside.clone()
    both[6, 0] = float("-inf")
    assert bits(both) == 3


def test_layer_on_the_triton_route_still_refuses_bad_input(interpret):
    L = KANLayer(3, 2, grid=4)
    with pytest.raises(ValueError, match="NaN"):
        L(torch.tensor([[0.1, float("nan"), 0.2]]))
    with pytest.raises(ValueError, match="input must be"):
        L(torch.zeros(4, 2))
    with pytest.warns(UserWarning, match="grid range"):
        L(torch.full((4, 3), 3.0))
