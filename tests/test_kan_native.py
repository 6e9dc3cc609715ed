"""The fast KAN routes (native C, threads, forward-only, Triton interpreter) against the eager code
and float64 Cox–de Boor; gradcheck through every path; a robust build (no compiler, read-only
cache, wrapper compilers, tampered cached binaries)."""
import copy
import logging
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import pytest
import torch

from nnlab.kan import KANLayer, cpu_layer, kernel, native, routes, spline

PATHS = ["native", "eager", "threaded", "triton"]


@pytest.fixture
def route(monkeypatch, request):
    """Switch the layer's code path: native (1 thread), eager (NNLAB_NATIVE=0), threaded
    (native on 2 threads), triton (Triton kernels in the interpreter on CPU tensors)."""
    name = request.param
    monkeypatch.setenv("NNLAB_NATIVE", "0" if name == "eager" else "1")
    monkeypatch.setenv("NNLAB_TRITON", "interpret" if name == "triton" else "")
    monkeypatch.setenv("NNLAB_DYNAMIC_THREADS", "0")  # the threaded C path even on a busy box
    threads = torch.get_num_threads()
    torch.set_num_threads(2 if name == "threaded" else 1)
    native._reset()
    yield name
    torch.set_num_threads(threads)
    native._reset()


def _expect(name, x, knots, k):
    fast = routes.setup(x, knots, k, True)
    kind = {"eager": None, "triton": "triton"}.get(name, "native")
    assert (fast.kind if fast else None) == kind, routes.describe(x, knots, k, True)


def _points(knots, B, span, dtype):
    torch.manual_seed(1)
    x = (torch.rand(B, knots.shape[0], dtype=dtype) * 2 - 1) * span
    x[0], x[1], x[2] = knots[:, 0], knots[:, -1], knots[:, knots.shape[1] // 2]  # knots exactly
    return x


@pytest.mark.parametrize("route", PATHS, indirect=True)
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-6), (torch.float64, 1e-12)])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_features_match_cox_de_boor_inside_and_outside(route, k, dtype, tol):
    G, I, B = 20, 3, 500  # B·I·(K+1) > the threading threshold of the native kernel
    K = G + k
    knots = spline.uniform_knots(-1, 1, G, k, dtype=dtype).expand(I, -1).contiguous()
    x = _points(knots, B, 1.0 + 0.6 * k / G * 4, dtype)  # reaches beyond the extended knots
    x[3] = float("nan")  # NaN: every basis value 0 (the layer refuses NaN before this)
    _expect(route, x, knots, k)
    ref = spline.cox_de_boor(x.double(), knots.double(), k).transpose(1, 2).nan_to_num(0.0)
    for base in ("silu", None, "tanh"):
        F = kernel.features(x, knots, k, True, base).view(B, K + 1, I)
        assert (F[:, :K].double() - ref).abs().max() <= tol
        assert (F[:, :K][(x.abs() > 1 + k * 2 / G).unsqueeze(1).expand(-1, K, -1)] == 0).all()
        want = torch.zeros_like(x) if base is None else getattr(torch.nn.functional, base)(x)
        assert torch.allclose(F[4:, K], want[4:], atol=tol, rtol=tol)


def _run(layer, x, dtype):
    layer.zero_grad()
    xx = x.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = layer(xx)
    (y * torch.linspace(-1, 1, y.numel(), dtype=dtype).view_as(y)).sum().backward()
    return [y.detach(), xx.grad, layer.coef.grad.clone(), layer.scale_base.grad.clone(),
            layer.scale_spline.grad.clone()]


