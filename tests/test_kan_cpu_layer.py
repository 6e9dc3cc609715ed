"""The one-call native CPU route of a KANLayer (nnlab.kan.cpu_layer): the same values, gradients,
errors and warnings as the general code, gradcheck in float64, and no stale packed weight."""
import warnings

import pytest
import torch

from nnlab.kan import GridRangeWarning, KANLayer, cpu_layer, kernel, native


@pytest.fixture
def native_on(monkeypatch):
    monkeypatch.setenv("NNLAB_NATIVE", "1")
    monkeypatch.setenv("NNLAB_TRITON", "")
    native._reset()
    assert native.available(), native.reason()
    yield
    native._reset()


@pytest.fixture
def calls(monkeypatch):
    """Counts of the one-call native forward / backward."""
    n = {"fwd": 0, "bwd": 0}
    real_f, real_b = cpu_layer._layer_forward, cpu_layer.layer_backward

    def f(*a, **kw):
        n["fwd"] += 1
        return real_f(*a, **kw)

    def b(*a, **kw):
        n["bwd"] += 1
        return real_b(*a, **kw)
    monkeypatch.setattr(cpu_layer, "_layer_forward", f)
    monkeypatch.setattr(cpu_layer, "layer_backward", b)
    return n


def _eager(layer, x, monkeypatch):
    """Output and gradients (x, coef, scale_base, scale_spline) of the general eager code."""
    monkeypatch.setenv("NNLAB_NATIVE", "0")
    native._reset()
    try:
        return _run(layer, x)
    finally:
        monkeypatch.setenv("NNLAB_NATIVE", "1")
        native._reset()


def _run(layer, x):
    x = x.detach().clone().requires_grad_(True)
    layer.zero_grad()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridRangeWarning)
        y = layer(x)
    g = torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y)
    y.backward(g)
    return [y.detach(), x.grad, layer.coef.grad, layer.scale_base.grad, layer.scale_spline.grad]


CASES = [  # (batch, in, out, grid, k, base, span): span > 1 puts points beyond the grid
    (256, 2, 5, 5, 3, "silu", 1.0),
    (70, 6, 19, 7, 2, None, 1.6),
    (33, 3, 4, 3, 1, "silu", 3.0),
]


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("case", CASES)
def test_one_call_route_equals_the_eager_code(native_on, calls, monkeypatch, case, dtype, tol):
    B, I, O, G, k, base, span = case
    torch.manual_seed(0)
    layer = KANLayer(I, O, grid=G, k=k, base=base).to(dtype)
    layer.mask[0, 0] = 0.0
    x = (torch.rand(B, I, dtype=dtype) * 2 - 1) * span
    got = _run(layer, x)
    assert calls == {"fwd": 1, "bwd": 1}
    ref = _eager(layer, x, monkeypatch)
    for a, b in zip(got, ref):
        assert (a - b).abs().max() <= tol * max(1.0, b.abs().max().item())
    with torch.no_grad():  # forward only: same values, no graph
        y = layer(x)
    assert y.grad_fn is None and (y - ref[0]).abs().max() <= tol * max(1.0, ref[0].abs().max().item())


@pytest.mark.parametrize("route", ["sparse", "dense"])
@pytest.mark.parametrize("span", [0.9, 1.7])
def test_gradcheck_float64_one_call_route(native_on, calls, monkeypatch, span, route):
    """gradcheck through the sparse one-call route and through the one-node features + GEMM
    route (_DenseLayer), which the cost rule picks for larger layers in training."""
    monkeypatch.setattr(kernel, "sparse_preferred", lambda *a: route == "sparse")
    torch.manual_seed(0)
    layer = KANLayer(3, 2, grid=4, k=3).double()
    layer.mask[1, 2] = 0.0
    x = ((torch.rand(9, 3, dtype=torch.float64) * 2 - 1) * span).requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridRangeWarning)

        def f(x, c, sb, ss):
            return torch.func.functional_call(
                layer, {"coef": c, "scale_base": sb, "scale_spline": ss}, (x,))
        assert torch.autograd.gradcheck(
            f, (x, layer.coef.detach().clone().requires_grad_(True),
                layer.scale_base.detach().clone().requires_grad_(True),
                layer.scale_spline.detach().clone().requires_grad_(True)))
    if route == "sparse":
        assert calls["fwd"] > 0 and calls["bwd"] > 0
    else:
        assert calls == {"fwd": 0, "bwd": 0}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GridRangeWarning)
            assert type(layer(x).grad_fn).__name__ == "_DenseLayerBackward"


