"""§2.7: the backpropagation formulas of one layer Y = f(X·A + b) equal autograd's gradients.

For every differentiable activation f, nl.Dense's explicit backward
    ∂L/∂S = ∂L/∂Y ⊙ f'(S),  ∂L/∂b = Σ_batch ∂L/∂S,  ∂L/∂A = Xᵀ·∂L/∂S,  ∂L/∂X = ∂L/∂S·Aᵀ
is compared with torch.autograd on the same function written with plain tensor operations
(float64). The figure shows the largest absolute difference per activation.

    python examples/backprop.py [--fast] [--out figures]
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

import nnlab as nl
from _common import parse_args, save


def layer_gradients(name: str, batch: int, n_in: int, n_out: int, seed: int) -> float:
    """max |explicit − autograd| over ∂L/∂A, ∂L/∂b, ∂L/∂X for L = Σ Y ⊙ G (G random)."""
    g = torch.Generator().manual_seed(seed)
    layer = nl.Dense(n_in, n_out, activation=name).double()
    X = torch.randn(batch, n_in, generator=g, dtype=torch.float64, requires_grad=True)
    G = torch.randn(batch, n_out, generator=g, dtype=torch.float64)  # ∂L/∂Y
    (layer(X) * G).sum().backward()
    explicit = [layer.A.grad.clone(), layer.b.grad.clone(), X.grad.clone()]
    # the same function with autograd only
    A = layer.A.detach().clone().requires_grad_(True)
    b = layer.b.detach().clone().requires_grad_(True)
    X2 = X.detach().clone().requires_grad_(True)
    act = layer.activation
    Y = act.spec.raw_fn(X2 @ A + b, **act.params())
    auto = torch.autograd.grad((Y * G).sum(), [A, b, X2])
    # and the lecture's formulas written out by hand
    with torch.no_grad():
        S = X @ A + b
        dS = G * act.derivative(S)
        by_hand = [X.T @ dS, dS.sum(0), dS @ A.T]
    err = max(float((e - a).abs().max()) for e, a in zip(explicit, auto))
    err_hand = max(float((h - a).abs().max()) for h, a in zip(by_hand, auto))
    return max(err, err_hand)


def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    batch, n_in, n_out = (8, 5, 3) if args.fast else (64, 32, 16)
    names = [n for n in nl.activations.names() if nl.activations.get(n).differentiable]
    errors = {n: layer_gradients(n, batch, n_in, n_out, args.seed) for n in names}
    for n, e in errors.items():
        print(f"{n:<12} max |explicit - autograd| = {e:.2e}")
    fig = Figure(figsize=(8, 3.5), layout="constrained")
    ax = fig.subplots()
    ax.bar(range(len(errors)), [max(e, 1e-18) for e in errors.values()])
    ax.set_xticks(range(len(errors)), list(errors), rotation=45, ha="right")
    ax.set_yscale("log")
    ax.set(ylabel="max abs difference", title="§2.7 backward formulas vs autograd (float64)")
    save(fig, args.out, "backprop.png")
    worst = max(errors.values())
    print(f"claim: the formulas of §2.7 are the gradient (worst difference {worst:.1e})")
    return {"errors": errors, "worst": worst}


if __name__ == "__main__":
    main()
