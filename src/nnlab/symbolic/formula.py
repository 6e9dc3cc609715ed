"""Compose the formula of a whole KAN (lecture §6.3, step 5).

A KAN is ``KAN(x) = (Φ_L ∘ … ∘ Φ_1)(x)`` (§6.2) and node ``o`` of layer ``l`` sums its edges,
``x_{l+1,o} = Σ_i φ_{l,o,i}(x_{l,i})``. Substituting each symbolic edge's
``c·f(a·x + b) + d`` layer by layer gives one sympy expression per output. An edge whose
spline is still on (``mask = 1``) appears as an undefined function ``phi_l_o_i(x)``, so an
incomplete formula is visible rather than silently wrong.
"""
from __future__ import annotations

from typing import Any, Sequence

import sympy
from torch import nn

__all__ = ["formula", "spline_edges", "layer_dims"]


def layer_dims(layer: nn.Module) -> tuple[int, int]:
    """(in_dim, out_dim) of a KAN layer, read from its ``mask`` (out_dim, in_dim)."""
    mask = getattr(layer, "mask", None)
    if mask is None or mask.ndim != 2:
        raise TypeError(f"{type(layer).__name__} is not a KAN layer: it has no (out, in) `mask`")
    return int(mask.shape[1]), int(mask.shape[0])


def _layers(model: Any) -> list[nn.Module]:
    layers = getattr(model, "layers", None)
    if layers is None:
        raise TypeError(f"expected a KAN with `.layers`, got {type(model).__name__}")
    return list(layers)


def spline_edges(model: Any) -> list[tuple[int, int, int]]:
    """Edges ``(layer, out, in)`` whose spline is still active (mask 1): not yet symbolic."""
    out = []
    for l, layer in enumerate(_layers(model)):
        mask = layer.mask
        for o in range(mask.shape[0]):
            for i in range(mask.shape[1]):
                if float(mask[o, i]) != 0.0:
                    out.append((l, o, i))
    return out


def formula(model: Any, var_names: Sequence[str | sympy.Expr] | None = None,
            simplify: bool = False) -> sympy.Expr | list[sympy.Expr]:
    """The sympy formula of a KAN whose edges are (partly) symbolic.

    Args:
        model: a KAN (``.layers`` of KAN layers with ``mask`` and optional ``symbolic``).
        var_names: names or sympy expressions for the inputs (default ``x_1 … x_n``).
        simplify: run ``sympy.simplify`` on each output (slow for large expressions).

    Returns:
        one expression if the last layer has one output, else a list (one per output).
    """
    layers = _layers(model)
    if not layers:
        raise ValueError("the model has no layers")
    n_in, _ = layer_dims(layers[0])
    if var_names is None:
        var_names = [f"x_{j + 1}" for j in range(n_in)]
    if len(var_names) != n_in:
        raise ValueError(f"var_names has {len(var_names)} entries but the model has {n_in} inputs (width[0])")
    nodes = [sympy.Symbol(v) if isinstance(v, str) else sympy.sympify(v) for v in var_names]
    for l, layer in enumerate(layers):
        n_i, n_o = layer_dims(layer)
        sym = getattr(layer, "symbolic", None)
        mask = layer.mask
        new = []
        for o in range(n_o):
            terms = []
            for i in range(n_i):
                if float(mask[o, i]) != 0.0:
                    terms.append(sympy.Function(f"phi_{l}_{o}_{i}")(nodes[i]))
                if sym is not None:
                    terms.append(sym.edge_sympy(o, i, nodes[i]))
            new.append(sympy.Add(*terms))
        combine = getattr(model, "combine_sympy", None)  # multiplication nodes (nnlab.kan.MultKAN)
        nodes = combine(l, new) if combine is not None else new
    if simplify:
        nodes = [sympy.simplify(n) for n in nodes]
    return nodes[0] if len(nodes) == 1 else nodes
