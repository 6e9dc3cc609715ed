"""Overhead of nl.fit over a hand-written training loop, and the cost of a checkpoint.

Run: flock /tmp/nnlab-timing.lock .venv/bin/python bench/bench_training.py [--repeats 7] [--only overhead|checkpoint]

All contenders do the same work: same model, data, batch size, Adam (lr 1e-3), number of steps
and the *same batches in the same order* (the hand loop draws the permutation of epoch e from a
``torch.Generator`` seeded with e, which is the order ``nl.fit(seed=0)`` visits); before timing,
the script checks that the hand loop and ``nl.fit`` end with bit-identical weights. On 1 thread
with ``torch.set_flush_denormal(True)``.

Made for a shared machine: every repeat runs all the contenders on a workload back to back, in
an order that alternates from repeat to repeat; each ratio is taken *within* a repeat (runs
seconds apart, under the same load) and the median of those paired ratios over the repeats is
reported, in wall-clock time and in process CPU time (less disturbed by other processes; it
includes the checkpoint writer thread but leaves out waits such as fsync), beside the median
times and the 1-minute load average (min/median/max over the repeats). A final table counts, for
each goal of issue 15, on how many workloads it is met. Wrap runs in the timing lock (above).

* hand: randperm, index, forward, cross-entropy, backward, Adam step; records nothing;
* fit: ``nl.fit`` with its defaults (History: losses, accuracy; seeded order; no per-step
  gradient norm: since session 5 it is recorded on request);
* fit+‖g‖: ``nl.fit(..., grad_norm=True)``: History also holds the mean global gradient norm
  (one fused ``torch._foreach_norm`` per step);
* fit+extras: also a cosine scheduler with warm-up (stepped per batch), TensorBoard
  (``nl.callbacks.TensorBoard``: scalars and per-layer gradient norms every epoch) and a
  checkpoint after every epoch (``checkpoint_dir``: safetensors + JSON, fsynced, atomically
  replaced).
* hand+extras: the hand loop doing the same extras by hand, as a careful user would: the same
  cosine schedule through ``LambdaLR`` (stepped per batch; the weights end bit-identical to
  fit+extras', checked), the epoch's mean loss, accuracy and learning rate and each layer's
  gradient norm into TensorBoard through ``SummaryWriter.add_scalar`` (flushed every epoch), and a
  resumable checkpoint every epoch (``torch.save`` of model, optimiser, scheduler and RNG state to
  a temporary file, fsync, ``os.replace``, fsync of the folder: atomic and durable like fit's).
  ``fit+extras / hand+extras`` is the trainer's overhead with the extras on, like for like;
  ``fit+extras / hand`` also counts the cost of the extras themselves.

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
from pathlib import Path

import torch
from torch import nn

import nnlab as nl
from nnlab.training.checkpoint import CheckpointWriter, load_checkpoint, save_checkpoint


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


def with_fit_norm(X, y, width, epochs, batch):
    model = make(width, *_dims(X, y))
    nl.fit(model, (X, y), loss="cross_entropy", lr=1e-3, epochs=epochs, batch_size=batch,
           seed=0, progress=False, grad_norm=True)
    return model


_SCRATCH = tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP"))  # removed at exit


def with_extras(X, y, width, epochs, batch):
    model = make(width, *_dims(X, y))
    d = tempfile.mkdtemp(dir=_SCRATCH.name)  # a fresh run folder; removed at exit, not timed
    nl.fit(model, (X, y), loss="cross_entropy", lr=1e-3, epochs=epochs, batch_size=batch,
           seed=0, progress=False, scheduler="cosine", warmup=1, checkpoint_dir=f"{d}/ckpt",
           callbacks=[nl.callbacks.TensorBoard(f"{d}/tb")])
    return model


def hand_extras(X, y, width, epochs, batch):
    """The hand loop with a per-batch cosine schedule, TensorBoard scalars and a durable,
    atomic checkpoint every epoch, written by hand."""
    from torch.utils.tensorboard import SummaryWriter

    from nnlab.training.schedulers import warmup_cosine

    model = make(width, *_dims(X, y))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    spe = -(-len(X) // batch)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: warmup_cosine(t, epochs * spe, spe))
    d = tempfile.mkdtemp(dir=_SCRATCH.name)
    tb = SummaryWriter(f"{d}/tb")
    names = [n for n, _ in model.named_parameters()]
    g = torch.Generator()
    for e in range(epochs):
        perm = torch.randperm(len(X), generator=g.manual_seed(e))
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.int64)
        for i in range(0, len(X), batch):
            idx = perm[i:i + batch]
            xb, yb = X[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = nn.functional.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.detach() * len(idx)
            correct += (out.detach().argmax(dim=1) == yb).sum()
        tb.add_scalar("loss/train", float(loss_sum) / len(X), e + 1)
        tb.add_scalar("accuracy/train", int(correct) / len(X), e + 1)
        tb.add_scalar("lr", opt.param_groups[0]["lr"], e + 1)
        norms = torch._foreach_norm([p.grad for p in model.parameters()])
        for n, v in zip(names, torch.stack(norms).tolist()):
            tb.add_scalar(f"grad_norm/{n}", v, e + 1)
        tb.flush()
        state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
                 "scheduler": sched.state_dict(), "epoch": e + 1, "rng": torch.get_rng_state()}
        with open(f"{d}/ckpt.pt.tmp", "wb") as fh:
            torch.save(state, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(f"{d}/ckpt.pt.tmp", f"{d}/ckpt.pt")
        fd = os.open(d, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    tb.close()
    return model


def check_same_math(X, y, width, batch, pairs=((hand_loop, with_fit),)) -> None:
    """Each hand loop and its nl.fit must end with identical weights (same batches, same steps,
    same learning rates)."""
    for hand, fit in pairs:
        a, b = hand(X, y, width, 2, batch), fit(X, y, width, 2, batch)
        for (name, p), q in zip(a.named_parameters(), b.parameters()):
            if not torch.equal(p, q):
                raise SystemExit(f"{hand.__name__} and {fit.__name__} differ in {name}: the "
                                 "contenders do not do the same work")


CONTENDERS = [("hand", hand_loop), ("fit", with_fit), ("fit+‖g‖", with_fit_norm),
              ("hand+extras", hand_extras), ("fit+extras", with_extras)]
# (ratio, goal): fit / hand is the trainer's overhead with nothing on (fit+‖g‖ / hand: the same
# with History's per-step gradient norm, the goal is not its); fit+extras / hand+extras the overhead with the
# extras on, like for like; fit+extras / hand also counts the extras' own cost
RATIOS = [(("fit", "hand"), 1.05), (("fit+‖g‖", "hand"), 1.05),
          (("fit+extras", "hand+extras"), 1.10), (("fit+extras", "hand"), 1.10)]
PAIRS = ((hand_loop, with_fit), (hand_loop, with_fit_norm), (hand_extras, with_extras))


def measure(X, y, width, batch, repeats, epochs=4) -> dict:
    """Interleaved repeats: every repeat runs each contender once, in an order that alternates
    (forwards on even repeats, backwards on odd ones) so that no contender always runs first or
    right after another; a ratio is taken within each repeat (contenders that ran seconds apart,
    under the same load) and its median over the repeats is reported, with the median times."""
    steps = epochs * -(-len(X) // batch)
    check_same_math(X, y, width, batch, PAIRS)
    for _, fn in CONTENDERS:  # warm-up (imports, allocator)
        fn(X, y, width, 2, batch)
    wall = {n: [] for n, _ in CONTENDERS}
    cpu = {n: [] for n, _ in CONTENDERS}
    loads = [os.getloadavg()[0]]
    for r in range(repeats):
        for name, fn in (CONTENDERS if r % 2 == 0 else CONTENDERS[::-1]):
            t, c = time.perf_counter(), time.process_time()
            fn(X, y, width, epochs, batch)
            wall[name].append((time.perf_counter() - t) / steps * 1e3)
            cpu[name].append((time.process_time() - c) / steps * 1e3)
        loads.append(os.getloadavg()[0])
    ratio = {}
    for (a, b), _ in RATIOS:
        ratio[a, b] = (statistics.median(x / z for x, z in zip(wall[a], wall[b])),
                       statistics.median(x / z for x, z in zip(cpu[a], cpu[b])))
    return {"steps": steps, "wall": {n: statistics.median(v) for n, v in wall.items()},
            "cpu": {n: statistics.median(v) for n, v in cpu.items()}, "ratio": ratio,
            "load": (min(loads), statistics.median(loads), max(loads))}


def overhead_table(workloads, repeats) -> list:
    names = [n for n, _ in CONTENDERS]
    print("\n| model | batch | samples | steps | load (1-min: min/median/max) | "
          + " | ".join(f"{n} ms/step wall (cpu)" for n in names) + " | "
          + " | ".join(f"{a} / {b} wall (cpu)" for (a, b), _ in RATIOS) + " |")
    print("|---" * (5 + len(names) + len(RATIOS)) + "|")
    rows = []
    for label, X, y, width, batch in workloads:
        m = measure(X, y, width, batch, repeats)
        rows.append((label, m))
        w, c = m["wall"], m["cpu"]
        print(f"| {label} | {batch} | {len(X)} | {m['steps']} | "
              + "/".join(f"{v:.1f}" for v in m["load"]) + " | "
              + " | ".join(f"{w[n]:.3f} ({c[n]:.3f})" for n in names) + " | "
              + " | ".join("{:.3f} ({:.3f})".format(*m["ratio"][k]) for k, _ in RATIOS)
              + " |", flush=True)
    return rows


def verdict(rows) -> None:
    """Each goal of issue 15 per comparison: on how many workloads the median paired ratio is
    within the goal, in wall time and in CPU time, and the median over the workloads."""
    print("\n| comparison | goal | wall: within / workloads (median, range) "
          "| cpu: within / workloads (median, range) |")
    print("|---|---|---|---|")
    for k, goal in RATIOS:
        cells = []
        for i in (0, 1):
            v = [m["ratio"][k][i] for _, m in rows]
            cells.append(f"{sum(x <= goal for x in v)} / {len(v)} ({statistics.median(v):.3f}, "
                         f"{min(v):.3f}–{max(v):.3f})")
        print(f"| {k[0]} / {k[1]} | ≤ {goal:.2f} | {cells[0]} | {cells[1]} |")


def mnist_like(n: int = 8192, seed: int = 0):
    """784 features, 10 classes from a fixed random linear teacher (sizes of MNIST)."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 784, generator=g)
    y = (X @ torch.randn(784, 10, generator=g)).argmax(dim=1)
    return X, y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--only", choices=["overhead", "checkpoint"], default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    t0 = time.perf_counter()
    X, y = nl.data.toy("spiral", 1024, seed=0)
    X8, y8 = nl.data.toy("spiral", 8192, seed=0)
    Xm, ym = mnist_like()
    print(f"torch {torch.__version__}, 1 thread, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()}, repeats {args.repeats}")
    if args.only in (None, "overhead"):
        rows = overhead_table([("2→32→32→2", X, y, 32, 32), ("2→256→256→2", X, y, 256, 128),
                               ("2→32→32→2", X8, y8, 32, 32), ("2→256→256→2", X8, y8, 256, 128),
                               ("784→256→256→10", Xm, ym, 256, 128)], args.repeats)
        verdict(rows)
    if args.only in (None, "checkpoint"):
        checkpoint_table(X, max(args.repeats, 9))
    print(f"\nload average at end {os.getloadavg()}, {time.perf_counter() - t0:.0f} s in all")


