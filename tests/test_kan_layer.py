"""KANLayer: fused kernel vs plain autograd, gradcheck, grid update/extension, bad input."""
import warnings

import pytest
import torch

import nnlab as nl
from nnlab.kan import GridRangeWarning, KANLayer


def make(in_dim=3, out_dim=4, **kw):
    torch.manual_seed(0)
    layer = KANLayer(in_dim, out_dim, **kw).double()
    with torch.no_grad():
        layer.mask[0, 1] = 0.0
    return layer


@pytest.mark.parametrize("k, span, adapted", [
    (1, 0.9, False), (2, 1.6, False), (3, 0.9, False), (3, 1.6, False), (3, 0.9, True), (2, 1.6, True),
])  # span 0.9: inside the grid; 1.6: partly outside
def test_fast_equals_reference_and_gradcheck(k, span, adapted):
    layer = make(in_dim=2, out_dim=2, k=k, grid=3)
    x = (torch.rand(5, 2, dtype=torch.float64) * 2 - 1) * span
    if adapted:
        layer.update_grid(torch.rand(64, 2, dtype=torch.float64) * 2 - 1, grid_eps=0.3)
        assert not layer._uniform
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridRangeWarning)
        ref = layer.edge_activations(x).sum(-1)
        assert torch.allclose(layer(x), ref, atol=1e-7)
        x.requires_grad_(True)
        f = lambda x, c, sb, ss: layer.__class__.forward(  # noqa: E731
            _with(layer, c, sb, ss), x)
        assert torch.autograd.gradcheck(f, (x, layer.coef, layer.scale_base, layer.scale_spline))


def _with(layer, c, sb, ss):
    layer.coef, layer.scale_base, layer.scale_spline = (torch.nn.Parameter(t) if not isinstance(
        t, torch.nn.Parameter) else t for t in (c, sb, ss))
    return layer


def test_gradients_match_plain_autograd_float32():
    torch.manual_seed(1)
    fast = KANLayer(5, 3, grid=6)
    slow = KANLayer(5, 3, grid=6, fast=False)
    slow.load_state_dict(fast.state_dict())
    x = torch.rand(64, 5) * 2 - 1
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    for m, xi in zip((fast, slow), xs):
        (m(xi) ** 2).sum().backward()
    assert torch.allclose(xs[0].grad, xs[1].grad, atol=1e-5)
    for a, b in zip(fast.parameters(), slow.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-4)
        assert a.grad.is_contiguous()  # LBFGS flattens gradients with .view(-1)


def test_base_none_and_frozen_scales():
    layer = make(base=None)
    layer.scale_base.requires_grad_(False)
    x = torch.rand(5, 3, dtype=torch.float64) * 2 - 1
    assert torch.allclose(layer(x), layer.edge_activations(x).sum(-1))
    layer(x).sum().backward()
    assert layer.scale_base.grad is None and layer.coef.grad is not None


def test_symbolic_hook_is_added():
    class Sym(torch.nn.Module):
        def forward(self, x):
            return x[:, :1].expand(-1, 4) * 2

        def edge_activations(self, x):
            e = torch.zeros(x.shape[0], 4, 3, dtype=x.dtype)
            e[:, :, 0] = 2 * x[:, :1]
            return e

    layer = make()
    x = torch.rand(6, 3, dtype=torch.float64) * 2 - 1
    y0 = layer(x)
    layer.symbolic = Sym()
    assert torch.allclose(layer(x), y0 + 2 * x[:, :1])
    assert torch.allclose(layer.edge_activations(x).sum(-1), layer(x))


def test_update_grid_preserves_function_in_place():
    layer = make(grid=8)
    coef_obj = layer.coef
    x = torch.rand(300, 3, dtype=torch.float64) * 1.2 - 0.4
    before = layer(x)
    layer.update_grid(x)
    assert layer.coef is coef_obj  # optimizers keep their parameter
    assert torch.allclose(layer(x), before, atol=5e-3)
    r = layer.grid_range
    assert torch.allclose(r[:, 0], x.min(0).values) and torch.allclose(r[:, 1], x.max(0).values)