@pytest.mark.parametrize("sparse_bytes", [1 << 20, 0])  # one call, then features + GEMM
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grad", [True, False])
def test_native_check_matches_the_eager_check(native_on, monkeypatch, sparse_bytes, dtype, grad):
    """NaN/inf: the same error; a point outside the grid range by more than the slack: the same
    single warning; points on the grid ends and within the slack: no warning."""
    monkeypatch.setattr(kernel, "SPARSE_MAX_BYTES", sparse_bytes)
    torch.manual_seed(0)
    for bad in (float("nan"), float("inf"), -float("inf")):
        layer = KANLayer(3, 2).to(dtype)
        x = torch.rand(40, 3, dtype=dtype).requires_grad_(grad)
        x.data[17, 1] = bad
        with pytest.raises(ValueError, match="NaN/inf"):
            layer(x)
    for fast in (True, False):  # fast=False: the eager check
        layer = KANLayer(3, 2, grid_range=(-1.0, 2.0), fast=fast).to(dtype)
        x = torch.rand(40, 3, dtype=dtype) * 3 - 1
        x[0], x[1] = -1.0, 2.0  # the grid ends exactly
        x[2, 0] = -1.0 - 2e-6  # inside the slack (1e-6 of the range = 3e-6)
        with warnings.catch_warnings():
            warnings.simplefilter("error", GridRangeWarning)
            layer(x.requires_grad_(grad))
        x = x.detach().clone()
        x[5, 2] = 2.0 + 1e-4
        with pytest.warns(GridRangeWarning, match=r"seen \[-1, 2\]"):
            layer(x)
        with warnings.catch_warnings():
            warnings.simplefilter("error", GridRangeWarning)
            layer(x)  # warned once per layer
        with pytest.raises(ValueError, match="NaN/inf"):  # still checked after the warning
            layer(torch.full((2, 3), float("nan"), dtype=dtype))


def test_no_stale_weight_after_any_parameter_edit(native_on, calls):
    """The packed weight is rebuilt on every call: in-place edits, edits through ``.data``
    (which bypass version counters) and a replaced mask all show up at once."""
    torch.manual_seed(0)
    layer = KANLayer(2, 5)
    x = torch.rand(64, 2) * 2 - 1

    def eager():
        return layer.edge_activations(x, include_symbolic=False).sum(-1)
    with torch.no_grad():
        assert torch.allclose(layer(x), eager(), atol=1e-6)
        layer.coef.data.mul_(3.0)
        assert torch.allclose(layer(x), eager(), atol=1e-6)
        layer.scale_base.add_(0.5)
        layer.mask[2] = 0.0
        y = layer(x)
        assert torch.allclose(y, eager(), atol=1e-6) and torch.all(y[:, 2] == 0)
    assert calls["fwd"] == 3


