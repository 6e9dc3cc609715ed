"""Speed, memory and exactness of one KAN layer: nnlab vs pykan, flashkan, inkan and the GEMM floor.

Run from the repository root (peers come from the ``bench`` extra)::

    PYTHONPATH=src python bench/kan_layer.py --threads 1 --reps 9 --out bench/results/kan_layer_1t.md
    PYTHONPATH=src python bench/kan_layer.py --check      # exactness at every size, no timing

What is timed, per size (batch, in -> out, G), k = 3, inputs uniform in the grid range [-1, 1]:

* ``fwd``: forward under ``torch.no_grad()``;
* ``fwd+bwd``: forward, then backward of a fixed random output gradient, with ``x.requires_grad``
  (so every layer also computes ∂L/∂x, as a hidden layer must).

``gemm floor`` is the equivalent dense work on precomputed features: ``nn.Linear(in·(G+k), out)``
applied to a stored (batch, in·(G+k)) basis tensor plus the base branch ``nn.Linear(in, out)(silu(x))``.
The basis tensor is a parameter of the floor, so it gets its gradient (the ∂L/∂F that any KAN
layer needs for ∂L/∂x) and that gradient is reset with the others every step, never accumulated. Contenders run interleaved (every repetition times each one,
in rotating order) and the table shows medians and ratios to the floor.

Peak memory (``--memory``, largest size): each contender runs in a fresh subprocess with
``MALLOC_MMAP_THRESHOLD_=65536`` (so freed tensors go back to the OS); after one warm-up step the
peak-RSS counter is reset (``/proc/self/clear_refs``) and we report VmHWM − VmRSS around one
forward+backward. The floor's stored basis tensor is its input and is not counted.

``--check`` (also run before every timing run): at every size nnlab's float32 layer output equals
the float64 Cox–de Boor layer (relative 1e-5, float32 GEMM sums) and its basis equals float64
Cox–de Boor within 1e-6, exactly zero beyond the extended knots; it raises otherwise.

Each table is headed by the CPU model (``lscpu``), torch's CPU capability (ISA), the thread count,
and the code path of every contender (nnlab: :func:`nnlab.kan.routes.describe`).

Exactness: each implementation's basis on 4001 float32 points in [-1.5, 1.5] against float64
Cox–de Boor on the same extended knots (zero outside them); error > 1e-6 marks it ``approx``.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import warnings

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

import nnlab as nl  # noqa: E402
from nnlab.kan import routes, spline  # noqa: E402
from nnlab.kan.kernel import features  # noqa: E402

SIZES = [(1024, 64, 64, 5), (4096, 256, 256, 5), (1024, 64, 64, 20), (256, 2, 5, 5)]
K = 3
NAMES = ["gemm floor", "nnlab", "flashkan", "inkan", "pykan"]


class Floor(nn.Module):
    def __init__(self, B, I, O, G):
        super().__init__()
        self.lin = nn.Linear(I * (G + K), O, bias=False)
        self.base = nn.Linear(I, O, bias=False)
        # a parameter: step_fb resets its gradient like every other one (never accumulated)
        self.feats = nn.Parameter(torch.rand(B, I * (G + K)) * 0.3)

    def forward(self, x):
        return self.lin(self.feats) + self.base(F.silu(x))


class PykanWrap(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]


def _pykan_layer_cls():
    """pykan's KANLayer without running ``kan/__init__`` (which needs pandas etc. for MultKAN)."""
    import importlib.util
    import types

    if "kan" not in sys.modules:
        spec = importlib.util.find_spec("kan")
        if spec is None:
            raise ImportError("pykan is not installed")
        pkg = types.ModuleType("kan")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["kan"] = pkg
    from kan.KANLayer import KANLayer
    return KANLayer


def make(name, B, I, O, G):
    torch.manual_seed(0)
    if name == "gemm floor":
        return Floor(B, I, O, G)
    if name == "nnlab":
        return nl.KANLayer(I, O, grid=G, k=K)
    if name == "flashkan":
        import flashkan
        return flashkan.KANLayer(I, O, grid_size=G, spline_order=K)
    if name == "inkan":
        import inkan
        return inkan.KANLayer(I, O, grid_size=G, spline_order=K)
    if name == "pykan":
        return PykanWrap(_pykan_layer_cls()(in_dim=I, out_dim=O, num=G, k=K))
    raise ValueError(name)


