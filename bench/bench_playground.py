"""How fast the playground trains and snapshots: ms per epoch and per state view.

    PYTHONPATH=src python bench/bench_playground.py [--repeats 5] [--epochs 10]

For the default setups (MLP and KAN on the spiral set, 400 points, batch 32) it times one
epoch (Trainer.step) and one snapshot (state_view: surface grid, neurons / KAN edges) with
torch intra-op threads = 1 (what the server uses) and = 2 (torch's default here), interleaved,
and prints medians. The thread comparison is why ``create_app(torch_threads=1)`` is the default.
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from nnlab.playground.config import parse_config
from nnlab.playground.snapshot import state_view
from nnlab.playground.trainer import Trainer

SETUPS = {"mlp": {"dataset": "spiral", "model": "mlp"},
          "kan": {"dataset": "spiral", "model": "kan"}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10)
    args = ap.parse_args()
    torch.set_flush_denormal(True)
    warnings.simplefilter("ignore", UserWarning)
    results: dict[tuple[str, int], dict[str, list[float]]] = {}
    for _ in range(args.repeats):
        for name, cfg in SETUPS.items():
            for threads in (1, 2):
                torch.set_num_threads(threads)
                tr = Trainer(parse_config(cfg))
                tr.step()  # warm-up
                t0 = time.perf_counter()
                for _ in range(args.epochs):
                    tr.step()
                t_epoch = (time.perf_counter() - t0) / args.epochs * 1e3
                t0 = time.perf_counter()
                for _ in range(5):
                    state_view(tr)
                t_view = (time.perf_counter() - t0) / 5 * 1e3
                r = results.setdefault((name, threads), {"epoch": [], "view": []})
                r["epoch"].append(t_epoch)
                r["view"].append(t_view)
    print("| model | torch threads | ms / epoch (median) | ms / snapshot (median) |")
    print("|---|---|---|---|")
    for (name, threads), r in results.items():
        print(f"| {name} | {threads} | {statistics.median(r['epoch']):.1f} | "
              f"{statistics.median(r['view']):.1f} |")


if __name__ == "__main__":
    main()
