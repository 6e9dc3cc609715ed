"""Speed, memory and exactness of one KAN layer: nnlab vs pykan, flashkan, inkan and the GEMM floor.

Run from the repository root (peers come from the ``bench`` extra)::

    PYTHONPATH=src python bench/kan_layer.py --threads 1 --reps 9 --out bench/results/kan_layer_1t.md

What is timed, per size (batch, in -> out, G), k = 3, inputs uniform in the grid range [-1, 1]:

* ``fwd``: forward under ``torch.no_grad()``;
* ``fwd+bwd``: forward, then backward of a fixed random output gradient, with ``x.requires_grad``
  (so every layer also computes ∂L/∂x, as a hidden layer must).

``gemm floor`` is the equivalent dense work on precomputed features: ``nn.Linear(in·(G+k), out)``
applied to a stored (batch, in·(G+k)) basis tensor (which also gets its gradient) plus the base
branch ``nn.Linear(in, out)(silu(x))``. Contenders run interleaved (every repetition times each one,
in rotating order) and the table shows medians and ratios to the floor.

Peak memory (``--memory``, largest size): each contender runs in a fresh subprocess with
``MALLOC_MMAP_THRESHOLD_=65536`` (so freed tensors go back to the OS); after one warm-up step the
peak-RSS counter is reset (``/proc/self/clear_refs``) and we report VmHWM − VmRSS around one
forward+backward. The floor's stored basis tensor is its input and is not counted.

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
from nnlab.kan import spline  # noqa: E402
from nnlab.kan.kernel import features  # noqa: E402

SIZES = [(1024, 64, 64, 5), (4096, 256, 256, 5), (1024, 64, 64, 20), (256, 2, 5, 5)]
K = 3
NAMES = ["gemm floor", "nnlab", "flashkan", "inkan", "pykan"]


class Floor(nn.Module):
    def __init__(self, B, I, O, G):
        super().__init__()
        self.lin = nn.Linear(I * (G + K), O, bias=False)
        self.base = nn.Linear(I, O, bias=False)
        self.feats = torch.rand(B, I * (G + K)) * 0.3

    def forward(self, x):
        f = self.feats
        if torch.is_grad_enabled() and x.requires_grad and not f.requires_grad:
            f.requires_grad_(True)
        return self.lin(f) + self.base(F.silu(x))


class PykanWrap(nn.Module):
    def __init__(self, layer):
        super().__init__()
        self.layer = layer

    def forward(self, x):
        return self.layer(x)[0]


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
        from kan.KANLayer import KANLayer
        return PykanWrap(KANLayer(in_dim=I, out_dim=O, num=G, k=K))
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


def step_fwd(m, x):
    with torch.no_grad():
        m(x)


def step_fb(m, x, gy):
    for p in m.parameters():
        p.grad = None
    x.grad = None
    m(x).backward(gy)


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


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
    return {n: (statistics.median(t_f[n]), statistics.median(t_fb[n]), len(t_f[n])) for n in names}


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


def main():
    ap = argparse.ArgumentParser(description="KAN layer speed/memory/exactness vs peers")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--only", nargs="*", default=None, help="contenders to run (default: all)")
    ap.add_argument("--sizes", default="all", help="comma list of size indices 0-3 (default all)")
    ap.add_argument("--memory", action="store_true", help="also measure peak memory at the largest size")
    ap.add_argument("--out", default=None, help="also write the markdown tables here")
    ap.add_argument("--_memory", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    torch.set_flush_denormal(True)
    if args._memory:
        n, *dims = args._memory
        memory_child(n, *map(int, dims))
        return
    torch.set_num_threads(args.threads)
    names = available(args.only or NAMES)
    if "gemm floor" not in names:
        names = ["gemm floor"] + names
    sizes = SIZES if args.sizes == "all" else [SIZES[int(i)] for i in args.sizes.split(",")]
    lines = [f"torch {torch.__version__}, {args.threads} thread(s), medians of {args.reps} interleaved "
             f"repetitions (pykan: 2 at the largest size); ratio = time / gemm floor", ""]
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
    lines.append("| size (batch, in→out, G) | implementation | fwd ms | fwd ratio | fwd+bwd ms | fwd+bwd ratio |")
    lines.append("|---|---|---|---|---|---|")
    print("\n".join(lines), flush=True)
    for (B, I, O, G) in sizes:
        res = bench_size(names, B, I, O, G, args.reps)
        f0, fb0, _ = res["gemm floor"]
        for n in names:
            f, fb, cnt = res[n]
            tag = " (approx)" if approx.get(n) else ""
            row = (f"| ({B}, {I}→{O}, {G}) | {n}{tag} | {f * 1e3:.3f} | {f / f0:.2f} | "
                   f"{fb * 1e3:.3f} | {fb / fb0:.2f} |")
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
    if args.out:
        from nnlab._io import write_text
        write_text(args.out, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