ROUTE_RULE = [  # (rows, in, out, grid, k, train, sparse?): the cost rule of kernel.sparse_preferred
    (1024, 64, 64, 5, 3, True, True),  # training beside other layers: F would be cold by backward
    (1024, 64, 64, 5, 3, False, True),  # the same layer forward only: the sparse pass
    (1024, 64, 64, 20, 3, True, True),  # fine grid: (k+2)/(K+1) = 5/24 of the GEMM's work
    (4096, 256, 256, 2, 3, True, False),  # coarsest grid, large: three GEMMs beat 3 gathered passes
    (1200, 32, 32, 2, 3, True, False),
    (1200, 32, 32, 2, 3, False, True),  # the same layer forward only: the sparse pass
    (256, 2, 5, 5, 3, True, True),  # tiny: the GEMM route's fixed cost dominates
    (16, 64, 64, 5, 3, True, True),  # few rows: likewise
    (1024, 64, 64, 5, 1, True, True),  # k = 1: 3 of 7 values per input, sparse wins again
]


@pytest.mark.parametrize("rows, I, O, G, k, train, sparse", ROUTE_RULE)
def test_route_rule_favours_the_cheaper_route(rows, I, O, G, k, train, sparse):
    K = G + k
    assert kernel.sparse_preferred(rows, I, O, K, k, train) is sparse
    # more rows never turn a GEMM choice back into the sparse one (the saving grows with rows)
    if not sparse:
        assert not kernel.sparse_preferred(4 * rows, I, O, K, k, train)


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_training_on_the_gemm_route_inference_on_the_sparse_route(native_on, calls, monkeypatch,
                                                                     dtype, tol):
    """A layer where the rule picks features + GEMM with backward and the sparse pass without:
    both equal the eager code, and the sparse forward equals the GEMM route's forward."""
    B, I, O, G, k = 1200, 32, 32, 2, 3
    assert not kernel.sparse_preferred(B, I, O, G + k, k, True)
    assert kernel.sparse_preferred(B, I, O, G + k, k, False)
    torch.manual_seed(0)
    layer = KANLayer(I, O, grid=G, k=k).to(dtype)
    layer.mask[0, 0] = 0.0
    x = (torch.rand(B, I, dtype=dtype) * 2 - 1) * 1.3
    got = _run(layer, x)
    assert calls == {"fwd": 0, "bwd": 0}  # training: not the one-call sparse route
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridRangeWarning)
        assert type(layer(x.requires_grad_(True)).grad_fn).__name__ == "_DenseLayerBackward"
    x = x.detach()
    ref = _eager(layer, x, monkeypatch)
    for a, b in zip(got, ref):
        assert (a - b).abs().max() <= tol * max(1.0, b.abs().max().item())
    with torch.no_grad():
        y = layer(x)
    assert calls["fwd"] == 1 and y.grad_fn is None
    assert (y - got[0]).abs().max() <= tol * max(1.0, ref[0].abs().max().item())


@pytest.mark.parametrize("wants", ["x", "params", "both"])
def test_dense_route_with_only_some_gradients(native_on, monkeypatch, wants):
    """_DenseLayer with frozen parameters (∂L/∂x only), an input without grad (parameter
    gradients only) or both: the same gradients as the eager float64 code."""
    monkeypatch.setattr(kernel, "sparse_preferred", lambda *a: False)
    torch.manual_seed(1)
    layer = KANLayer(20, 7, grid=4, k=2, base=None).double()
    x = (torch.rand(50, 20, dtype=torch.float64) * 2 - 1) * 1.2
    ref = _eager(layer, x, monkeypatch)
    layer.zero_grad()
    layer.requires_grad_(wants != "x")
    xi = x.clone().requires_grad_(wants != "params")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", GridRangeWarning)
        y = layer(xi)
    assert type(y.grad_fn).__name__ == "_DenseLayerBackward"
    y.backward(torch.linspace(-1, 1, y.numel(), dtype=y.dtype).view_as(y))
    got = [xi.grad, layer.coef.grad, layer.scale_base.grad, layer.scale_spline.grad]
    for a, b in zip(got, ref[1:]):
        if a is not None:
            assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())
    assert (got[0] is None) == (wants == "params") and (got[1] is None) == (wants == "x")