CASES = [(1, "silu", False), (2, None, True), (3, "silu", True), (4, "tanh", False),
         (5, "silu", False)]


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
@pytest.mark.parametrize("k, base, recompute", CASES)
@pytest.mark.parametrize("sparse", [True, False])
def test_every_path_gives_the_same_values_and_gradients(monkeypatch, k, base, recompute, dtype,
                                                        tol, sparse):
    """Every path against the eager float64 layer (float32: each path's own rounding, ~1e-6;
    float64: equal to 1e-12). ``sparse``: the native sparse route where it applies (silu / no
    base), or features + GEMM everywhere (SPARSE_MAX_BYTES = 0)."""
    torch.manual_seed(0)
    layer = KANLayer(6, 3, grid=5, k=k, base=base).to(dtype)
    layer.recompute = recompute
    x = (torch.rand(700, 6, dtype=dtype) * 2 - 1) * 1.8  # partly outside the grid
    if not sparse:
        monkeypatch.setattr(kernel, "SPARSE_MAX_BYTES", 0)
    out = {}
    threads = torch.get_num_threads()
    monkeypatch.setenv("NNLAB_DYNAMIC_THREADS", "0")  # the threaded C path even on a busy box
    try:
        monkeypatch.setenv("NNLAB_NATIVE", "0")
        native._reset()
        ref = _run(copy.deepcopy(layer).double(), x.double(), torch.float64)
        for name, nat, tri, nt in [("eager", "0", "", 1), ("native", "1", "", 1),
                                   ("threaded", "1", "", 2), ("triton", "1", "interpret", 1)]:
            monkeypatch.setenv("NNLAB_NATIVE", nat)
            monkeypatch.setenv("NNLAB_TRITON", tri)
            torch.set_num_threads(nt)
            native._reset()
            _expect(name, x, layer.knots, k)
            out[name] = _run(layer, x, dtype)
            with torch.no_grad():  # forward-only equals the training forward
                assert (layer(x) - out[name][0]).abs().max() <= tol
    finally:
        torch.set_num_threads(threads)
        native._reset()
    for name in ("eager", "native", "threaded", "triton"):
        for a, b in zip(out[name], ref):
            assert (a.double() - b).abs().max() <= tol * max(1.0, b.abs().max().item()), name


@pytest.mark.parametrize("route", PATHS, indirect=True)
@pytest.mark.parametrize("k", [1, 3])
def test_gradcheck_float64_in_and_out_of_grid(route, k):
    torch.manual_seed(0)
    G, I, O = 3, 2, 2
    K = G + k
    knots = spline.uniform_knots(-1, 1, G, k, dtype=torch.float64).expand(I, -1).contiguous()
    x = ((torch.rand(6, I, dtype=torch.float64) * 2 - 1) * 1.9).requires_grad_(True)
    coef = torch.randn(O, I, K, dtype=torch.float64, requires_grad=True)
    sb = torch.randn(O, I, dtype=torch.float64, requires_grad=True)
    ss = torch.randn(O, I, dtype=torch.float64, requires_grad=True)
    mask = torch.ones(O, I, dtype=torch.float64)
    _expect(route, x.detach(), knots, k)
    for recompute, base in ((False, "silu"), (True, "tanh"), (False, None)):
        f = lambda x, c, b, s: kernel.kan_forward(  # noqa: E731
            x, c, b, s, mask, knots, k, True, base, recompute)
        assert torch.autograd.gradcheck(f, (x, coef, sb, ss))


def test_forward_only_saves_nothing(monkeypatch):
    torch.manual_seed(0)
    layer = KANLayer(4, 3)
    x = torch.rand(50, 4) * 2 - 1
    y_train = layer(x)
    assert y_train.grad_fn is not None

    def boom(*a, **k):
        raise AssertionError("the autograd Function ran for inference")
    monkeypatch.setattr(kernel.KANFunction, "apply", boom)
    with torch.no_grad():
        y = layer(x)
    assert y.grad_fn is None and torch.equal(y, y_train.detach())
    layer.requires_grad_(False)
    y2 = layer(x)  # grad mode on, but nothing requires a gradient
    assert y2.grad_fn is None and torch.equal(y2, y)


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """An empty kernel cache and a forgotten library; restored afterwards."""
    monkeypatch.setenv("NNLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NNLAB_NATIVE", "1")
    native._reset()
    yield tmp_path / "cache"
    native._reset()


def _layer_still_works():
    torch.manual_seed(0)
    layer = KANLayer(2, 3).double()
    x = (torch.rand(5, 2, dtype=torch.float64) * 2 - 1).requires_grad_(True)
    assert torch.allclose(layer(x), layer.edge_activations(x).sum(-1), atol=1e-10)
    assert torch.autograd.gradcheck(layer, (x,))