def available(names):
    out = []
    for n in names:
        try:
            make(n, 4, 2, 2, 3)
            out.append(n)
        except ImportError as e:
            print(f"# skipping {n}: {e}", file=sys.stderr)
    return out


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def code_path(name, B, I, G) -> str:
    """What each contender runs (nnlab: the route its kernel takes for this input)."""
    if name == "gemm floor":
        return "torch nn.Linear (MKL GEMM) on a stored basis + silu base branch"
    if name == "nnlab":
        m = make(name, 4, I, 2, G)
        return routes.describe(torch.zeros(B, I), m.knots, K, m._uniform)
    if name == "flashkan":
        import flashkan
        return f"flashkan {getattr(flashkan, '__version__', '?')}: torch.compile'd basis (its default)"
    if name == "inkan":
        import inkan
        return f"inkan {getattr(inkan, '__version__', '?')}: torch.compile'd basis (compile_basis=True default)"
    if name == "pykan":
        return "pykan KANLayer: eager Cox–de Boor, per-edge (batch, out, in) tensors"
    return "?"


def nnlab_route(B, I, O, G) -> str:
    """Which native route nnlab's layer takes at this size, for inference / for training:
    sparse (no feature matrix) or features + GEMM (see ``nnlab.kan.kernel.SPARSE_MAX_BYTES``
    and the cost rule ``nnlab.kan.kernel.sparse_preferred``)."""
    from nnlab.kan import kernel
    m = make("nnlab", B, I, O, G)
    fast = routes.setup(torch.zeros(B, I), m.knots, K, m._uniform)
    if fast is None:
        return "eager"
    names = []
    for train in (False, True):
        sparse = kernel._sparse_weight(fast, m.coef, m.scale_base, m.scale_spline, m.mask,
                                       m.base, rows=B, train=train)
        names.append("sparse route (no F)" if sparse is not None else "features + GEMM")
    return names[0] if names[0] == names[1] else f"fwd: {names[0]}, fwd+bwd: {names[1]}"


def reference_output(layer, x):
    """The float64 Cox–de Boor KAN layer (lecture §6.2) for ``layer``'s parameters."""
    xd = x.double()
    Bs = spline.cox_de_boor(xd, layer.knots.double(), layer.k)  # (B, I, G+k)
    m = layer.mask.double()
    cw = layer.coef.double() * (layer.scale_spline.double() * m)[..., None]  # (O, I, G+k)
    return torch.einsum("bij,oij->bo", Bs, cw) + F.silu(xd) @ (layer.scale_base.double() * m).t()


def check(sizes):
    """Raise unless nnlab's output and basis equal the float64 reference at every size."""
    for (B, I, O, G) in sizes:
        torch.manual_seed(2)
        layer = nl.KANLayer(I, O, grid=G, k=K)
        x = torch.rand(B, I) * 2 - 1
        with torch.no_grad():
            y = layer(x)
        y_train = layer(x.clone().requires_grad_(True)).detach()  # the route taken with backward
        ref = reference_output(layer, x)
        err = max(float((v.double() - ref).abs().max() / ref.abs().max()) for v in (y, y_train))
        xo = torch.linspace(-3.0, 3.0, B * I)[torch.randperm(B * I)].view(B, I)  # also outside
        Fb = features(xo, layer.knots, K, True, None).view(B, G + K + 1, I)[:, :G + K]
        Fr = spline.cox_de_boor(xo.double(), layer.knots.double(), K).transpose(1, 2)
        berr = float((Fb.double() - Fr).abs().max())
        kn = layer.knots
        beyond = (xo < kn[:, 0]) | (xo >= kn[:, -1])  # beyond the extended knots: (B, I)
        zero = bool((Fb.transpose(1, 2)[beyond] == 0).all()) and bool(beyond.any())
        ok = err <= 1e-5 and berr <= 1e-6 and zero
        print(f"# check ({B}, {I}->{O}, G={G}): output rel err {err:.1e}, basis err {berr:.1e}, "
              f"zero outside the knots: {zero} -> {'ok' if ok else 'FAIL'} "
              f"[{code_path('nnlab', B, I, G)}]", flush=True)
        if not ok:
            raise SystemExit(f"nnlab is not exact at ({B}, {I}->{O}, G={G})")


def step_fwd(m, x):
    with torch.no_grad():
        m(x)


def step_fb(m, x, gy):
    for p in m.parameters():
        p.grad = None
    x.grad = None
    m(x).backward(gy)


#: the clock of every timing: wall time, or (``--clock cpu``, 1 thread only) the CPU time of
#: this thread, which other processes' load on a shared machine does not inflate
CLOCK = time.perf_counter


def timed(fn):
    t = CLOCK()
    fn()
    return CLOCK() - t