def test_kept_buffers_are_reused_only_when_free(monkeypatch):
    """nnlab.kan.buffers: a buffer comes back only after the view handed out has died."""
    from nnlab.kan import buffers
    monkeypatch.setattr(buffers, "MIN_BYTES", 0)
    buffers.clear()
    a = buffers.take((4, 8), torch.float32)
    b = buffers.take((4, 8), torch.float32)
    assert a.data_ptr() != b.data_ptr()  # a is alive: not handed out twice
    pa = a.data_ptr()
    del a
    c = buffers.take((8, 4), torch.float32)  # same size, another shape
    assert c.data_ptr() == pa and c.shape == (8, 4)
    assert buffers.take((3,), torch.float64).data_ptr() not in (pa, b.data_ptr())
    monkeypatch.setattr(buffers, "MAX_BUFFERS", 2)
    keep = [buffers.take((5,), torch.float32) for _ in range(3)]  # over the limit: not kept
    assert len({t.data_ptr() for t in keep}) == 3 and buffers.held_bytes() <= 2 * 5 * 4 + 32 * 4
    buffers.clear()
    assert buffers.held_bytes() == 0


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dense_route_buffers_with_retained_graphs(native_on, monkeypatch, dtype):
    """The features + GEMM route keeps F in a reused buffer: two forwards before one backward,
    a second backward through a retained graph and a backward after other layer calls all give
    the eager gradients (no buffer is handed out while a graph still holds it)."""
    from nnlab.kan import buffers
    monkeypatch.setattr(kernel, "sparse_preferred", lambda *a: False)
    monkeypatch.setattr(buffers, "MIN_BYTES", 0)
    torch.manual_seed(3)
    layer = KANLayer(16, 5, grid=5, k=3).to(dtype)
    xs = [(torch.rand(64, 16, dtype=dtype) * 2 - 1) for _ in range(2)]
    refs = [_eager(layer, x, monkeypatch) for x in xs]
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    layer.zero_grad()
    x0, x1 = (x.clone().requires_grad_(True) for x in xs)
    y0, y1 = layer(x0), layer(x1)  # both graphs alive at once
    assert type(y0.grad_fn).__name__ == "_DenseLayerBackward"
    gy = torch.linspace(-1, 1, y0.numel(), dtype=dtype).view_as(y0)
    y1.backward(gy, retain_graph=True)
    for _ in range(3):  # other calls in between may take free buffers, never y0's or y1's
        layer(xs[0].clone().requires_grad_(True)).backward(gy)
    y1.backward(gy)  # the retained graph again: gradients accumulate twice
    layer.zero_grad()
    y0.backward(gy)
    got = [x0.grad, layer.coef.grad, layer.scale_base.grad, layer.scale_spline.grad]
    for a, b in zip(got, refs[0][1:]):
        assert (a - b).abs().max() <= tol * max(1.0, b.abs().max().item())
    assert (x1.grad - 2 * refs[1][1]).abs().max() <= tol * max(1.0, refs[1][1].abs().max().item())


@pytest.mark.parametrize("grad", [True, False])
def test_dense_route_by_row_blocks(native_on, monkeypatch, grad):
    """The features + GEMM route by row blocks (16 rows each, the last one partial): forward,
    inference and every gradient equal the eager float64 code."""
    monkeypatch.setattr(kernel, "sparse_preferred", lambda *a: False)
    monkeypatch.setattr(cpu_layer, "GF_BLOCK_ELEMENTS", 1)  # -> 16 rows per block
    torch.manual_seed(4)
    layer = KANLayer(6, 4, grid=5, k=3).double()
    x = (torch.rand(50, 6, dtype=torch.float64) * 2 - 1) * 1.1
    ref = _eager(layer, x, monkeypatch)
    if grad:
        got = _run(layer, x)
        for a, b in zip(got, ref):
            assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())
    else:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", GridRangeWarning)
            y = layer(x)
        assert (y - ref[0]).abs().max() <= 1e-12 * max(1.0, ref[0].abs().max().item())
