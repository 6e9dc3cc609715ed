"""Overhead of nl.fit over a hand-written training loop, and the cost of a checkpoint.

Run: PYTHONPATH=src python bench/bench_training.py [--repeats 7]
All contenders do the same work (same model, data, batch size, Adam, number of steps); they are
interleaved and the medians of the repeats are reported, on 1 thread. Contenders:

* hand loop: randperm, index, forward, cross-entropy, backward, Adam step (no metrics at all);
* nl.fit: the same with History (losses, accuracy, gradient norm), seeded DistributedSampler order;
* nl.fit + extras: also a cosine scheduler with warm-up (stepped per batch), TensorBoard
  (nl.callbacks.TensorBoard: scalars and per-layer gradient norms every epoch) and a checkpoint
  after every epoch (checkpoint_dir: safetensors + JSON, fsynced, atomically replaced).
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


def with_extras(X, y, width, epochs, batch):
    with tempfile.TemporaryDirectory() as d:
        nl.fit(make(width), (X, y), loss="cross_entropy", lr=1e-3, epochs=epochs, batch_size=batch,
               seed=0, progress=False, scheduler="cosine", warmup=1, checkpoint_dir=f"{d}/ckpt",
               callbacks=[nl.callbacks.TensorBoard(f"{d}/tb")])


def table(title, X, y, configs, contenders, repeats):
    print(f"\n{title}\n")
    names = [n for n, _ in contenders]
    print("| hidden width | batch | samples | steps | " + " | ".join(f"{n} ms/step" for n in names)
          + " | " + " | ".join(f"{n} / hand" for n in names[1:]) + " |")
    print("|---" * (4 + 2 * len(names) - 1) + "|")
    for width, batch in configs:
        epochs = 4
        steps = epochs * (len(X) // batch)
        for _, fn in contenders:  # warm-up (imports, allocator)
            fn(X, y, width, 2, batch)
        times = {n: [] for n in names}
        for _ in range(repeats):
            for name, fn in contenders:
                t = time.perf_counter()
                fn(X, y, width, epochs, batch)
                times[name].append((time.perf_counter() - t) / steps * 1e3)
        med = {n: statistics.median(v) for n, v in times.items()}
        print(f"| {width} | {batch} | {len(X)} | {steps} | " + " | ".join(f"{med[n]:.3f}" for n in names)
              + " | " + " | ".join(f"{med[n] / med[names[0]]:.3f}" for n in names[1:]) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", choices=["plain", "extras"], default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    X, y = nl.data.toy("spiral", 1024, seed=0)
    print(f"torch {torch.__version__}, 1 thread")
    if args.only in (None, "plain"):
        table("nothing on", X, y, [(32, 32), (256, 128)],
              [("hand", hand_loop), ("fit", with_fit)], args.repeats)
    if args.only in (None, "extras"):
        X8, y8 = nl.data.toy("spiral", 8192, seed=0)
        for data in ((X, y), (X8, y8)):
            table("scheduler + TensorBoard + a checkpoint every epoch", *data, [(32, 32), (256, 128)],
                  [("hand", hand_loop), ("fit", with_fit), ("fit+extras", with_extras)], args.repeats)
    if args.only == "extras":
        return

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