def bench_size(names, B, I, O, G, reps):
    torch.manual_seed(1)
    x = (torch.rand(B, I) * 2 - 1).requires_grad_(True)
    gy = torch.randn(B, O)
    mods = {n: make(n, B, I, O, G) for n in names}
    big = B * I * O * (G + K) > 2e8
    n_reps = {n: (min(reps, 2) if (n == "pykan" and big) else reps) for n in names}
    for n, m in mods.items():  # warm-up (also triggers torch.compile in flashkan / inkan)
        for _ in range(2):
            step_fwd(m, x)
            step_fb(m, x, gy)
    t_f = {n: [] for n in names}
    t_fb = {n: [] for n in names}
    for r in range(reps):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            if r >= n_reps[n]:
                continue
            t_f[n].append(timed(lambda: step_fwd(mods[n], x)))
            t_fb[n].append(timed(lambda: step_fb(mods[n], x, gy)))
    return {n: (statistics.median(t_f[n]), statistics.median(t_fb[n]), min(t_fb[n]), min(t_f[n]))
            for n in names}


def basis_error(name, G):
    """Max |basis − float64 Cox–de Boor| inside [-1, 1] and outside it, float32 inputs."""
    x = torch.linspace(-1.5, 1.5, 4001)[:, None]
    knots64 = spline.uniform_knots(-1, 1, G, K, dtype=torch.float64)[None]
    ref = spline.cox_de_boor(x.double(), knots64, K)[:, 0]  # (n, G+K)
    m = make(name, 4, 1, 1, G)
    with torch.no_grad():
        if name == "nnlab":
            b = features(x, m.knots, K, True, None).view(-1, G + K + 1, 1)[:, :G + K, 0]
        elif name == "flashkan":
            from flashkan.basis import bspline_basis_eager
            b = bspline_basis_eager(x, m.grid_starts, m.inv_h)[:, 0]
        elif name == "inkan":
            from inkan.basis import bspline_basis_eager
            b = bspline_basis_eager(x, m.grid_starts, m.inv_h, m.n_bases)[:, 0]
        elif name == "pykan":
            _pykan_layer_cls()
            from kan.spline import B_batch
            b = B_batch(x, m.layer.grid, k=K)[:, 0]
        else:
            return None
    err = (b.double() - ref).abs().max(1).values
    inside = (x[:, 0] >= -1) & (x[:, 0] <= 1)
    return float(err[inside].max()), float(err[~inside].max())


def memory_child(name, B, I, O, G):
    torch.set_num_threads(1)
    torch.manual_seed(1)
    m = make(name, B, I, O, G)
    x = (torch.rand(B, I) * 2 - 1).requires_grad_(True)
    gy = torch.randn(B, O)
    step_fb(m, x, gy)
    for p in m.parameters():
        p.grad = None
    x.grad = None
    import gc
    gc.collect()

    def status():
        d = dict(line.split(":", 1) for line in open("/proc/self/status"))
        return int(d["VmRSS"].split()[0]), int(d["VmHWM"].split()[0])

    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    rss0, _ = status()
    m(x).backward(gy)
    _, hwm = status()
    print(f"PEAK_KIB {hwm - rss0}")


def peak_memory(name, B, I, O, G):
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, __file__, "--_memory", name, str(B), str(I), str(O), str(G)],
                         capture_output=True, text=True, env=env)
    for line in out.stdout.splitlines():
        if line.startswith("PEAK_KIB"):
            return int(line.split()[1]) / 1024
    print(f"# memory run for {name} failed: {out.stderr[-500:]}", file=sys.stderr)
    return None


def goal_lines(results, names, threads):
    """Issue 14's goals per size: ratio to the floor (1 thread) and the fastest peer (any)."""
    out = [f"Goals at {threads} thread(s) (fwd / fwd+bwd ratio to the floor; fastest other "
           "contender, fwd+bwd):", "",
           "| size | nnlab fwd ratio | nnlab fwd+bwd ratio | ≤ goal (1.3×, 2× at 256, 2→5)? | "
           "fastest peer fwd / fwd+bwd ms | nnlab faster than every peer? |", "|---|---|---|---|---|---|"]
    for (B, I, O, G), res in results.items():
        f0, fb0 = res["gemm floor"][:2]
        f, fb = res["nnlab"][:2]
        goal = 2.0 if (B, I, O, G) == (256, 2, 5, 5) else 1.3
        peers = [n for n in names if n not in ("gemm floor", "nnlab")]
        pf = min((res[n][0] for n in peers), default=float("nan"))
        pfb = min((res[n][1] for n in peers), default=float("nan"))
        met = "yes" if f / f0 <= goal and fb / fb0 <= goal else "no"
        faster = "yes" if f < pf and fb < pfb else ("fwd+bwd only" if fb < pfb else
                                                    ("fwd only" if f < pf else "no"))
        out.append(f"| ({B}, {I}→{O}, {G}) | {f / f0:.2f} | {fb / fb0:.2f} | {met} | "
                   f"{pf * 1e3:.3f} / {pfb * 1e3:.3f} | {faster} |")
    return out


