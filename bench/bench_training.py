"""Overhead of nl.fit over a hand-written training loop, and the cost of a checkpoint.

Run: PYTHONPATH=src python bench/bench_training.py [--repeats 9] [--only plain|extras|checkpoint]

All contenders do the same work: same model, data, batch size, Adam (lr 1e-3), number of steps
and the *same batches in the same order* (the hand loop draws the permutation of epoch e from a
``torch.Generator`` seeded with e, which is the order ``nl.fit(seed=0)`` visits); before timing,
the script checks that the hand loop and ``nl.fit`` end with bit-identical weights. Contenders
are interleaved within each repeat; medians over the repeats are reported, on 1 thread with
``torch.set_flush_denormal(True)``, both in wall-clock time and in process CPU time (the CPU time
is less disturbed by other processes on a shared machine; it leaves out waits such as fsync).

* hand: randperm, index, forward, cross-entropy, backward, Adam step; records nothing;
* fit: ``nl.fit`` (History: losses, accuracy, mean gradient norm; seeded order);
* fit+extras: also a cosine scheduler with warm-up (stepped per batch), TensorBoard
  (``nl.callbacks.TensorBoard``: scalars and per-layer gradient norms every epoch) and a
  checkpoint after every epoch (``checkpoint_dir``: safetensors + JSON, fsynced, atomically
  replaced).

Workloads: the lecture's toy MLP 2→w→w→2 (ReLU) on the spiral set (1,024 or 8,192 samples;
w = 32 with batch 32, w = 256 with batch 128; 4 epochs), and an MNIST-sized MLP 784→256→256→10
on 8,192 synthetic samples, batch 128, 4 epochs.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import torch
from torch import nn

import nnlab as nl
from nnlab.training.checkpoint import load_checkpoint, save_checkpoint


def make(width: int, d_in: int = 2, d_out: int = 2, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                         nn.Linear(width, d_out))


def _dims(X, y):
    return X.shape[1], int(y.max()) + 1


def hand_loop(X, y, width, epochs, batch):
    model = make(width, *_dims(X, y))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    g = torch.Generator()
    for e in range(epochs):
        perm = torch.randperm(len(X), generator=g.manual_seed(e))
        for i in range(0, len(X), batch):
            idx = perm[i:i + batch]
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(X[idx]), y[idx]).backward()
            opt.step()
    return model


def with_fit(X, y, width, epochs, batch):
    model = make(width, *_dims(X, y))
    nl.fit(model, (X, y), loss="cross_entropy", lr=1e-3, epochs=epochs, batch_size=batch,
           seed=0, progress=False)
    return model


_SCRATCH = tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP"))  # removed at exit


def with_extras(X, y, width, epochs, batch):
    model = make(width, *_dims(X, y))
    d = tempfile.mkdtemp(dir=_SCRATCH.name)  # a fresh run folder; removed at exit, not timed
    nl.fit(model, (X, y), loss="cross_entropy", lr=1e-3, epochs=epochs, batch_size=batch,
           seed=0, progress=False, scheduler="cosine", warmup=1, checkpoint_dir=f"{d}/ckpt",
           callbacks=[nl.callbacks.TensorBoard(f"{d}/tb")])
    return model


def check_same_math(X, y, width, batch) -> None:
    """The hand loop and nl.fit must end with identical weights (same batches, same steps)."""
    a, b = hand_loop(X, y, width, 2, batch), with_fit(X, y, width, 2, batch)
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        if not torch.equal(p, q):
            raise SystemExit(f"hand loop and nl.fit differ in {name}: the contenders do not do the "
                             "same work")


def table(title, X, y, configs, contenders, repeats, epochs=4):
    print(f"\n{title}\n")
    names = [n for n, _ in contenders]
    print("| model | batch | samples | steps | " + " | ".join(f"{n} ms/step wall (cpu)" for n in names)
          + " | " + " | ".join(f"{n} / hand wall (cpu)" for n in names[1:]) + " |")
    print("|---" * (4 + 2 * len(names) - 1) + "|")
    for width, batch in configs:
        steps = epochs * -(-len(X) // batch)
        check_same_math(X, y, width, batch)
        for _, fn in contenders:  # warm-up (imports, allocator)
            fn(X, y, width, 2, batch)
        wall = {n: [] for n in names}
        cpu = {n: [] for n in names}
        for _ in range(repeats):
            for name, fn in contenders:
                t, c = time.perf_counter(), time.process_time()
                fn(X, y, width, epochs, batch)
                wall[name].append((time.perf_counter() - t) / steps * 1e3)
                cpu[name].append((time.process_time() - c) / steps * 1e3)
        w = {n: statistics.median(v) for n, v in wall.items()}
        c = {n: statistics.median(v) for n, v in cpu.items()}
        d_in, d_out = _dims(X, y)
        print(f"| {d_in}→{width}→{width}→{d_out} | {batch} | {len(X)} | {steps} | "
              + " | ".join(f"{w[n]:.3f} ({c[n]:.3f})" for n in names) + " | "
              + " | ".join(f"{w[n] / w[names[0]]:.3f} ({c[n] / c[names[0]]:.3f})" for n in names[1:])
              + " |", flush=True)


def mnist_like(n: int = 8192, seed: int = 0):
    """784 features, 10 classes from a fixed random linear teacher (sizes of MNIST)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 784, generator=g)
    y = (X @ torch.randn(784, 10, generator=g)).argmax(dim=1)
    return X, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", choices=["plain", "extras", "checkpoint"], default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    X, y = nl.data.toy("spiral", 1024, seed=0)
    X8, y8 = nl.data.toy("spiral", 8192, seed=0)
    Xm, ym = mnist_like()
    print(f"torch {torch.__version__}, 1 thread, {platform.processor() or platform.machine()}, "
          f"load average at start {os.getloadavg()}")
    plain = [("hand", hand_loop), ("fit", with_fit)]
    extras = plain + [("fit+extras", with_extras)]
    if args.only in (None, "plain"):
        table("nothing on", X, y, [(32, 32), (256, 128)], plain, args.repeats)
        table("nothing on, MNIST-sized", Xm, ym, [(256, 128)], plain, args.repeats)
    if args.only in (None, "extras"):
        for data in ((X, y), (X8, y8)):
            table("scheduler + TensorBoard + a checkpoint every epoch", *data, [(32, 32), (256, 128)],
                  extras, args.repeats)
        table("scheduler + TensorBoard + a checkpoint every epoch, MNIST-sized", Xm, ym, [(256, 128)],
              extras, args.repeats)
    if args.only in (None, "checkpoint"):
        checkpoint_table(X, args.repeats)
    print(f"\nload average at end {os.getloadavg()}")


def checkpoint_table(X, repeats) -> None:
    print("\n| parameters | checkpoint write ms wall (cpu) | load ms | tensors file MB |")
    print("|---|---|---|---|")
    for width in (256, 1024):
        model = make(width)
        opt = torch.optim.Adam(model.parameters())
        model(X[:8]).sum().backward()
        opt.step()
        n = sum(p.numel() for p in model.parameters())
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
            w, c, r = [], [], []
            for e in range(repeats):
                t, t_cpu = time.perf_counter(), time.process_time()
                save_checkpoint(d, model=model, optimizer=opt, epoch=e + 1, history={}, config={},
                                shuffle_seed=0)
                w.append((time.perf_counter() - t) * 1e3)
                c.append((time.process_time() - t_cpu) * 1e3)
                t = time.perf_counter()
                load_checkpoint(d)
                r.append((time.perf_counter() - t) * 1e3)
            size = sum(p.stat().st_size for p in __import__("pathlib").Path(d).glob("*.safetensors"))
        print(f"| {n:,} | {statistics.median(w):.1f} ({statistics.median(c):.1f}) | "
              f"{statistics.median(r):.1f} | {size / 1e6:.1f} |")


if __name__ == "__main__":
    main()
