"""The features + GEMM training route of a KAN layer with and without row blocks, and with or
without other layers' steps in between (cold caches), in one process, interleaved; the GEMM
floor of ``bench/kan_layer.py`` as the yardstick. 1 thread, CPU time of this thread, ratios of
medians to the floor's. Peers (optional, from the ``bench`` extra) only run between the timed
steps, untimed, as another layer of a model would.

    python bench/kan_dense_blocks.py             # floor and nnlab alone
    python bench/kan_dense_blocks.py inkan       # inkan's forward+backward between timed steps

Variants: ``blk17`` / ``blk16``: ``nnlab.kan.cpu_layer.GF_BLOCK_ELEMENTS`` = 2^17 / 2^16 values
per block; ``whole``: one block (F and ∂L/∂F of the whole batch). Forward (inference) takes the
route the cost rule picks, the same for every variant.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import kan_layer as kl  # noqa: E402  (the floor, the steps)

from nnlab.kan import cpu_layer  # noqa: E402


def main():
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    B, I, O, G = 1024, 64, 64, 5
    torch.manual_seed(1)
    x = (torch.rand(B, I) * 2 - 1).requires_grad_(True)
    gy = torch.randn(B, O)
    peers = sys.argv[1:]
    mods = {n: kl.make(n, B, I, O, G) for n in ["gemm floor", "nnlab"] + peers}
    for m in mods.values():
        for _ in range(2):
            kl.step_fwd(m, x)
            kl.step_fb(m, x, gy)
    variants = {"floor": None, "blk17": 1 << 17, "blk16": 1 << 16, "whole": 1 << 30}
    ts = {v: ([], []) for v in variants}
    old = cpu_layer.GF_BLOCK_ELEMENTS
    try:
        for _ in range(41):
            for v, g in variants.items():
                m = mods["gemm floor" if g is None else "nnlab"]
                if g:
                    cpu_layer.GF_BLOCK_ELEMENTS = g
                for j, step in enumerate((lambda: kl.step_fwd(m, x), lambda: kl.step_fb(m, x, gy))):
                    for p in peers:
                        kl.step_fb(mods[p], x, gy)
                    t = time.thread_time()
                    step()
                    ts[v][j].append(time.thread_time() - t)
    finally:
        cpu_layer.GF_BLOCK_ELEMENTS = old
    f0 = [statistics.median(a) for a in ts["floor"]]
    print(f"({B}, {I}->{O}, G={G}), peers between steps: {peers or 'none'}")
    for v, (f, fb) in ts.items():
        print(f"  {v:6s} fwd {statistics.median(f) * 1e3:7.3f} ms ({statistics.median(f) / f0[0]:.2f}x)"
              f"  fwd+bwd {statistics.median(fb) * 1e3:7.3f} ms ({statistics.median(fb) / f0[1]:.2f}x)")


if __name__ == "__main__":
    main()
