"""§6: a KAN learns f(x1, x2) = sin(π·x1) + x2², and symbolic regression reads the formula back.

Step 1–2 of §6.3 by hand: a KAN [2, 5, 1] is trained with the sparsity regulariser (nl.fit's
``penalty``), then pruned (``KAN.prune``); its edge functions φ(x) are drawn (nl.kan.plot) next
to the data. Steps 3–6 (match each edge to a library function, refit, compose, snap) run in
nnlab.symbolic.SymbolicRegressor, which prints the exact, snapped formula and its RMSE on
fresh points.

    python examples/kan_discovery.py [--fast] [--out figures]
"""
from __future__ import annotations

import math

import numpy as np
import torch

import nnlab as nl
from _common import parse_args, save


def target(X: torch.Tensor) -> torch.Tensor:
    return torch.sin(math.pi * X[:, :1]) + X[:, 1:2] ** 2


def main(argv=None) -> dict:
    from nnlab.symbolic import SymbolicRegressor

    args = parse_args(__doc__, argv)
    g = torch.Generator().manual_seed(args.seed)
    # fast: fewer epochs, so a stronger sparsity penalty and pruning threshold still prune (§6.3)
    n, epochs, lam, threshold = (300, 40, 1e-2, 3e-2) if args.fast else (1000, 200, 1e-3, 1e-2)
    X = torch.rand(n, 2, generator=g) * 2 - 1
    y = target(X)
    # §6.3 steps 1-2: sparse training, then pruning
    kan = nl.KAN(width=[2, 5, 1], grid=5, k=3, seed=args.seed)
    nl.fit(kan, (X, y), loss="mse", optimizer="adam", lr=2e-2, epochs=epochs, batch_size=64, seed=args.seed,
           progress=False, penalty=lambda m, xb: lam * m.regularization(xb))
    pruned = kan.prune(X, threshold=threshold)
    with torch.no_grad():
        kan_rmse = float(((pruned(X) - y) ** 2).mean().sqrt())
    print(f"KAN {kan.width} -> pruned {pruned.width}: RMSE {kan_rmse:.4f}")
    # §6.3 steps 3-6: symbolic regression
    reg = SymbolicRegressor(search="additive" if args.fast else "auto", steps=40 if args.fast else 100,
                            time_limit=10 if args.fast else 120, variables=["x1", "x2"],
                            random_state=args.seed)
    reg.fit(X.numpy().astype(np.float64), y.numpy().ravel().astype(np.float64))
    X_new = torch.rand(500, 2, generator=g) * 2 - 1
    rmse = float(np.sqrt(np.mean((reg.predict(X_new.numpy().astype(np.float64)) - target(X_new).numpy().ravel()) ** 2)))
    print(f"formula: y = {reg.formula_}   (RMSE on fresh points {rmse:.2e}; truth: sin(pi*x1) + x2**2)")
    fig = nl.kan.plot(pruned, X, title=f"pruned KAN edges; discovered: y = {reg.formula_}")
    save(fig, args.out, "kan_discovery.png")
    return {"formula": str(reg.formula_), "rmse": rmse, "kan_rmse": kan_rmse, "pruned_width": pruned.width}


if __name__ == "__main__":
    main()