@pytest.mark.parametrize("adapted", [False, True])
def test_extend_grid_exact_on_refinement(adapted):
    layer = make(grid=4)
    x = torch.rand(200, 3, dtype=torch.float64) * 2 - 1
    if adapted:
        layer.update_grid(x, grid_eps=0.0)
    before = layer(x)
    layer.extend_grid(12)
    assert layer.grid == 12 and layer.coef.shape == (4, 3, 15)
    assert torch.allclose(layer(x), before, atol=1e-9)


def test_warns_once_outside_grid():
    layer = KANLayer(2, 2)
    with pytest.warns(GridRangeWarning, match="update_grid"):
        layer(torch.tensor([[3.0, 0.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layer(torch.tensor([[3.0, 0.0]]))  # second time: silent
    # splines vanish outside the extended knots; only the base branch acts
    x = torch.tensor([[10.0, -10.0]])
    assert torch.allclose(layer.spline_part(x), torch.zeros(1, 2, 2))


@pytest.mark.parametrize("x, match", [
    (torch.zeros(4, 3), r"\(batch, 2\)"),
    (torch.zeros(4), r"\(batch, 2\)"),
    (torch.tensor([[0.0, float("nan")]]), "NaN/inf"),
    (torch.tensor([[0.0, float("inf")]]), "NaN/inf"),
    (torch.zeros(0, 2), "empty"),
])
def test_bad_input(x, match):
    with pytest.raises(ValueError, match=match):
        KANLayer(2, 1)(x)


@pytest.mark.parametrize("kw, match", [
    (dict(grid=0), "grid must"), (dict(grid=2.5), "grid must"), (dict(k=0), "k must"),
    (dict(grid_range=(1, -1)), "grid_range"), (dict(grid_eps=2.0), "grid_eps"),
    (dict(base=3), "base must"),
])
def test_bad_construction(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        KANLayer(2, 1, **kw)


def test_other_base_names_go_through_activations():
    acts = getattr(nl, "activations", None)
    if acts is None:
        with pytest.raises(ValueError, match="nnlab.activations"):
            KANLayer(2, 1, base="tanh")
        return
    layer = KANLayer(2, 3, base="tanh").double()
    x = (torch.rand(7, 2, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.allclose(layer(x), layer.edge_activations(x).sum(-1))
    assert torch.autograd.gradcheck(layer, (x,))
    with pytest.raises(ValueError):
        KANLayer(2, 1, base="no-such-activation")


@pytest.mark.parametrize("recompute", [False, True])
def test_blocked_kernel_gradcheck(monkeypatch, recompute):
    """Several row blocks, stored or recomputed basis: gradients still exact."""
    from nnlab.kan import kernel
    monkeypatch.setattr(kernel, "CHUNK_ELEMENTS", 40)
    layer = make(in_dim=2, out_dim=1, grid=3, recompute=recompute)
    x = (torch.rand(40, 2, dtype=torch.float64) * 1.8 - 0.9).requires_grad_(True)
    assert torch.allclose(layer(x), layer.edge_activations(x).sum(-1), atol=1e-7)
    y = layer(x)
    y.sum().backward()
    ref = make(in_dim=2, out_dim=1, grid=3, fast=False)
    xr = x.detach().clone().requires_grad_(True)
    ref(xr).sum().backward()
    assert torch.allclose(x.grad, xr.grad, atol=1e-9)
    for a, b in zip(layer.parameters(), ref.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-9)


def test_deferred_range_check_warns_on_a_later_call_without_host_reads():
    """The CUDA path of the grid-range check (no host sync), exercised on CPU tensors."""
    layer = KANLayer(2, 1)
    layer._defer_checks = True
    inside, outside = torch.rand(8, 2) * 2 - 1, torch.full((8, 2), 3.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridRangeWarning)
        layer(inside)
        layer(inside)  # reads the first (clean) flag
        layer(outside)  # queues the flag: no warning yet, no host read of x
    with pytest.warns(GridRangeWarning, match="earlier batch"):
        layer(inside)
    with warnings.catch_warnings():
        warnings.simplefilter("error", GridRangeWarning)
        layer(outside)  # warned once per layer
    layer.update_grid(torch.rand(32, 2) * 6 - 3)
    assert layer._pending_range is None and not layer._warned_range
