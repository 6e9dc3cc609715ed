"""§3: the activation functions and their analytic derivatives, checked against autograd.

Draws f(x) and f'(x) for every activation of nl.activations (§3.1–§3.8, §4.1's LeCun tanh),
checks each analytic derivative against autograd, and the relations of §3.3, §3.6 and §3.8:
tanh(x) = 2σ(2x) − 1, softplus' = σ, σ' ≤ 1/4 and tanh' ≤ 1.

    python examples/activation_gallery.py [--fast] [--out figures]
"""
from __future__ import annotations

import torch

import nnlab as nl
from _common import parse_args, save
from nnlab.viz import activation_gallery


def main(argv=None) -> dict:
    args = parse_args(__doc__, argv)
    x = torch.linspace(-6, 6, 201 if args.fast else 2001, dtype=torch.float64)
    x = x[x.abs() > 1e-3]  # leave out the kink at 0 (ReLU family, step)
    errors = {}
    for name in nl.activations.names():
        spec = nl.activations.get(name)
        if not spec.differentiable:
            continue
        xr = x.clone().requires_grad_(True)
        (auto,) = torch.autograd.grad(spec.fn(xr).sum(), xr)
        errors[name] = float((spec.derivative(x) - auto).abs().max())
        print(f"{name:<12} max |f' - autograd| = {errors[name]:.1e}")
    sig = nl.activations.get("sigmoid").fn
    relations = {
        "tanh(x) = 2σ(2x) − 1": float((torch.tanh(x) - (2 * sig(2 * x) - 1)).abs().max()),
        "softplus'(x) = σ(x)": float((nl.activations.derivative("softplus", x) - sig(x)).abs().max()),
        "max σ' = 1/4": float(nl.activations.derivative("sigmoid", torch.linspace(-6, 6, 1201)).max()) - 0.25,
        "max tanh' = 1": float(nl.activations.derivative("tanh", torch.linspace(-6, 6, 1201)).max()) - 1.0,
    }
    for k, v in relations.items():
        print(f"{k:<22} deviation {v:.1e}")
    save(activation_gallery(), args.out, "activation_gallery.png")
    return {"errors": errors, "relations": relations}


if __name__ == "__main__":
    main()