@pytest.mark.parametrize("cc", ["/nonexistent/cc", "nnlab-no-such-cc", "", "ccache-nope gcc"])
def test_fallback_when_compiler_missing(fresh, monkeypatch, caplog, cc):
    monkeypatch.setenv("CC", cc)
    with caplog.at_level(logging.WARNING, logger="nnlab.kan.native"):
        if cc == "":  # an empty $CC means the default cc: it builds
            assert native.available()
            return
        assert not native.available()
    assert "not found" in native.reason() and "unavailable" in caplog.text
    assert routes.describe(torch.zeros(1, 2), KANLayer(2, 3).knots, 3, True).startswith("eager")
    _layer_still_works()


def test_wrapper_compiler_in_cc(fresh, monkeypatch):
    monkeypatch.setenv("CC", "env cc")  # a wrapper plus a compiler, like CC="ccache gcc"
    assert native.available(), native.reason()
    assert native.info()["compiler"].endswith("env cc")
    monkeypatch.setenv("CC", "ccache gcc")
    native._reset()
    assert native.available() == (shutil.which("ccache") is not None)  # never raises
    _layer_still_works()


def test_read_only_cache_builds_privately(fresh, caplog):
    fresh.mkdir()
    fresh.chmod(0o500)
    try:
        if os.access(fresh, os.W_OK):  # root ignores permission bits: use a path under a file
            fresh.chmod(0o700)
            blocker = fresh / "file"
            blocker.write_text("")
            os.environ["NNLAB_CACHE"] = str(blocker / "cache")
        with caplog.at_level(logging.INFO, logger="nnlab.kan.native"):
            assert native.available(), native.reason()
        assert "not writable" in caplog.text
        assert not str(native.info()["so"]).startswith(str(fresh))
        _layer_still_works()
    finally:
        fresh.chmod(0o700)


def test_cached_binary_is_hash_checked(fresh, caplog):
    assert native.available()
    so = Path(native.info()["so"])
    assert native.info()["state"] == "built"
    native._reset()
    assert native.available() and native.info()["state"] == "cached"
    for tamper in ("binary", "sidecar"):
        native._reset()
        if tamper == "binary":  # a new file (the loaded one stays mapped in this process)
            bad = so.with_name("bad.so")
            bad.write_bytes(so.read_bytes() + b"\0tampered")
            os.replace(bad, so)
        else:
            side = so.with_suffix(".sha256")
            side.write_text(side.read_text().replace(side.read_text()[-10:-1], "0" * 9))
        with caplog.at_level(logging.WARNING, logger="nnlab.kan.native"):
            assert native.available()
        assert native.info()["state"] == "built"  # rebuilt, not loaded
        assert "hash check" in caplog.text
        caplog.clear()
    _layer_still_works()


def test_native_kernel_is_vectorised():
    """The compiler reports the kernel's inner loops as vectorised (with the flags it used)."""
    assert native.available(), native.reason()
    info = native.info()
    cc = info["compiler"].split()
    probe = subprocess.run([*cc, "--version"], capture_output=True, text=True)
    assert probe.returncode == 0
    if "gcc" not in probe.stdout.lower() and "free software foundation" not in probe.stdout.lower():
        pytest.xfail("vectorisation report parsed for gcc only")  # the build itself still ran
    r = subprocess.run([*cc, *info["flags"].split(), "-fPIC", "-shared", "-o", os.devnull,
                        *map(str, native._SRCS), "-lm", "-fopt-info-vec-optimized"],
                       capture_output=True, text=True)
    assert r.returncode == 0
    vec = [ln for ln in r.stderr.splitlines() if "loop vectorized" in ln]
    assert len(vec) >= 10, r.stderr[-2000:]
    if "-march=native" in info["flags"] and info["isa"] == "AVX-512":
        assert any("64 byte vectors" in ln for ln in vec)


