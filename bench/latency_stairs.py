"""One-thread CPU time of the residual digits MLP against the width of its stream (issue 16).

Latency is not proportional to FLOPs: a CPU matrix product works in blocks of SIMD lanes, so
widths inside one block cost about the same. This is why ``nl.prune.neurons(measure="cpu")`` picks
its widths by timing stand-ins instead of aiming at a FLOPs target. Every width's model is timed
interleaved with the dense one (median of ``--rounds`` rounds × 3 timings), under the shared timing
lock.

    flock /tmp/nnlab-timing.lock env PYTHONPATH=src python bench/latency_stairs.py
"""
from __future__ import annotations

import argparse
import statistics

import torch

import nnlab as nl


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--widths", default="140:200:2", help="start:stop:step of the stream width")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    X = torch.randn(args.batch, 64)
    dense = nl.MLP([64] + [256] * 6 + [10], residual=True)
    a, b, c = (int(v) for v in args.widths.split(":"))
    ws = list(range(a, b, c))
    models = {w: nl.MLP([64] + [w] * 6 + [10], residual=True) for w in ws}
    times: dict[int, list[float]] = {w: [] for w in ws}
    d: list[float] = []
    for _ in range(args.rounds):
        for w in ws:
            d.append(nl.prune.latency(dense, X, repeats=3, clock="cpu"))
            times[w].append(nl.prune.latency(models[w], X, repeats=3, clock="cpu"))
    d0, f0 = statistics.median(d), nl.prune.flops(dense, X)
    print(f"dense (256): {1e6 * d0:.0f} us per batch of {args.batch}")
    print("width  FLOPs speed-up  CPU time (us)  measured speed-up")
    for w in ws:
        t = statistics.median(times[w])
        print(f"{w:5d}  {f0 / nl.prune.flops(models[w], X):13.3f}  {1e6 * t:13.0f}  {d0 / t:17.3f}")


if __name__ == "__main__":
    main()
