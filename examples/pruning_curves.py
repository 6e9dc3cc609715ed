"""§5.5: accuracy against sparsity for random, magnitude, OBD and OBS pruning (no fine-tuning).

An MLP trained on digits is pruned to 0–95% sparsity by: random weights, the smallest |a_i|
(magnitude, global threshold), Optimal Brain Damage (saliency a_i²·H_ii/2 with a Gauss–Newton
diagonal Hessian) and layer-wise Optimal Brain Surgeon (L_i = a_i²/[H⁻¹]_ii with the
compensating update of the remaining weights). The figure shows validation accuracy per
method: the informed criteria keep the accuracy far longer than random removal.

    python examples/pruning_curves.py [--fast] [--out figures]
"""
from __future__ import annotations

import copy

import torch
from matplotlib.figure import Figure

import nnlab as nl
from _common import parse_args, save


def accuracy(model, X, y) -> float:
    model.eval()
    with torch.no_grad():
        return float((model(X).argmax(1) == y).float().mean())


def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    d = nl.data.digits(seed=args.seed)
    hidden, epochs = ([64, 32], 15) if args.fast else ([256, 128], 40)
    levels = (0.0, 0.5, 0.8, 0.9, 0.95) if args.fast else (0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98)
    torch.manual_seed(args.seed)
    dense = nl.MLP([64, *hidden, 10])
    nl.fit(dense, d.train, loss="cross_entropy", lr=3e-3, epochs=epochs, batch_size=64, seed=args.seed,
           progress=False)
    calib = (d.train[0][:512], d.train[1][:512])
    methods = {
        "random": lambda m, s: nl.prune.random(m, s, scope="global", seed=args.seed),
        "magnitude": lambda m, s: nl.prune.magnitude(m, s, scope="global"),
        "OBD": lambda m, s: nl.prune.obd(m, calib, "cross_entropy", s, hessian="gauss_newton"),
        "OBS": lambda m, s: nl.prune.obs(m, calib, "cross_entropy", s),
    }
    acc: dict[str, dict[float, float]] = {}
    for name, prune in methods.items():
        acc[name] = {}
        for s in levels:
            m = copy.deepcopy(dense)
            if s > 0:
                prune(m, s)
            acc[name][s] = accuracy(m, *d.val)
        print(f"{name:<9} " + "  ".join(f"{s:.0%}: {a:.3f}" for s, a in acc[name].items()))
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for name, curve in acc.items():
        ax.plot([100 * s for s in curve], list(curve.values()), marker="o", label=name)
    ax.set(xlabel="sparsity (% of weights removed)", ylabel="validation accuracy",
           title=f"§5.5 pruning an MLP 64-{'-'.join(map(str, hidden))}-10 on digits, no fine-tuning")
    ax.legend()
    save(fig, args.out, "pruning_curves.png")
    return {"accuracy": {"random": acc["random"], "magnitude": acc["magnitude"], "OBD": acc["OBD"],
                         "OBS": acc["OBS"]}}


if __name__ == "__main__":
    main()