@pytest.mark.parametrize("I, B", [(1, 1), (2, 257), (15, 40), (16, 33), (40, 29), (700, 3)])
def test_native_blocks_of_rows_match_eager_for_narrow_and_wide_rows(monkeypatch, I, B):
    """Rows are processed in blocks of ~512 elements (short rows slot by slot, wide rows as
    vector loops): every shape, including a last partial block, equals the eager code."""
    torch.manual_seed(0)
    layer = KANLayer(I, 3, grid=4, k=3).double()
    x = (torch.rand(B, I, dtype=torch.float64) * 2 - 1) * 1.5  # partly outside the grid
    out = {}
    for name, nat in (("eager", "0"), ("native", "1")):
        monkeypatch.setenv("NNLAB_NATIVE", nat)
        native._reset()
        _expect(name, x, layer.knots, 3)
        out[name] = _run(layer, x, torch.float64)
    native._reset()
    for a, b in zip(out["native"], out["eager"]):
        assert (a - b).abs().max() <= 1e-12 * max(1.0, b.abs().max().item())


def test_packed_weights_native_equal_eager():
    torch.manual_seed(0)
    layer = KANLayer(5, 4, grid=3, k=2)
    with torch.no_grad():
        layer.mask[1, 2] = 0
        W = native.pack_weights(layer.coef, layer.scale_base, layer.scale_spline, layer.mask)
    assert W is not None
    sm = (layer.mask * layer.scale_spline).unsqueeze(-1)
    ref = torch.cat([layer.coef * sm, (layer.mask * layer.scale_base).unsqueeze(-1)], -1)
    assert torch.equal(W, ref.transpose(1, 2).detach())
    assert native.pack_weights(layer.coef, layer.scale_base, layer.scale_spline.t(),
                               layer.mask) is None  # not contiguous: the eager ops instead


@pytest.mark.parametrize("base", ["silu", None])
def test_sparse_route_threads_and_saves_no_features(monkeypatch, base):
    """The sparse native route (no feature matrix) on 1 and 2 threads (rows split, private
    ∂L/∂W totals added up) against the eager float64 layer; it keeps nothing of size
    batch·in·K for backward."""
    monkeypatch.setenv("NNLAB_NATIVE", "1")
    monkeypatch.setenv("NNLAB_DYNAMIC_THREADS", "0")  # the threaded C path even on a busy box
    native._reset()
    torch.manual_seed(3)
    layer = KANLayer(16, 24, grid=7, k=3, base=base)
    x = (torch.rand(1500, 16) * 2 - 1) * 1.3  # big enough for the threaded split; partly outside
    ref = _run(copy.deepcopy(layer).double(), x.double(), torch.float64)
    threads = torch.get_num_threads()
    try:
        for nt in (1, 2):
            torch.set_num_threads(nt)
            assert kernel._sparse_weight(routes.setup(x, layer.knots, 3, True), layer.coef,
                                         layer.scale_base, layer.scale_spline, layer.mask,
                                         base) is not None
            out = _run(layer, x, torch.float32)
            for a, b in zip(out, ref):
                assert (a.double() - b).abs().max() <= 1e-5 * max(1.0, b.abs().max().item()), nt
    finally:
        torch.set_num_threads(threads)
        native._reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = layer(x.requires_grad_(True))
    K = layer.coef.shape[2]
    assert all(t is None or t.numel() < x.shape[0] * 16 * K for t in y.grad_fn.saved_tensors)


def test_threads_follow_the_free_cpus(monkeypatch):
    """The native kernels' thread count: the requested one, capped by the CPUs that no other
    runnable task wants (instantaneous run queue of /proc/loadavg); NNLAB_DYNAMIC_THREADS=0
    keeps the requested count; never below 1."""
    monkeypatch.setenv("NNLAB_DYNAMIC_THREADS", "1")
    monkeypatch.setattr(native, "RUNQ_TTL_S", 1e9)
    monkeypatch.setitem(native._RUNQ, "t", 1e18)  # a fresh reading: busy, one CPU free
    monkeypatch.setitem(native._RUNQ, "free", 1)
    assert native.threads_for(4) == 1 and native.threads_for(1) == 1
    assert native.threads_for(0) == 1
    monkeypatch.setitem(native._RUNQ, "free", 3)
    assert native.threads_for(2) == 2 and native.threads_for(8) == 3
    monkeypatch.setenv("NNLAB_DYNAMIC_THREADS", "0")
    monkeypatch.setitem(native._RUNQ, "free", 1)
    assert native.threads_for(4) == 4
    monkeypatch.setenv("NNLAB_DYNAMIC_THREADS", "1")
    monkeypatch.setitem(native._RUNQ, "t", -1e18)  # stale: re-read from /proc/loadavg
    n = native.threads_for(64)
    assert 1 <= n <= 64 and native._RUNQ["t"] > 0
    assert native._own_running() >= 1  # this thread is running while it counts


