"""Drawing a KAN (lecture §6.3, interpretability): the network with each edge's learned 1-D function.

:func:`plot` returns a :class:`matplotlib.figure.Figure` built without pyplot (no window, no file);
the caller decides whether to ``fig.savefig(...)``.
"""
from __future__ import annotations

from typing import Sequence

import torch

__all__ = ["plot"]


def plot(model, x: torch.Tensor, beta: float = 3.0, max_edges: int = 400, title: str | None = None,
         var_names: Sequence[str] | None = None, out_names: Sequence[str] | None = None):
    """Figure of ``model`` evaluated on inputs ``x`` (batch, width[0]).

    Nodes are drawn layer by layer (inputs at the bottom). Each edge gets a small panel with its
    function :math:`\\phi_{o,i}(x_i)` over the values ``x_i`` that reach it (a row of panels
    above input node ``i``); line and panel opacity is
    ``tanh(beta · score / max score of the layer)``, the score being the edge's L1 norm
    (:meth:`KAN.edge_scores`). Edges with mask 0 are not drawn. Input nodes are labelled with
    ``var_names`` (default ``x1, x2, ...``), outputs with ``out_names`` (default ``y1, ...``);
    the rows are labelled inputs / hidden / outputs at the left, each panel's horizontal axis
    shows the range of its input, and the title defaults to the layer widths.

    Raises ``ValueError`` above ``max_edges`` edges (prune first: ``model.prune(x)``).
    """
    from matplotlib.figure import Figure

    n_edges = sum(a * b for a, b in zip(model.width[:-1], model.width[1:]))
    if n_edges > max_edges:
        raise ValueError(f"this KAN has {n_edges} edges (> max_edges={max_edges}); prune it first "
                         "(model.prune(x)) or raise max_edges")
    widths = model.width
    var_names = _names(var_names, widths[0], "x", "var_names")
    out_names = _names(out_names, widths[-1], "y", "out_names")
    with torch.no_grad():
        traces = model.trace(torch.as_tensor(x))
    L = len(traces)
    wmax = max(widths)
    fig = Figure(figsize=(max(4.0, 1.6 * wmax), 2.2 * (L + 1)))
    ax = fig.add_axes((0, 0, 1, 1))  # data coordinates = figure fractions (the panels rely on it)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, L + 0.5)
    ax.axis("off")
    for layer, name in enumerate(["inputs"] + [f"hidden {l}" for l in range(1, L)] + ["outputs"]):
        ax.text(0.005, layer, name, ha="left", va="center", fontsize=8, color="0.35", rotation=90)
    for j, nm in enumerate(var_names):
        ax.text(*_offset(pos_of(widths, 0, j), -0.18), nm, ha="center", va="top", fontsize=9)
    for j, nm in enumerate(out_names):
        ax.text(*_offset(pos_of(widths, L, j), 0.12), nm, ha="center", va="bottom", fontsize=9)

    def pos(layer: int, j: int) -> tuple[float, float]:
        return pos_of(widths, layer, j)

    for layer in range(L + 1):
        for j in range(widths[layer]):
            ax.plot(*pos(layer, j), "o", color="black", ms=6, zorder=3)
    for l, tr in enumerate(traces):
        score = tr.edges.abs().mean(0)
        top = float(score.max()) or 1.0
        mask = model.layers[l].mask
        xin = tr.input
        n_in, n_out = widths[l], widths[l + 1]
        slot = 1.0 / n_in / n_out  # each input node gets a row of n_out panels above it
        pw, ph = 0.8 * slot, 0.3 / (L + 1)
        for i in range(n_in):
            order = torch.argsort(xin[:, i])
            xi = xin[order, i].numpy()
            for o in range(n_out):
                if float(mask[o, i]) == 0.0:
                    continue
                a = float(torch.tanh(beta * score[o, i] / top))
                (x0, y0), (x1, y1) = pos(l, i), pos(l + 1, o)
                px = i / n_in + (o + 0.5) * slot  # panel centre (data coords)
                pb, pt = y0 + 0.25, y0 + 0.25 + ph * (L + 1)
                ax.plot([x0, px], [y0, pb], color="black", alpha=a, lw=1, zorder=1)
                ax.plot([px, x1], [pt, y1], color="black", alpha=a, lw=1, zorder=1)
                sub = fig.add_axes((px - pw / 2, (pb + 0.5) / (L + 1), pw, ph))
                sub.plot(xi, tr.edges[order, o, i].numpy(), color="C0", alpha=a)
                sub.set_xticks([float(xi[0]), float(xi[-1])], [f"{xi[0]:.2g}", f"{xi[-1]:.2g}"],
                               fontsize=5)
                sub.tick_params(length=1, pad=1)
                sub.set_yticks([])
                sub.patch.set_alpha(0.0)
                for sp in sub.spines.values():
                    sp.set_alpha(a)
    ax.text(0.5, L + 0.47, title if title is not None else f"KAN {list(widths)}: learned edge functions",
            ha="center", va="top", fontsize=11)
    return fig


def pos_of(widths: Sequence[int], layer: int, j: int) -> tuple[float, float]:
    """Centre of node ``j`` of ``layer`` in the figure's data coordinates."""
    return (j + 0.5) / widths[layer], float(layer)


def _offset(p: tuple[float, float], dy: float) -> tuple[float, float]:
    return p[0], p[1] + dy


def _names(names: Sequence[str] | None, n: int, stem: str, what: str) -> list[str]:
    if names is None:
        return [f"{stem}{i + 1}" for i in range(n)]
    names = [str(v) for v in names]
    if len(names) != n:
        raise ValueError(f"{what} has {len(names)} names but the KAN has {n} of these nodes")
    return names