def main():
    ap = argparse.ArgumentParser(description="KAN layer speed/memory/exactness vs peers")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--only", nargs="*", default=None, help="contenders to run (default: all)")
    ap.add_argument("--sizes", default="all", help="comma list of size indices 0-3 (default all)")
    ap.add_argument("--memory", action="store_true", help="also measure peak memory at the largest size")
    ap.add_argument("--out", default=None, help="also write the markdown tables here")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: time by this thread's CPU time (1 thread only; for shared machines)")
    ap.add_argument("--check", action="store_true",
                    help="only assert exactness against float64 Cox–de Boor at every size")
    ap.add_argument("--_memory", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_flush_denormal(True)
    if args._memory:
        n, *dims = args._memory
        memory_child(n, *map(int, dims))
        return
    torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if args.threads != 1:
            raise SystemExit("--clock cpu measures one thread: use it with --threads 1")
        global CLOCK
        CLOCK = time.thread_time
    sizes = SIZES if args.sizes == "all" else [SIZES[int(i)] for i in args.sizes.split(",")]
    check(sizes)
    if args.check:
        return
    names = available(args.only or NAMES)
    if "gemm floor" not in names:
        names = ["gemm floor"] + names
    cap = torch.backends.cpu.get_cpu_capability()
    lines = [f"CPU: {cpu_model()} (torch CPU capability {cap}), torch {torch.__version__}, "
             f"{args.threads} thread(s), {args.clock} clock, medians of {args.reps} interleaved "
             f"repetitions (pykan: 2 at the largest size); ratio = time / gemm floor", "",
             "Code paths:", ""]
    lines += [f"- {n}: {code_path(n, 1024, 64, 5)}" for n in names]
    if "nnlab" in names:
        lines.append("- nnlab route per size: " + "; ".join(
            f"({B}, {I}→{O}, {G}): {nnlab_route(B, I, O, G)}" for (B, I, O, G) in sizes))
    lines.append("")
    approx = {}
    lines.append("| implementation | basis error inside grid | outside grid | exact? |")
    lines.append("|---|---|---|---|")
    for n in names:
        if n == "gemm floor":
            continue
        e5, e20 = basis_error(n, 5), basis_error(n, 20)
        ok = max(e5 + e20) <= 1e-6
        approx[n] = not ok
        lines.append(f"| {n} | {e5[0]:.1e} (G=5), {e20[0]:.1e} (G=20) | {e5[1]:.1e}, {e20[1]:.1e} | "
                     f"{'exact' if ok else 'approx'} |")
    lines.append("")
    lines.append("| size (batch, in→out, G) | implementation | fwd ms | fwd ratio | fwd+bwd ms | "
                 "fwd+bwd ratio | fwd ratio of best times | fwd+bwd ratio of best times |")
    lines.append("|---|---|---|---|---|---|---|---|")
    print("\n".join(lines), flush=True)
    results = {}
    for (B, I, O, G) in sizes:
        res = results[(B, I, O, G)] = bench_size(names, B, I, O, G, args.reps)
        f0, fb0, best0, bf0 = res["gemm floor"]
        for n in names:
            f, fb, best, bf = res[n]
            tag = " (approx)" if approx.get(n) else ""
            row = (f"| ({B}, {I}→{O}, {G}) | {n}{tag} | {f * 1e3:.3f} | {f / f0:.2f} | "
                   f"{fb * 1e3:.3f} | {fb / fb0:.2f} | {bf / bf0:.2f} | {best / best0:.2f} |")
            lines.append(row)
            print(row, flush=True)
    if args.memory:
        B, I, O, G = max(SIZES, key=lambda s: s[0] * s[1] * s[2])
        mem = {n: peak_memory(n, B, I, O, G) for n in names}
        lines += ["", f"Peak memory of one forward+backward at ({B}, {I}→{O}, {G}):", "",
                  "| implementation | peak MiB | ratio to floor |", "|---|---|---|"]
        for n in names:
            if mem[n] is not None:
                lines.append(f"| {n} | {mem[n]:.1f} | {mem[n] / mem['gemm floor']:.2f} |")
        print("\n".join(lines[-len(names) - 4:]), flush=True)
    lines += ["", *goal_lines(results, names, args.threads)]
    print("\n".join(lines[-len(results) - 4:]), flush=True)
    if args.out:
        from nnlab._io import write_text
        write_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
