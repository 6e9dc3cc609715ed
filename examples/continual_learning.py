"""Locality and forgetting (lecture §6.3; KAN paper §3.4 toy).

A 1-D target with 5 Gaussian peaks on [-1, 1] is shown one region at a time (region j holds peak
j only). A KAN edge is a B-spline, so a gradient step on region j only moves the coefficients
whose basis functions overlap region j: the earlier peaks stay. An MLP's weights are shared by
every input, so fitting the new region overwrites the old ones (catastrophic forgetting).

Only the spline coefficients of the KAN are trained (the per-edge scales w^b, w^s multiply the
whole function, so training them would be a global change, like an MLP weight).

Run: ``python examples/continual_learning.py [--grid 100] [--steps 300] [--out forgetting.png]``
"""
from __future__ import annotations

import argparse
import math

import torch
from torch import nn

import nnlab as nl

CENTERS = (-0.8, -0.4, 0.0, 0.4, 0.8)
WIDTH = 0.2  # each region is [c - 0.2, c + 0.2)


def target(x: torch.Tensor, sigma: float = 0.05) -> torch.Tensor:
    """Sum of 5 Gaussian peaks of height 1."""
    return sum(torch.exp(-((x - c) ** 2) / (2 * sigma ** 2)) for c in CENTERS)


def region(j: int, n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = CENTERS[j] - WIDTH + 2 * WIDTH * torch.rand(n, 1, generator=generator)
    return x, target(x)


def make_models(grid: int, hidden: int, seed: int) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(seed)
    kan = nl.KAN([1, 1], grid=grid, k=3, seed=seed)
    for layer in kan.layers:
        layer.scale_base.requires_grad_(False)
        layer.scale_spline.requires_grad_(False)
    mlp = nn.Sequential(nn.Linear(1, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                        nn.Linear(hidden, 1))
    return kan, mlp


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> None:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()


def rmse(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return math.sqrt(nn.functional.mse_loss(model(x), y).item())


def run(grid: int = 100, steps: int = 300, n: int = 200, hidden: int = 64, seed: int = 0,
        kan_lr: float = 0.05, mlp_lr: float = 1e-2) -> dict:
    """Train both models region by region; return RMSEs on earlier regions after each phase.

    Returns a dict with ``"kan"``/``"mlp"``: list over phases j >= 1 of the RMSE on regions < j
    measured right after training on region j, and the final models under ``"models"``.
    """
    g = torch.Generator().manual_seed(seed)
    data = [region(j, n, g) for j in range(len(CENTERS))]
    kan, mlp = make_models(grid, hidden, seed)
    out = {"kan": [], "mlp": []}
    for j, (x, y) in enumerate(data):
        train(kan, x, y, steps, kan_lr)
        train(mlp, x, y, steps, mlp_lr)
        if j >= 1:
            xe = torch.cat([d[0] for d in data[:j]])
            ye = torch.cat([d[1] for d in data[:j]])
            out["kan"].append(rmse(kan, xe, ye))
            out["mlp"].append(rmse(mlp, xe, ye))
    out["models"] = (kan, mlp)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", type=int, default=100)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="save a figure of both fits here (png/pdf)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    res = run(grid=args.grid, steps=args.steps, seed=args.seed)
    print("RMSE on the earlier regions after learning region j:")
    print("  j   KAN      MLP")
    for j, (a, b) in enumerate(zip(res["kan"], res["mlp"]), start=1):
        print(f"  {j}   {a:.4f}   {b:.4f}")
    if args.out:
        from matplotlib.figure import Figure

        kan, mlp = res["models"]
        xs = torch.linspace(-1, 1, 800)[:, None]
        fig = Figure(figsize=(8, 3))
        ax = fig.add_subplot(1, 1, 1)
        with torch.no_grad():
            ax.plot(xs, target(xs), "k--", lw=1, label="target")
            ax.plot(xs, kan(xs), label="KAN after 5 regions")
            ax.plot(xs, mlp(xs), label="MLP after 5 regions")
        ax.legend()
        fig.savefig(args.out, dpi=120)
        print(f"figure written to {args.out}")


if __name__ == "__main__":
    main()
