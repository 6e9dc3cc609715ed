"""Pruning a KAN (KAN paper §2.5.1; lecture §6.3, step 2 of symbolic regression).

Scores are the edges' L1 norms :math:`|\\phi_{o,i}|_1` on the given inputs
(:meth:`KAN.edge_scores`). A hidden node is kept when both its largest incoming and its largest
outgoing score exceed ``threshold``; an edge is kept when its own score does. Input and output
nodes are always kept. The result is a new, smaller KAN that computes exactly what the original
computes with the removed nodes and edges switched off (mask 0).
"""
from __future__ import annotations

import warnings

import torch

__all__ = ["kept_nodes", "prune"]


def kept_nodes(scores: list[torch.Tensor], threshold: float) -> list[torch.Tensor]:
    """Indices of the nodes kept in every width position, from per-layer (out, in) scores.

    If no hidden node of a layer passes, the single best one (largest min(in, out) score) is kept
    so the network stays connected.
    """
    keep = [torch.arange(scores[0].shape[1])]
    for l in range(1, len(scores)):
        inc = scores[l - 1].max(1).values  # (width_l,)
        outg = scores[l].max(0).values
        idx = torch.nonzero((inc > threshold) & (outg > threshold)).flatten()
        if idx.numel() == 0:
            idx = torch.minimum(inc, outg).argmax().reshape(1)
            warnings.warn(f"prune: no node of hidden layer {l} passes threshold={threshold}; "
                          "keeping the most important one", UserWarning, stacklevel=3)
        keep.append(idx)
    keep.append(torch.arange(scores[-1].shape[0]))
    return keep


@torch.no_grad()
def prune(model, x: torch.Tensor, threshold: float = 1e-2):
    """Return a smaller :class:`~nnlab.kan.KAN` without unimportant hidden nodes and edges.

    Args:
        model: a KAN. x: (batch, width[0]) inputs on which importance is measured.
        threshold: minimum L1 score of a kept node/edge (the paper uses 1e-2).
    """
    from .model import KAN

    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    scores = model.edge_scores(x)
    keep = kept_nodes(scores, threshold)
    width = [len(k) for k in keep]
    cfg = dict(model.config, width=width, grid=model.grid)
    new = KAN(**cfg)
    for l, (old, lay) in enumerate(zip(model.layers, new.layers)):
        rows, cols = keep[l + 1], keep[l]
        sub = lambda t: t[rows][:, cols].clone()  # noqa: E731
        lay.coef.copy_(sub(old.coef))
        lay.scale_base.copy_(sub(old.scale_base))
        lay.scale_spline.copy_(sub(old.scale_spline))
        edge_ok = (sub(scores[l]) > threshold).to(old.mask.dtype)
        lay.mask.copy_(sub(old.mask) * edge_ok)
        lay.knots.copy_(old.knots[cols])
        lay._uniform = old._uniform
        lay.fast = old.fast
        if old.symbolic is not None:
            if not hasattr(old.symbolic, "select"):
                raise ValueError("this KAN has symbolic edges whose module cannot be sliced "
                                 "(no .select(rows, cols)); prune before fixing symbolic functions")
            lay.symbolic = old.symbolic.select(rows, cols)
    return new
