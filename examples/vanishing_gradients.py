"""§2.10: gradients vanish (or explode) with depth, and the lecture's cures fix it.

Per-layer gradient norms ‖∂L/∂A_i‖ (nl.diagnostics.gradient_norms) of a 20-layer MLP:
sigmoid with Xavier init (vanishing: the first layer gets orders of magnitude less than the
last), ReLU with weights scaled ×2.5 above He init (exploding), and the cures: ReLU + He init,
sigmoid + batch normalisation, sigmoid + residual connections (§4). Then global-norm and
value clipping (nl.clip) bound an exploding gradient: ‖g‖ ≤ c and |g_i| ≤ c afterwards.

    python examples/vanishing_gradients.py [--fast] [--out figures]
"""
from __future__ import annotations

import torch
from matplotlib.figure import Figure

import nnlab as nl
from _common import parse_args, save

SETUPS = {  # label: MLP keyword arguments (and a weight scale)
    "sigmoid, Xavier (vanishing)": dict(activation="sigmoid", init="xavier"),
    "ReLU, 2.5×He (exploding)": dict(activation="relu", init="he", scale=2.5),
    "ReLU, He init": dict(activation="relu", init="he"),
    "sigmoid + batch norm": dict(activation="sigmoid", init="xavier", batchnorm=True),
    "sigmoid + residual": dict(activation="sigmoid", init="xavier", residual=True),
}


def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    depth, width, batch = (20, 16, 64) if args.fast else (20, 64, 256)
    X = torch.randn(batch, width)
    y = torch.randn(batch, 1)
    norms = {}
    for label, kw in SETUPS.items():
        kw = dict(kw)
        scale = kw.pop("scale", 1.0)
        torch.manual_seed(args.seed)
        model = nl.MLP([width] + [width] * depth + [1], **kw)
        if scale != 1.0:
            with torch.no_grad():
                for m in model.modules():
                    if isinstance(m, torch.nn.Linear):
                        m.weight.mul_(scale)
        model.train()
        g = nl.diagnostics.gradient_norms(model, X, y, loss="mse")
        hidden = [v for k, v in g.items() if "projection" not in k]
        norms[label] = hidden
    ratios = {k: v[0] / v[-2] for k, v in norms.items()}  # first hidden layer vs last hidden layer
    for k, r in ratios.items():
        print(f"{k:<30} ‖g_first‖/‖g_last‖ = {r:.2e}")
    # clipping an exploding gradient
    torch.manual_seed(args.seed)
    model = nl.MLP([width] + [width] * depth + [1], activation="relu")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.Linear):
                m.weight.mul_(2.5)
    torch.nn.functional.mse_loss(model(X), y).backward()
    c = 1.0
    before = float(nl.clip.global_norm_(model.parameters(), c))
    after = float(torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters())))
    model.zero_grad()
    torch.nn.functional.mse_loss(model(X), y).backward()
    nl.clip.value_(model.parameters(), 0.01)
    max_after_value = max(float(p.grad.abs().max()) for p in model.parameters())
    print(f"global clipping: ‖g‖ {before:.3g} -> {after:.3g} (c = {c}); value clipping: max |g_i| = "
          f"{max_after_value:.3g} (c = 0.01)")
    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for label, v in norms.items():
        ax.semilogy(range(1, len(v) + 1), v, marker=".", label=label)
    ax.set(xlabel="layer (input → output)", ylabel="‖∂L/∂A_i‖",
           title=f"§2.10 gradient norm per layer, {depth}-layer MLP")
    ax.legend(fontsize=8)
    save(fig, args.out, "vanishing_gradients.png")
    return {"ratios": ratios, "clip_before": before, "clip_after": after, "value_max": max_after_value}


if __name__ == "__main__":
    main()