def test_busy_cpu_runs_the_layer_call_on_free_cpus(monkeypatch):
    """With fewer free CPUs than intra-op threads, a native layer call (forward-only, training
    forward and backward, sparse and GEMM routes) runs on the free ones, GEMMs included, and
    torch's thread count is restored afterwards, even when the call raises."""
    monkeypatch.setenv("NNLAB_NATIVE", "1")
    native._reset()
    seen = []
    real_ff = native.features_uniform
    real_sb = cpu_layer.layer_backward
    real_lf = cpu_layer._layer_forward

    def spy_ff(*a, **kw):
        seen.append(("features", torch.get_num_threads()))
        return real_ff(*a, **kw)

    def spy_sb(*a, **kw):
        seen.append(("sparse_backward", torch.get_num_threads()))
        return real_sb(*a, **kw)

    def spy_lf(*a, **kw):
        seen.append(("sparse_forward", torch.get_num_threads()))
        return real_lf(*a, **kw)

    monkeypatch.setattr(native, "features_uniform", spy_ff)
    monkeypatch.setattr(cpu_layer, "layer_backward", spy_sb)
    monkeypatch.setattr(cpu_layer, "_layer_forward", spy_lf)
    monkeypatch.setattr(native, "threads_for", lambda threads=None: 1)
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    layer = KANLayer(6, 4, grid=5, k=3)
    x = (torch.rand(64, 6) * 2 - 1).requires_grad_(True)
    try:
        torch.set_num_threads(1)
        ref = layer(x)
        ref.sum().backward()
        gref = x.grad.clone()
        x.grad = None
        torch.set_num_threads(2)
        for sparse_bytes in (1 << 20, 0):  # the sparse route, then features + GEMM
            monkeypatch.setattr(kernel, "SPARSE_MAX_BYTES", sparse_bytes)
            seen.clear()
            with torch.no_grad():
                y0 = layer(x)
            y = layer(x)
            y.sum().backward()
            assert torch.get_num_threads() == 2
            assert seen and all(n == 1 for _, n in seen), seen
            assert (y0 - ref).abs().max() <= 1e-5 and (y - ref).abs().max() <= 1e-5
            assert (x.grad - gref).abs().max() <= 1e-5
            x.grad = None
        monkeypatch.setattr(native, "features_uniform",
                            lambda *a, **kw: (_ for _ in ()).throw(RuntimeError("boom")))
        with pytest.raises(RuntimeError, match="boom"), torch.no_grad():
            layer(x)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
        native._reset()


def test_busy_cpu_leaves_the_thread_count_alone_off_the_main_thread(monkeypatch):
    """torch's thread count is process-wide: a layer call in a worker thread (a server's) never
    lowers it, so two threads cannot race each other's restore."""
    import threading

    monkeypatch.setenv("NNLAB_NATIVE", "1")
    native._reset()
    seen = []
    real_ff = native.features_uniform

    def spy_ff(*a, **kw):
        seen.append(torch.get_num_threads())
        return real_ff(*a, **kw)

    monkeypatch.setattr(native, "features_uniform", spy_ff)
    monkeypatch.setattr(native, "threads_for", lambda threads=None: 1)
    monkeypatch.setattr(kernel, "SPARSE_MAX_BYTES", 0)  # the features + GEMM route
    threads = torch.get_num_threads()
    torch.manual_seed(0)
    layer = KANLayer(6, 4, grid=5, k=3)
    x = torch.rand(64, 6) * 2 - 1
    try:
        torch.set_num_threads(2)
        with torch.no_grad():
            layer(x)
        assert seen and seen[-1] == 1  # the main thread narrows
        seen.clear()
        own = []

        def work():
            own.append(torch.get_num_threads())
            with torch.no_grad():
                layer(x)

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        assert seen and all(n == own[0] for n in seen), (own, seen)  # not narrowed in the worker
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)
        native._reset()
