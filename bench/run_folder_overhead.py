"""Cost of a run folder: nl.fit bare vs + metrics.jsonl logger vs + per-epoch checkpoints.

Also times the metrics.jsonl write itself: the atomic whole-file rewrite that MetricsLogger does
(temporary file, fsync, rename) against an append + fsync, as the log grows to --lines epochs.

    python bench/run_folder_overhead.py [--epochs 30] [--repeats 5] [--lines 1000]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

import nnlab as nl
from nnlab._io import write_text
from nnlab.runs import MetricsLogger


def one_fit(kind: str, epochs: int, tmp: Path) -> float:
    X, y = nl.data.toy("spiral", 400, seed=0)
    torch.manual_seed(0)
    model = nl.MLP([2, 32, 32, 2])
    for f in tmp.glob("*"):
        if f.is_file():
            f.unlink()
    kw = {}
    if kind != "bare":
        kw["callbacks"] = [MetricsLogger(tmp / "metrics.jsonl")]
    if kind == "logger+checkpoints":
        kw["checkpoint_dir"] = str(tmp / "ckpt")
    t = time.perf_counter()
    nl.fit(model, (X, y), loss="cross_entropy", lr=1e-2, epochs=epochs, batch_size=64, seed=0,
           progress=False, **kw)
    return (time.perf_counter() - t) / epochs


def write_costs(lines: int, tmp: Path) -> dict[str, float]:
    rec = {"epoch": 0, "train_risk": 0.123456, "val_risk": 0.23456, "accuracy": 0.9, "grad_norm": 1.2,
           "lr": 0.01, "time_s": 0.01, "elapsed_s": 1.0, "train_accuracy": 0.9, "val_accuracy": 0.9}
    text = ""
    rewrite, append = [], []
    path_a = tmp / "append.jsonl"
    for e in range(lines):
        line = json.dumps({**rec, "epoch": e}) + "\n"
        text += line
        if e % max(1, lines // 50) == 0 or e == lines - 1:  # sample 50 points along the growth
            t = time.perf_counter()
            write_text(tmp / "rewrite.jsonl", text)
            rewrite.append(time.perf_counter() - t)
        t = time.perf_counter()
        with open(path_a, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        if e % max(1, lines // 50) == 0 or e == lines - 1:
            append.append(time.perf_counter() - t)
    return {"rewrite_median_ms": 1e3 * statistics.median(rewrite), "rewrite_last_ms": 1e3 * rewrite[-1],
            "append_median_ms": 1e3 * statistics.median(append), "bytes": len(text)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--lines", type=int, default=1000)
    a = p.parse_args()
    torch.set_num_threads(1)
    torch.set_flush_denormal(True)
    kinds = ("bare", "logger", "logger+checkpoints")
    times: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        one_fit("bare", 2, tmp)  # warm-up (imports, allocator)
        for _ in range(a.repeats):  # interleaved, so load changes hit every contender alike
            for k in kinds:
                times[k].append(one_fit(k, a.epochs, tmp))
        w = write_costs(a.lines, tmp)
    base = statistics.median(times["bare"])
    print(f"| setup | median ms / epoch | ratio to bare |\n|---|---|---|")
    for k in kinds:
        m = statistics.median(times[k])
        print(f"| {k} | {1e3 * m:.2f} | {m / base:.2f} |")
    print(f"\nmetrics.jsonl with {a.lines} lines ({w['bytes']} bytes): atomic rewrite median "
          f"{w['rewrite_median_ms']:.2f} ms (last {w['rewrite_last_ms']:.2f} ms); append+fsync median "
          f"{w['append_median_ms']:.2f} ms")


if __name__ == "__main__":
    main()