def checkpoint_table(X, repeats) -> None:
    """A checkpoint of the 2→w→w→2 MLP with Adam state: what an epoch of ``nl.fit`` pays on the
    training thread with the background writer (thread CPU and wall of ``save_checkpoint``, the
    previous write finished), the writer thread's CPU (process CPU of save + wait, less the
    training thread's), a synchronous write (everything on the calling thread, fsyncs included)
    and a verified load; then the training thread's pieces, each timed alone."""
    print("\n| parameters | training thread per save: ms cpu (wall) | writer thread ms cpu "
          "| sync write ms wall (cpu) | load ms | tensors file MB |")
    print("|---|---|---|---|---|---|")
    pieces = []
    for width in (256, 1024):
        model = make(width)
        opt = torch.optim.Adam(model.parameters())
        model(X[:8]).sum().backward()
        opt.step()
        n = sum(p.numel() for p in model.parameters())
        kw = dict(model=model, optimizer=opt, history={"train_loss": [0.5] * 4}, config={},
                  shuffle_seed=0)
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
            w, c, r, bw, bc, wc = [], [], [], [], [], []
            writer = CheckpointWriter()
            save_checkpoint(f"{d}/bg", epoch=0, writer=writer, **kw)  # lays out the buffer
            for e in range(repeats):
                writer.wait()
                t, t_cpu, p_cpu = time.perf_counter(), time.thread_time(), time.process_time()
                save_checkpoint(f"{d}/bg", epoch=e + 1, writer=writer, **kw)
                bw.append((time.perf_counter() - t) * 1e3)
                bc.append((time.thread_time() - t_cpu) * 1e3)
                writer.wait()
                wc.append((time.process_time() - p_cpu) * 1e3 - bc[-1])
            writer.close()
            for e in range(repeats):
                t, t_cpu = time.perf_counter(), time.process_time()
                save_checkpoint(d, epoch=e + 1, **kw)
                w.append((time.perf_counter() - t) * 1e3)
                c.append((time.process_time() - t_cpu) * 1e3)
                t = time.perf_counter()
                load_checkpoint(d)
                r.append((time.perf_counter() - t) * 1e3)
            size = sum(p.stat().st_size for p in Path(d).glob("*.safetensors"))
        med = statistics.median
        print(f"| {n:,} | {med(bc):.2f} ({med(bw):.2f}) | {med(wc):.2f} | {med(w):.1f} ({med(c):.1f}) | "
              f"{med(r):.1f} | {size / 1e6:.1f} |", flush=True)
        pieces.append((n, _snapshot_pieces(model, opt, repeats * 5)))
    print("\nTraining-thread pieces of a background save, thread CPU µs (median):\n")
    names = list(pieces[0][1])
    print("| parameters | " + " | ".join(names) + " |")
    print("|---" * (1 + len(names)) + "|")
    for n, p in pieces:
        print(f"| {n:,} | " + " | ".join(f"{p[k]:.0f}" for k in names) + " |")


def _snapshot_pieces(model, opt, repeats) -> dict:
    import hashlib
    import json

    from nnlab.training._pack import Packer
    from nnlab.training.checkpoint import _rng_json, _rng_raw, _split

    def tensors():
        t = {f"model.{k}": v for k, v in model.state_dict().items()}
        return t, _split(opt.state_dict(), "optimizer", t)

    packer, (t, _) = Packer(), tensors()
    _rng_raw(t, 0)
    blob = packer.pack(t)
    raw = _rng_raw({}, 0)
    parts = {"state_dict walks": tensors, "RNG states": lambda: _rng_raw({}, 0),
             "tensor copy (pack)": lambda: packer.pack(t),
             "(writer) JSON": lambda: json.dumps({"rng": _rng_json(raw)}, separators=(",", ":")),
             "(writer) SHA-256": lambda: hashlib.sha256(blob).hexdigest()}
    out = {}
    for name, fn in parts.items():
        fn()
        ts = []
        for _ in range(repeats):
            c = time.thread_time()
            fn()
            ts.append((time.thread_time() - c) * 1e6)
        out[name] = statistics.median(ts)
    return out


if __name__ == "__main__":
    main()
