"""Overhead of nl.fit over a hand-written training loop, and the cost of a checkpoint.

Run: PYTHONPATH=src python bench/bench_training.py [--repeats 7]
Both contenders do the same work (same model, data, batch size, Adam, number of steps); they are
interleaved and the medians of the repeats are reported, on 1 thread.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from torch import nn

import nnlab as nl
from nnlab.training.checkpoint import load_checkpoint, save_checkpoint


def make(width: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(2, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, 2))


def hand_loop(X, y, width, epochs, batch):
    model = make(width)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        perm = torch.randperm(len(X), generator=g)
        for i in range(0, len(X), batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()


def with_fit(X, y, width, epochs, batch):
    nl.fit(make(width), (X, y), loss="cross_entropy", lr=1e-3, epochs=epochs, batch_size=batch,
           seed=0, progress=False)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    X, y = nl.data.toy("spiral", 1024, seed=0)
    print(f"torch {torch.__version__}, 1 thread")
    print("| model (hidden width) | batch | steps | hand loop ms/step | nl.fit ms/step | ratio |")
    print("|---|---|---|---|---|---|")
    for width, batch in [(32, 32), (256, 128)]:
        epochs = 4
        steps = epochs * (len(X) // batch)
        with_fit(X, y, width, 1, batch)  # warm-up (imports, allocator)
        hand_loop(X, y, width, 1, batch)
        times = {"hand": [], "fit": []}
        for _ in range(args.repeats):
            for name, fn in (("hand", hand_loop), ("fit", with_fit)):
                t = time.perf_counter()
                fn(X, y, width, epochs, batch)
                times[name].append((time.perf_counter() - t) / steps * 1e3)
        h, f = statistics.median(times["hand"]), statistics.median(times["fit"])
        print(f"| {width} | {batch} | {steps} | {h:.3f} | {f:.3f} | {f / h:.2f} |")

    print("\n| parameters | checkpoint write ms | load ms | tensors file MB |")
    print("|---|---|---|---|")
    for width in (256, 1024):
        model = make(width)
        opt = torch.optim.Adam(model.parameters())
        model(X[:8]).sum().backward()
        opt.step()
        n = sum(p.numel() for p in model.parameters())
        with tempfile.TemporaryDirectory() as d:
            w, r = [], []
            for e in range(args.repeats):
                t = time.perf_counter()
                save_checkpoint(d, model=model, optimizer=opt, epoch=e + 1, history={}, config={},
                                shuffle_seed=0)
                w.append((time.perf_counter() - t) * 1e3)
                t = time.perf_counter()
                load_checkpoint(d)
                r.append((time.perf_counter() - t) * 1e3)
            size = sum(p.stat().st_size for p in __import__("pathlib").Path(d).glob("*.safetensors"))
        print(f"| {n:,} | {statistics.median(w):.1f} | {statistics.median(r):.1f} | {size / 1e6:.1f} |")


if __name__ == "__main__":
    main()
