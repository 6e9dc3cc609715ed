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


def table(title, X, y, configs, contenders, repeats, epochs=4, ratios=None,
          pairs=((hand_loop, with_fit),)):
    print(f"\n{title}\n")
    names = [n for n, _ in contenders]
    ratios = ratios or [(n, names[0]) for n in names[1:]]
    print("| model | batch | samples | steps | " + " | ".join(f"{n} ms/step wall (cpu)" for n in names)
          + " | " + " | ".join(f"{a} / {b} wall (cpu)" for a, b in ratios) + " |")
    print("|---" * (4 + len(names) + len(ratios)) + "|")
    for width, batch in configs:
        steps = epochs * -(-len(X) // batch)
        check_same_math(X, y, width, batch, pairs)
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
              + " | ".join(f"{w[a] / w[b]:.3f} ({c[a] / c[b]:.3f})" for a, b in ratios)
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
    extras = plain + [("hand+extras", hand_extras), ("fit+extras", with_extras)]
    ex = dict(ratios=[("fit", "hand"), ("fit+extras", "hand"), ("fit+extras", "hand+extras")],
              pairs=((hand_loop, with_fit), (hand_extras, with_extras)))
    if args.only in (None, "plain"):
        table("nothing on", X, y, [(32, 32), (256, 128)], plain, args.repeats)
        table("nothing on, MNIST-sized", Xm, ym, [(256, 128)], plain, args.repeats)
    if args.only in (None, "extras"):
        for data in ((X, y), (X8, y8)):
            table("scheduler + TensorBoard + a checkpoint every epoch", *data, [(32, 32), (256, 128)],
                  extras, args.repeats, **ex)
        table("scheduler + TensorBoard + a checkpoint every epoch, MNIST-sized", Xm, ym, [(256, 128)],
              extras, args.repeats, **ex)
    if args.only in (None, "checkpoint"):
        checkpoint_table(X, args.repeats)
    print(f"\nload average at end {os.getloadavg()}")


def checkpoint_table(X, repeats) -> None:
    print("\n| parameters | checkpoint write ms wall (cpu) | in the background: training thread ms (cpu) "
          "| load ms | tensors file MB |")
    print("|---|---|---|---|---|")
    for width in (256, 1024):
        model = make(width)
        opt = torch.optim.Adam(model.parameters())
        model(X[:8]).sum().backward()
        opt.step()
        n = sum(p.numel() for p in model.parameters())
        with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_TMP")) as d:
            w, c, r, bw, bc = [], [], [], [], []
            writer = CheckpointWriter()
            for e in range(repeats):  # what nl.fit's epoch waits for: the snapshot, then training goes on
                writer.wait()
                t, t_cpu = time.perf_counter(), time.thread_time()
                save_checkpoint(f"{d}/bg", model=model, optimizer=opt, epoch=e + 1, history={},
                                config={}, shuffle_seed=0, writer=writer)
                bw.append((time.perf_counter() - t) * 1e3)
                bc.append((time.thread_time() - t_cpu) * 1e3)
            writer.close()
            for e in range(repeats):
                t, t_cpu = time.perf_counter(), time.process_time()
                save_checkpoint(d, model=model, optimizer=opt, epoch=e + 1, history={}, config={},
                                shuffle_seed=0)
                w.append((time.perf_counter() - t) * 1e3)
                c.append((time.process_time() - t_cpu) * 1e3)
                t = time.perf_counter()
                load_checkpoint(d)
                r.append((time.perf_counter() - t) * 1e3)
            size = sum(p.stat().st_size for p in Path(d).glob("*.safetensors"))
        print(f"| {n:,} | {statistics.median(w):.1f} ({statistics.median(c):.1f}) | "
              f"{statistics.median(bw):.2f} ({statistics.median(bc):.2f}) | "
              f"{statistics.median(r):.1f} | {size / 1e6:.1f} |")


if __name__ == "__main__":
    main()
