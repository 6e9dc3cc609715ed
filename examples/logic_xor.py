"""§2.1–2.3: OR is linearly separable, XOR is not; two layers of threshold neurons compute XOR.

* Exact counts (LP feasibility, nl.logic): 14 of the 16 Boolean functions of 2 inputs are
  linearly separable (all but XOR and XNOR), and 104 of the 256 of 3 inputs.
* The lecture's neurons: AND = [x1 + x2 − 3/2 > 0], OR = [x1 + x2 − 1/2 > 0], and
  XOR = OR ∧ ¬AND as a two-layer threshold network (nl.logic.xor_network) are exact.
* Trained with nl.fit: a linear classifier gets OR right but at most 3 of the 4 XOR points;
  a small MLP gets all 4. The figure shows the three decision boundaries.

    python examples/logic_xor.py [--fast] [--out figures]
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

import nnlab as nl
from _common import parse_args, save

X4 = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])


def train(model: torch.nn.Module, y: torch.Tensor, epochs: int, seed: int) -> float:
    nl.fit(model, (X4, y), loss="cross_entropy", optimizer="adam", lr=0.1, epochs=epochs,
           batch_size=None, seed=seed, progress=False)
    with torch.no_grad():
        return float((model(X4).argmax(1) == y).float().mean())


def draw(ax, model, y, title):
    g = torch.linspace(-0.5, 1.5, 101)
    xx, yy = torch.meshgrid(g, g, indexing="xy")
    with torch.no_grad():
        z = model(torch.stack([xx.reshape(-1), yy.reshape(-1)], 1)).argmax(1).reshape(xx.shape)
    ax.contourf(xx.numpy(), yy.numpy(), z.numpy(), levels=[-0.5, 0.5, 1.5], cmap="coolwarm", alpha=0.3)
    ax.scatter(X4[:, 0], X4[:, 1], c=y.numpy(), cmap="coolwarm", s=120, edgecolors="k")
    ax.set(title=title, xlabel="x1", ylabel="x2", aspect="equal")


def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    n2 = len(nl.logic.separable_boolean_functions(2))
    n3 = len(nl.logic.separable_boolean_functions(3))
    print(f"linearly separable Boolean functions: {n2} of 16 (n=2), {n3} of 256 (n=3)")
    xor = nl.logic.xor_network()
    table = [int(xor(a, b)) for a, b in ((0, 0), (0, 1), (1, 0), (1, 1))]
    print(f"threshold network XOR truth table: {table}")
    y_or = torch.tensor([0, 1, 1, 1])
    y_xor = torch.tensor([0, 1, 1, 0])
    epochs = 150 if args.fast else 500
    lin_or, lin_xor = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    mlp = nl.MLP([2, 8, 2], activation="tanh")
    acc = {"linear OR": train(lin_or, y_or, epochs, args.seed),
           "linear XOR": train(lin_xor, y_xor, epochs, args.seed),
           "MLP XOR": train(mlp, y_xor, epochs, args.seed)}
    for k, v in acc.items():
        print(f"{k:<10} accuracy {v:.2f}")
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    draw(axes[0], lin_or, y_or, f"OR, linear: {acc['linear OR']:.0%}")
    draw(axes[1], lin_xor, y_xor, f"XOR, linear: {acc['linear XOR']:.0%}")
    draw(axes[2], mlp, y_xor, f"XOR, MLP 2-8-2: {acc['MLP XOR']:.0%}")
    fig.suptitle(f"§2.1–2.3: {n2}/16 two-input functions are linearly separable; XOR needs a hidden layer")
    save(fig, args.out, "logic_xor.png")
    return {"n2": n2, "n3": n3, "xor_table": table, "accuracy": acc}


if __name__ == "__main__":
    main()
