"""The two native CPU routes of a KAN layer side by side in one process, interleaved: the sparse
route (no feature matrix) and features + GEMM, each forced, with the GEMM floor of
``bench/kan_layer.py`` as the yardstick, and the route the cost rule
``nnlab.kan.kernel.sparse_preferred`` picks. For checking the rule's constants on a machine.

    python bench/kan_routes.py --sizes 1024,64,64,5 1024,64,64,20 256,2,5,5 --reps 61

Timings: medians (and the best time) of the CPU time of this thread, 1 thread, ms.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import kan_layer as kl  # noqa: E402  (the floor, the steps)

from nnlab.kan import kernel  # noqa: E402


def run(B, I, O, G, reps):
    torch.manual_seed(1)
    x = (torch.rand(B, I) * 2 - 1).requires_grad_(True)
    gy = torch.randn(B, O)
    rule = kernel.sparse_preferred
    force = {"floor": rule, "sparse": lambda *a: True, "gemm": lambda *a: False}
    mods = {n: kl.make("gemm floor" if n == "floor" else "nnlab", B, I, O, G) for n in force}
    times = {n: ([], []) for n in force}
    names = list(force)
    try:
        for r in range(-2, reps):
            for n in names[r % 3:] + names[:r % 3]:
                kernel.sparse_preferred = force[n]
                for j, step in enumerate((lambda: kl.step_fwd(mods[n], x),
                                          lambda: kl.step_fb(mods[n], x, gy))):
                    t = time.thread_time()
                    step()
                    if r >= 0:
                        times[n][j].append(time.thread_time() - t)
    finally:
        kernel.sparse_preferred = rule
    K = G + kl.K
    pick = ["sparse" if rule(B, I, O, K, kl.K, tr) else "gemm" for tr in (False, True)]
    print(f"({B}, {I}->{O}, G={G}): rule picks fwd: {pick[0]}, fwd+bwd: {pick[1]}")
    fl = [statistics.median(v) for v in times["floor"]]
    for n, (f, fb) in times.items():
        print(f"  {n:6s} fwd {statistics.median(f) * 1e3:8.3f} ms ({statistics.median(f) / fl[0]:.2f}x)"
              f"  fwd+bwd {statistics.median(fb) * 1e3:8.3f} ms ({statistics.median(fb) / fl[1]:.2f}x)"
              f"  best fwd+bwd {min(fb) * 1e3:.3f}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1024,64,64,5", "1024,64,64,20", "256,2,5,5"],
                    help="batch,in,out,grid per size")
    ap.add_argument("--reps", type=int, default=61)
    args = ap.parse_args()
    torch.set_num_threads(1)
    for s in args.sizes:
        run(*map(int, s.split(",")), args.reps)


if __name__ == "__main__":
    main()
