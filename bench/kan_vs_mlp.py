"""KAN vs MLP (lecture §6.2–6.3): test RMSE against parameter count on smooth targets.

Run from the repository root::

    PYTHONPATH=src python bench/kan_vs_mlp.py --feynman ../shared/feynman/public.csv \\
        --out bench/results/kan_vs_mlp.md --plot bench/results/kan_vs_mlp.png

Targets: ``exp(sin(pi x) + y^2)`` and ``x y`` on [-1, 1]^2, and one formula (``--feynman-id``,
default I.6.2) from the Feynman table, on its listed variable ranges. Inputs are mapped linearly
to [-1, 1] and outputs standardised for training; the table reports the test RMSE divided by
the test targets' standard deviation (so 0.01 means 1 % of the spread).

KANs: width ``[n, 5, 1]``, trained with LBFGS at G = 3, then grid-extended (function
preserved) to G = 5, 10, 20 and trained again, as in the KAN paper; every grid is a point.
MLPs: ``[n, h, h, 1]`` with SiLU for h in 4, 8, 16, 32, 64, trained with the same LBFGS budget.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
import warnings

import torch
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))
import nnlab as nl  # noqa: E402


def feynman_target(path: str, fid: str):
    import sympy

    with open(path, newline="") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    if fid not in rows:
        raise SystemExit(f"{fid} not in {path}; ids: {', '.join(list(rows)[:10])}, ...")
    r = rows[fid]
    names = r["variables"].split()
    syms = sympy.symbols(names)
    expr = sympy.sympify(r["formula"], locals=dict(zip(names, syms)))
    fn = sympy.lambdify(syms, expr, modules="math")
    ranges = [tuple(float(v) for v in rg.split(",")) for rg in r["ranges"].split()]

    def f(X: torch.Tensor) -> torch.Tensor:
        cols = [X[:, j].double() for j in range(X.shape[1])]
        import numpy as np
        vals = np.vectorize(fn)(*[c.numpy() for c in cols])
        return torch.as_tensor(vals, dtype=torch.float32)[:, None]

    return f"Feynman {fid}: {r['formula']}", len(names), ranges, f


def targets(args):
    out = [
        ("exp(sin(pi x) + y^2)", 2, [(-1, 1)] * 2,
         lambda X: torch.exp(torch.sin(math.pi * X[:, :1]) + X[:, 1:2] ** 2)),
        ("x y", 2, [(-1, 1)] * 2, lambda X: X[:, :1] * X[:, 1:2]),
    ]
    if args.feynman and os.path.isfile(args.feynman):
        out.append(feynman_target(args.feynman, args.feynman_id))
    else:
        print(f"# Feynman table not found at {args.feynman}; skipping it", file=sys.stderr)
    return out


def sample(n, ranges, f, g):
    lo = torch.tensor([a for a, _ in ranges])
    hi = torch.tensor([b for _, b in ranges])
    X = lo + (hi - lo) * torch.rand(n, len(ranges), generator=g)
    return (X - lo) / (hi - lo) * 2 - 1, f(X)


def lbfgs(model, X, y, steps):
    opt = torch.optim.LBFGS(model.parameters(), lr=1.0, max_iter=20, history_size=20,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(X), y)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)


def rel_rmse(model, X, y, mu, sd):
    with torch.no_grad():
        pred = model(X) * sd + mu
    return math.sqrt(nn.functional.mse_loss(pred, y).item()) / float(y.std())


def n_params(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def run_target(name, n_in, ranges, f, args, g):
    Xtr, ytr = sample(args.n_train, ranges, f, g)
    Xte, yte = sample(args.n_test, ranges, f, g)
    mu, sd = ytr.mean(), ytr.std()
    ys = (ytr - mu) / sd
    rows = []
    torch.manual_seed(args.seed)
    kan = nl.KAN([n_in, 5, 1], grid=3, k=3, seed=args.seed)
    for G in (3, 5, 10, 20):
        if G != 3:
            kan.extend_grid(G)
        lbfgs(kan, Xtr, ys, args.steps)
        rows.append((name, f"KAN [{n_in},5,1] G={G}", n_params(kan), rel_rmse(kan, Xte, yte, mu, sd)))
    for h in (4, 8, 16, 32, 64):
        torch.manual_seed(args.seed)
        mlp = nn.Sequential(nn.Linear(n_in, h), nn.SiLU(), nn.Linear(h, h), nn.SiLU(), nn.Linear(h, 1))
        lbfgs(mlp, Xtr, ys, args.steps)
        rows.append((name, f"MLP [{n_in},{h},{h},1]", n_params(mlp), rel_rmse(mlp, Xte, yte, mu, sd)))
    return rows


def plot(rows, path):
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(r[0] for r in rows))
    fig = Figure(figsize=(4.2 * len(names), 3.6))
    for j, nm in enumerate(names):
        ax = fig.add_subplot(1, len(names), j + 1)
        for kind, style in (("KAN", "o-"), ("MLP", "s--")):
            pts = [(r[2], r[3]) for r in rows if r[0] == nm and r[1].startswith(kind)]
            ax.loglog([p for p, _ in pts], [e for _, e in pts], style, label=kind)
        ax.set_title(nm, fontsize=8)
        ax.set_xlabel("parameters")
        ax.set_ylabel("test RMSE / std(y)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description="KAN vs MLP: test RMSE vs parameters")
    ap.add_argument("--feynman", default=os.path.join("..", "shared", "feynman", "public.csv"),
                    help="Feynman formula table (default ../shared/feynman/public.csv)")
    ap.add_argument("--feynman-id", default="I.6.2")
    ap.add_argument("--n-train", type=int, default=1000)
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=10, help="LBFGS steps (x20 iterations) per fit")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the markdown table here")
    ap.add_argument("--plot", default=None, help="write the log-log plot here (png/pdf)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    g = torch.Generator().manual_seed(args.seed)
    rows = []
    t0 = time.time()
    for name, n_in, ranges, f in targets(args):
        rows += run_target(name, n_in, ranges, f, args, g)
    lines = ["| target | model | parameters | test RMSE / std(y) |", "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d:.2e} |" for a, b, c, d in rows]
    lines.append("")
    lines.append(f"{args.n_train} train / {args.n_test} test points, LBFGS {args.steps}x20 "
                 f"iterations per fit, seed {args.seed}; {time.time() - t0:.0f} s, 1 thread.")
    text = "\n".join(lines)
    print(text)
    if args.out:
        from nnlab._io import write_text
        write_text(args.out, text + "\n")
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()
