"""Native (C) uniform-grid feature kernels: same numbers as the eager code, gradcheck, fallback."""
import pytest
import torch

from nnlab.kan import kernel, native, spline


@pytest.fixture
def eager(monkeypatch):
    """Run a block with the native kernels switched off (NNLAB_NATIVE=0), restoring them after."""
    class Ctx:
        def __enter__(self):
            monkeypatch.setenv("NNLAB_NATIVE", "0")
            native._reset()

        def __exit__(self, *a):
            monkeypatch.delenv("NNLAB_NATIVE")
            native._reset()
    yield Ctx()
    native._reset()


needs_native = pytest.mark.skipif(not native.available(),
                                  reason=f"native kernels unavailable: {native.reason()}")


def _points(knots, B, span, dtype):
    torch.manual_seed(1)
    x = (torch.rand(B, knots.shape[0], dtype=dtype) * 2 - 1) * span
    x[0], x[1], x[2] = knots[:, 0], knots[:, -1], knots[:, knots.shape[1] // 2]  # knots exactly
    return x


@needs_native
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
def test_features_match_cox_de_boor_inside_and_outside(k, dtype, tol):
    G, I, B = 4, 3, 64
    K = G + k
    knots = spline.uniform_knots(-1, 1, G, k, dtype=dtype).expand(I, -1).contiguous()
    x = _points(knots, B, 1.0 + 0.6 * k, dtype)  # reaches beyond the extended knots
    for base in ("silu", None, "tanh"):
        nat = kernel._native_setup(x, knots, k, True, base)
        assert nat is not None
        F = kernel.features(x, knots, k, True, base, nat=nat).view(B, K + 1, I)
        ref = spline.cox_de_boor(x.double(), knots.double(), k).transpose(1, 2)
        assert (F[:, :K].double() - ref).abs().max() <= tol
        eager_F = kernel.features(x, knots, k, False, base).view(B, K + 1, I)  # generic route
        assert (F[:, K] - eager_F[:, K]).abs().max() <= tol


@needs_native
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("k, base, recompute", [(1, "silu", False), (2, None, True),
                                                (3, "silu", True), (4, "tanh", False),
                                                (5, "silu", False)])
def test_native_equals_eager_values_and_gradients(eager, k, base, recompute, dtype, tol):
    from nnlab.kan import KANLayer
    torch.manual_seed(0)
    layer = KANLayer(3, 2, grid=4, k=k, base=base).to(dtype)
    layer.recompute = recompute
    x = (torch.rand(40, 3, dtype=dtype) * 2 - 1) * 1.8  # partly outside the grid

    def run():
        layer.zero_grad()
        xx = x.clone().requires_grad_(True)
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            y = layer(xx)
        (y * torch.linspace(-1, 1, y.numel(), dtype=dtype).view_as(y)).sum().backward()
        return [y.detach(), xx.grad, layer.coef.grad.clone(), layer.scale_base.grad.clone(),
                layer.scale_spline.grad.clone()]

    nat = run()
    with eager:
        assert not native.available()
        ref = run()
    for a, b in zip(nat, ref):
        assert (a - b).abs().max() <= tol * max(1.0, b.abs().max().item())


@needs_native
@pytest.mark.parametrize("k", [1, 3])
def test_native_gradcheck_in_and_out_of_grid(k):
    torch.manual_seed(0)
    G, I, O = 3, 2, 2
    K = G + k
    knots = spline.uniform_knots(-1, 1, G, k, dtype=torch.float64).expand(I, -1).contiguous()
    x = (torch.rand(6, I, dtype=torch.float64) * 2 - 1) * 1.9
    x.requires_grad_(True)
    coef = torch.randn(O, I, K, dtype=torch.float64, requires_grad=True)
    sb = torch.randn(O, I, dtype=torch.float64, requires_grad=True)
    ss = torch.randn(O, I, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(O, I, dtype=torch.float64)
    assert kernel._native_setup(x, knots, k, True, "silu") is not None
    for recompute in (False, True):
        f = lambda x, c, b, s: kernel.kan_forward(  # noqa: E731
            x, c, b, s, mask, knots, k, True, "silu", recompute)
        assert torch.autograd.gradcheck(f, (x, coef, sb, ss))


def test_fallback_when_compiler_missing(monkeypatch, tmp_path):
    from nnlab.kan import KANLayer
    monkeypatch.setattr(native, "COMPILER", "nnlab-no-such-cc")
    monkeypatch.setenv("NNLAB_CACHE", str(tmp_path))
    native._reset()
    try:
        assert not native.available()
        assert "nnlab-no-such-cc" in native.reason()
        torch.manual_seed(0)
        layer = KANLayer(2, 3).double()
        x = (torch.rand(5, 2, dtype=torch.float64) * 2 - 1).requires_grad_(True)
        assert kernel._native_setup(x, layer.knots, 3, True, "silu") is None
        y = layer(x)
        assert torch.allclose(y, layer.edge_activations(x).sum(-1), atol=1e-10)
        assert torch.autograd.gradcheck(layer, (x,))
    finally:
        native._reset()
